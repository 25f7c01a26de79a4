"""Compile a :class:`~axisdot.spec.Spec` into a :class:`Plan`: the PyTorch calls that run it.

A plan is built once per spec (see :mod:`axisdot.cache`) and then called many times.
It picks its lowering from the spec alone (never from sizes); every lowering is exact:

``vecdot``
    Neither input has a free axis (a batched vector dot, e.g. Keras ``Dot(axes=1)`` on
    two ``(batch, n)`` inputs): ``(x * y).sum(contracted dims)``. One elementwise
    product the size of an input, no matrix call.
``bmm on views``
    At most one batch, one contracted and one free axis per input, already in order
    (the common Keras shapes: ``(b, m, k)`` with ``(b, k, n)`` or ``(b, n, k)``,
    ``(b, m, k)`` with ``(b, k)``): one ``bmm`` on the inputs themselves, a transposed
    one reaching BLAS as a transposed view. Without a batch axis, ``mm`` or ``mv``.
``bmm after permute/reshape``
    Everything else: permute each input to (batch, free, contracted) or
    (batch, contracted, free), whichever matches its own axis order so that the
    ``reshape`` to 3-D is a view for a contiguous input, then one ``bmm`` and a
    ``reshape`` (a view) to the output shape.

No lowering materializes the broadcast product of the inputs. The per-call work is the
size checks the plan cannot prove (contracted and batch sizes equal), dtype promotion
when the dtypes differ, and the torch calls.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from .errors import AxisdotError, OperandError, ShapeError, with_context
from .spec import Spec, output_shape

__all__ = ["Plan", "build_plan", "check_operands"]


def check_operands(x: object, y: object, call: str) -> None:
    """Refuse non-tensors, bool tensors and operands on different devices."""
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise OperandError(
                f"{call}: {name} must be a torch.Tensor, got {type(t).__name__}; "
                f"convert it with torch.as_tensor({name})"
            )
        if t.dtype == torch.bool:
            raise OperandError(
                f"{call}: {name} has dtype torch.bool, which PyTorch cannot multiply as a "
                f"matrix; cast it first, e.g. {name}.int() or {name}.float()"
            )
    if x.device != y.device:  # type: ignore[union-attr]
        raise OperandError(
            f"{call}: x is on {x.device} but y is on {y.device}; "  # type: ignore[union-attr]
            f"move both to one device first"
        )


def _layouts(spec: Spec) -> tuple[tuple[int, ...], bool, tuple[int, ...], bool]:
    """Permutations of x and y, and whether each is laid out contracted-first."""
    (xb, yb), (xc, yc) = spec.batch, spec.contract
    order = sorted(range(len(xc)), key=lambda i: xc[i])
    xc, yc = tuple(xc[i] for i in order), tuple(yc[i] for i in order)
    fx, fy = spec.x_free, spec.y_free
    x_cf = bool(fx and xc) and max(xc) < min(fx)
    y_cf = not (fy and yc and max(fy) < min(yc))
    x_perm = xb + (xc + fx if x_cf else fx + xc)
    y_perm = yb + (yc + fy if y_cf else fy + yc)
    return x_perm, x_cf, y_perm, y_cf


def _perm_or_none(perm: tuple[int, ...]) -> Optional[tuple[int, ...]]:
    return None if perm == tuple(range(len(perm))) else perm


class Plan:
    """A compiled two-operand contraction: call it with ``(x, y)``."""

    def __init__(self, spec: Spec, call: str) -> None:
        self.spec = spec
        self.call = call
        self.pairs = tuple(zip(*spec.batch)) + tuple(zip(*spec.contract))
        self.lowering = "vecdot" if not (spec.x_free or spec.y_free) else "matmul"
        x_perm, self.x_cf, y_perm, self.y_cf = _layouts(spec)
        self.x_perm, self.y_perm = _perm_or_none(x_perm), _perm_or_none(y_perm)
        self.x_batch, self.x_free, self.y_free = spec.batch[0], spec.x_free, spec.y_free
        self.x_contract = spec.contract[0]
        nb, nc = len(spec.batch[0]), len(spec.contract[0])
        self.sum_dims = tuple(range(nb, nb + nc))
        self.expands = spec.expands
        # Inputs that are already (batch, rows, cols) or (batch, n) in the right order
        # go to bmm as views, with no reshape: the common Keras shapes.
        simple = self.x_perm is None and self.y_perm is None and nb <= 1 and nc == 1
        self.direct = simple and len(spec.x_free) <= 1 and len(spec.y_free) <= 1
        self.batched = nb == 1
        self.x_vector, self.y_vector = not spec.x_free, not spec.y_free
        self.sum_dim = self.sum_dims[0] if nc == 1 else self.sum_dims
        self.keepdim = self.expands and nc == 1
        self.run = self._vecdot if self.lowering == "vecdot" else self._bmm_views if self.direct else self._matmul

    def __repr__(self) -> str:
        return f"<axisdot.Plan {self.describe()} for {self.call}>"

    def describe(self) -> str:
        """The PyTorch calls this plan makes, in a few words."""
        if self.lowering == "vecdot":
            return "elementwise product and sum"
        if self.direct and not self.batched:
            return "torch.mv on views" if self.x_vector or self.y_vector else "torch.mm on views"
        if self.direct:
            return "torch.bmm on views"
        return "torch.bmm after permute/reshape"

    def fail(self, x: torch.Tensor, y: torch.Tensor) -> AxisdotError:
        """The error for operands whose sizes or dtypes do not fit."""
        if x.dtype == torch.bool or y.dtype == torch.bool:
            check_operands(x, y, self.call)
        try:
            output_shape(self.spec, tuple(x.shape), tuple(y.shape))
        except ShapeError as err:
            return with_context(err, [f"in {self.call}"])
        raise AssertionError("fail() called on operands that fit")  # pragma: no cover

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xs, ys = x.shape, y.shape
        for xa, ya in self.pairs:
            if xs[xa] != ys[ya]:
                raise self.fail(x, y)
        dtype = x.dtype
        if dtype != y.dtype or dtype == torch.bool:
            x, y = self._promote(x, y)
        return self.run(x, y)

    def _promote(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both operands in their common dtype (``torch.result_type``); bool refused."""
        if x.dtype == torch.bool or y.dtype == torch.bool:
            raise self.fail(x, y)
        dtype = torch.result_type(x, y)
        return x.to(dtype), y.to(dtype)

    def _bmm_views(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.batched:  # tensordot-like: mm / mv on 2-D and 1-D views
            if self.x_vector:
                return torch.mv(y.transpose(-2, -1) if self.y_cf else y, x)
            if self.y_vector:
                return torch.mv(x.transpose(-2, -1) if self.x_cf else x, y)
            return torch.mm(x.transpose(-2, -1) if self.x_cf else x, y if self.y_cf else y.transpose(-2, -1))
        if self.x_vector:
            return torch.bmm(x.unsqueeze(1), y if self.y_cf else y.transpose(-2, -1)).squeeze(1)
        if self.y_vector:
            return torch.bmm(x.transpose(-2, -1) if self.x_cf else x, y.unsqueeze(2)).squeeze(2)
        return torch.bmm(x.transpose(-2, -1) if self.x_cf else x, y if self.y_cf else y.transpose(-2, -1))

    def _vecdot(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.x_perm is not None:
            x = x.permute(self.x_perm)
        if self.y_perm is not None:
            y = y.permute(self.y_perm)
        out = x * y
        if not self.sum_dims:
            return out.unsqueeze(-1) if self.expands else out
        if out.is_floating_point() or out.is_complex():
            out = out.sum(self.sum_dim, keepdim=self.keepdim)
        else:  # integer sums would widen to int64; a matmul keeps the dtype
            out = out.sum(self.sum_dim, keepdim=self.keepdim, dtype=out.dtype)
        return out.unsqueeze(-1) if self.expands and not self.keepdim else out

    def _matmul(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xs, ys = x.shape, y.shape
        batch = [xs[a] for a in self.x_batch]
        x_free = [xs[a] for a in self.x_free]
        y_free = [ys[a] for a in self.y_free]
        nb, nc = math.prod(batch), math.prod([xs[a] for a in self.x_contract])
        nx, ny = math.prod(x_free), math.prod(y_free)
        if self.x_perm is not None:
            x = x.permute(self.x_perm)
        if self.y_perm is not None:
            y = y.permute(self.y_perm)
        x = x.reshape(nb, nc, nx).transpose(-2, -1) if self.x_cf else x.reshape(nb, nx, nc)
        y = y.reshape(nb, nc, ny) if self.y_cf else y.reshape(nb, ny, nc).transpose(-2, -1)
        out = torch.bmm(x, y)
        shape = batch + x_free + y_free
        return out.reshape(shape + [1] if self.expands else shape)


def build_plan(spec: Spec, call: str) -> Plan:
    """Compile ``spec``; ``call`` (how the user wrote it) is quoted in error messages."""
    return Plan(spec, call)
