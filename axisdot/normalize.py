"""L2 normalization of an operand along its contracted axes, as each framework defines it.

``normalize=`` of :func:`axisdot.dot` and :class:`axisdot.Dot` takes ``False``, ``True``
(the same as ``"keras3"``) or a mode string, so that a port reproduces the numbers of the
framework it comes from:

``"keras3"``
    Keras 3: ``x * minimum(rsqrt(sum(x**2)), 1 / 1e-7)``.
``"tf_keras"``
    tf.keras 2 (``tf.math.l2_normalize``): ``x * rsqrt(maximum(sum(x**2), 1e-12))``.
``"torch"``
    ``torch.nn.functional.normalize``: ``x / maximum(norm(x), 1e-12)``.

Several axes are normalized jointly (one norm over all of them).
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from .errors import ArgumentError, AxisdotTypeError, OperandError

__all__ = ["EPSILON", "MODES", "normalize_mode", "l2_normalize", "normalize_code"]

#: Keras's ``backend.epsilon()``.
EPSILON = 1e-7
MODES = ("keras3", "tf_keras", "torch")
Normalize = Union[bool, str]
_NARROW = (torch.float16, torch.bfloat16)


def normalize_mode(value: object, where: str = "normalize") -> Optional[str]:
    """``None`` for no normalization, else the mode name; refuses anything else."""
    if value is False:
        return None
    if value is True:
        return "keras3"
    if isinstance(value, str):
        if value in MODES:
            return value
        raise ArgumentError(f"{where}={value!r}: the modes are {', '.join(map(repr, MODES))} (or True / False)")
    raise AxisdotTypeError(f"{where} must be a bool or one of {MODES}, got {type(value).__name__} {value!r}")


def l2_normalize(t: torch.Tensor, dims: tuple[int, ...], name: str, mode: str = "keras3") -> torch.Tensor:
    """``t`` normalized over ``dims`` by ``mode``'s rule.

    Gradients are finite where a row is all zeros: Keras 3's formula is computed with the
    squared norm clamped at ``EPSILON**2`` before ``rsqrt`` (same forward values; Keras
    itself gives NaN gradients there). float16 and bfloat16 inputs are normalized in
    float32 (the clamps do not fit in float16) and returned in their own dtype.
    """
    if not t.is_floating_point():
        raise OperandError(
            f"normalize needs floating-point inputs, got {name} of dtype {t.dtype}; "
            f"cast it first, e.g. {name}.float()"
        )
    if t.dtype in _NARROW:  # 1/1e-7 and 1e-12 do not fit in float16: the norm in float32
        return l2_normalize(t.float(), dims, name, mode).to(t.dtype)
    # clamp(min=...) / clamp(max=...), not clamp_min / clamp_max: DTensor shards the former
    # on every torch axisdot supports
    if mode == "torch":  # torch.nn.functional.normalize's formula: x / max(norm(x), eps)
        return t / torch.linalg.vector_norm(t, 2.0, dims, keepdim=True).clamp(min=1e-12)
    square_sum = (t * t).sum(dims, keepdim=True)
    if mode == "tf_keras":
        return t * torch.rsqrt(square_sum.clamp(min=1e-12))
    inv_norm = torch.rsqrt(square_sum.clamp(min=EPSILON * EPSILON)).clamp(max=1.0 / EPSILON)
    return t * inv_norm


def normalize_code(name: str, dims: tuple[int, ...], mode: str) -> str:
    """A plain PyTorch expression normalizing ``name`` as ``mode`` does."""
    if mode == "tf_keras":
        return f"{name} * torch.rsqrt(({name} * {name}).sum({dims}, keepdim=True).clamp_min(1e-12))"
    eps = "1e-12" if mode == "torch" else "1e-7"
    return f"torch.nn.functional.normalize({name}, dim={dims}, eps={eps})"
