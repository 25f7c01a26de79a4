"""L2 normalization of an operand along its contracted axes, as Keras ``Dot`` does it."""
from __future__ import annotations

import torch

from .errors import OperandError

__all__ = ["EPSILON", "l2_normalize"]

#: Keras's ``backend.epsilon()``.
EPSILON = 1e-7


def l2_normalize(t: torch.Tensor, dims: tuple[int, ...], name: str) -> torch.Tensor:
    """``t * minimum(rsqrt(sum(t**2, dims, keepdims)), 1/EPSILON)``, Keras 3's formula.

    The squared norm is clamped at ``EPSILON**2`` before ``rsqrt``: the forward values
    are Keras's, and the gradient stays finite where a row is all zeros (Keras gives NaN).
    Several ``dims`` are normalized jointly (one norm over all of them).
    """
    if not t.is_floating_point():
        raise OperandError(
            f"normalize=True needs floating-point inputs, got {name} of dtype {t.dtype}; "
            f"cast it first, e.g. {name}.float()"
        )
    square_sum = (t * t).sum(dims, keepdim=True)
    inv_norm = torch.rsqrt(square_sum.clamp_min(EPSILON * EPSILON)).clamp_max(1.0 / EPSILON)
    return t * inv_norm
