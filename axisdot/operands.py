"""Operands: the one home of the checks on tensors and of dtype promotion.

The planned calls do not check their operands on every call: the torch calls they make
refuse bad operands themselves, and the front ends turn such a refusal into axisdot's
error with :meth:`axisdot.plan.Plan.recover` (only then, so a good call pays nothing). Where a
lowering could accept bad operands silently (a reshape, a broadcasting product), the
plan checks sizes itself.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from .axes import as_int
from .errors import OperandError

__all__ = ["check_tensor", "check_same_device", "common_dtype", "promoted", "unsupported_dtype",
           "ShapeLike", "rank_and_shape"]

ShapeLike = Union[torch.Tensor, Sequence[Optional[int]], int]


def check_tensor(t: object, name: str, call: str) -> None:
    """Refuse anything that is not a tensor, saying how to make one."""
    if not isinstance(t, torch.Tensor):
        raise OperandError(
            f"{call}: {name} must be a torch.Tensor, got {type(t).__name__}; "
            f"convert it with torch.as_tensor({name})"
        )


def check_same_device(tensors: Sequence[torch.Tensor], names: Sequence[str], call: str) -> None:
    """Refuse operands on different devices."""
    devices = [t.device for t in tensors]
    if any(d != devices[0] for d in devices[1:]):
        where = ", ".join(f"{n} is on {d}" for n, d in zip(names, devices))
        raise OperandError(f"{call}: {where}; move them to one device first")


def common_dtype(tensors: Sequence[torch.Tensor]) -> torch.dtype:
    """PyTorch's type promotion over any number of operands: ``torch.result_type`` of
    the operands taken in turn (a 0-dim tensor counts as PyTorch counts it in ``x * y``)."""
    first = tensors[0]
    if all(t.dtype == first.dtype for t in tensors[1:]):
        return first.dtype
    probe = first
    for t in tensors[1:]:
        dtype = torch.result_type(probe, t)
        shape = (0,) if probe.ndim or t.ndim else ()
        probe = torch.empty(shape, dtype=dtype, device="meta")
    return probe.dtype


def promoted(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The operands converted to their :func:`common_dtype` (unchanged when they agree)."""
    dtype = common_dtype(tensors)
    return [t if t.dtype == dtype else t.to(dtype) for t in tensors]


def unsupported_dtype(err: BaseException, tensors: Sequence[torch.Tensor], call: str) -> Optional[OperandError]:
    """The error for a torch refusal that says a kernel does not exist for a dtype
    (``"... not implemented for 'UInt16'"``), or None for any other failure."""
    text = str(err)
    if "not implemented for" not in text and not isinstance(err, NotImplementedError):
        return None
    dtypes = sorted({str(t.dtype) for t in tensors})
    devices = sorted({str(t.device) for t in tensors})
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return OperandError(
        f"{call}: PyTorch cannot compute this contraction for {', '.join(dtypes)} on "
        f"{', '.join(devices)} ({first}); cast the operands first, e.g. x.float() or x.long()"
    )


def rank_and_shape(value: ShapeLike, name: str, call: str) -> tuple[int, Optional[tuple[Optional[int], ...]]]:
    """An operand given as a tensor, a shape (``None`` for an unknown size) or a rank;
    ``call`` (e.g. ``"axisdot.equation"``) starts any error message."""
    if isinstance(value, torch.Tensor):
        return value.ndim, tuple(value.shape)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise OperandError(f"{call}: the rank of {name} must be >= 0, got {value}")
        return value, None
    if isinstance(value, (tuple, list, torch.Size)):
        shape = tuple(None if n is None else as_int(n, f"{call}: shape of {name}") for n in value)
        if any(n is not None and n < 0 for n in shape):
            raise OperandError(f"{call}: sizes must be >= 0, got {name} shape {shape}")
        return len(shape), shape
    raise OperandError(f"{call}: {name} must be a tensor, a shape or a rank, got {type(value).__name__}")
