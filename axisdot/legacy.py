"""``batch_dot`` as Keras 2.2.4 and tf.keras 1.x computed it (``semantics="legacy"``).

Keras changed ``batch_dot``'s output shapes at 2.2.5 / 2.3 (keras#13300), which broke
ports such as CapsNet-Keras#104. The old function, from
``keras/backend/tensorflow_backend.py``, did this:

1. ``axes`` as an int means ``(axes, axes)``; ``None`` means ``(x.ndim - 1, y.ndim - 2)``.
   Axes are used as given (a negative axis is not normalized).
2. The input of lower rank is padded with trailing size-1 axes to the other's rank.
3. Rank 2: ``sum(x * y, axes[0])`` when ``axes[0] == axes[1]``, else
   ``sum(transpose(x) * y, axes[1])``. Higher rank: one batched ``matmul`` of x and y,
   x adjointed unless ``axes[0]`` is its last axis, y adjointed when ``axes[1]`` is its
   last axis.
4. The padded axes are squeezed out of the result again (from axis ``x.ndim + y.ndim - 3``
   when x had the higher rank, else from ``x.ndim - 1``), and a rank-1 result becomes
   ``(batch, 1)``.

For x ``(b, 10, 1152)`` and y ``(b, 10, 1152, 16)`` with ``axes=[2, 2]`` this gives
``(b, 10, 16)`` where Keras 3 gives ``(b, 10, 10, 16)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from .axes import canonical
from .errors import ArgumentError, AxesError, AxisdotTypeError, ShapeError
from .operands import promoted
from .render import shape_text

__all__ = ["LegacySteps", "legacy_steps", "legacy_batch_dot"]


@dataclass(frozen=True)
class LegacySteps:
    """What the Keras 2.2.4 algorithm does for given ranks and axes."""

    axes: tuple[int, int]
    pad_x: int
    pad_y: int
    kind: str  # "sum" (rank 2, same axis), "transposed sum" (rank 2) or "matmul"
    adjoint_x: bool
    adjoint_y: bool
    squeeze: tuple[int, ...]

    def code(self) -> str:
        """The same computation as a line of plain PyTorch."""
        x = "x" + ".unsqueeze(-1)" * self.pad_x
        y = "y" + ".unsqueeze(-1)" * self.pad_y
        if self.kind == "sum":
            out = f"({x} * {y}).sum({self.axes[0]})"
        elif self.kind == "transposed sum":
            out = f"({x}.t() * {y}).sum({self.axes[1]})"
        else:
            out = f"torch.matmul({x}{'.mH' if self.adjoint_x else ''}, {y}{'.mH' if self.adjoint_y else ''})"
        for d in reversed(self.squeeze):
            out += f".squeeze({d})"
        return out + (".unsqueeze(1)" if self.kind != "matmul" else "")  # rank 2 sums give rank 1


def legacy_steps(axes: Any, x_rank: int, y_rank: int) -> LegacySteps:
    """The plan of the Keras 2.2.4 algorithm (see the module docstring)."""
    call = f"batch_dot(x, y, axes={axes!r}, semantics='legacy')"
    if x_rank < 2 or y_rank < 2:
        raise ShapeError(f"{call}: needs inputs of rank >= 2, got ranks {x_rank} and {y_rank}")
    canon = canonical(axes)
    if canon is None:
        canon = (x_rank - 1, y_rank - 2)
    if isinstance(canon, int):
        canon = (canon, canon)
    if len(canon) != 2 or any(isinstance(a, tuple) for a in canon):
        raise AxesError(f"{call}: the legacy rules take an int, a pair of ints or None "
                        f"(Keras 2.2.4: 'Multiple target dimensions are not supported')")
    rank = max(x_rank, y_rank)
    for name, a in zip("xy", canon):
        if not -rank <= a < rank:
            raise AxesError(f"{call}: {name} axis {a} is out of range for rank {rank} (after padding)")
    pad_x, pad_y = rank - x_rank, rank - y_rank
    diff = pad_x + pad_y
    start = x_rank + y_rank - 3 if x_rank > y_rank else x_rank - 1
    squeeze = tuple(range(start, start + diff))
    if rank == 2:
        kind = "sum" if canon[0] == canon[1] else "transposed sum"
        return LegacySteps(canon, pad_x, pad_y, kind, False, False, squeeze)
    return LegacySteps(canon, pad_x, pad_y, "matmul", canon[0] != rank - 1, canon[1] == rank - 1, squeeze)


def _fail(call: str, x: torch.Tensor, y: torch.Tensor, what: str) -> ShapeError:
    return ShapeError(f"{call}: {what} (Keras 2.2.4 fails here too)\n"
                      f"  x: {shape_text(tuple(x.shape))}\n  y: {shape_text(tuple(y.shape))}")


def legacy_batch_dot(x: torch.Tensor, y: torch.Tensor, axes: Any = None) -> torch.Tensor:
    """Keras 2.2.4's ``batch_dot`` in shapes and values, wherever it ran."""
    call = f"axisdot.batch_dot(x, y, axes={axes!r}, semantics='legacy')"
    steps = legacy_steps(axes, x.ndim, y.ndim)
    x, y = promoted([x, y])
    xp = x.reshape(tuple(x.shape) + (1,) * steps.pad_x)
    yp = y.reshape(tuple(y.shape) + (1,) * steps.pad_y)
    if steps.kind == "matmul":
        a = xp.mH if steps.adjoint_x else xp
        b = yp.mH if steps.adjoint_y else yp
        if a.shape[-1] != b.shape[-2]:
            raise _fail(call, x, y, f"matmul of {shape_text(tuple(a.shape))} and {shape_text(tuple(b.shape))}: "
                                    f"{a.shape[-1]} != {b.shape[-2]}")
        try:
            torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except RuntimeError:
            raise _fail(call, x, y, "the leading (batch) axes of the matmul do not match") from None
        out = torch.matmul(a, b)
    else:
        a = xp.t() if steps.kind == "transposed sum" else xp
        try:
            torch.broadcast_shapes(a.shape, yp.shape)
        except RuntimeError:
            raise _fail(call, x, y, f"cannot multiply {shape_text(tuple(a.shape))} by {shape_text(tuple(yp.shape))}") from None
        axis = steps.axes[0] if steps.kind == "sum" else steps.axes[1]
        product = a * yp
        out = product.sum(axis, dtype=product.dtype)
    for d in reversed(steps.squeeze):
        if out.shape[d] != 1:
            raise _fail(call, x, y, f"the padded axis {d} of the result {shape_text(tuple(out.shape))} is not of size 1")
        out = out.squeeze(d)
    return out.unsqueeze(1) if out.ndim == 1 else out


def check_semantics(semantics: Optional[str]) -> str:
    if semantics in (None, "keras3"):
        return "keras3"
    if semantics == "legacy":
        return "legacy"
    if not isinstance(semantics, str):
        raise AxisdotTypeError(f"batch_dot: semantics must be 'keras3' or 'legacy', got {type(semantics).__name__}")
    raise ArgumentError(f"batch_dot: semantics must be 'keras3' or 'legacy', got {semantics!r}")
