"""Compile a :class:`~axisdot.spec.Spec` into a :class:`Plan`: the PyTorch calls that run it.

A plan is built once per spec (see :mod:`axisdot.cache`) and then called many times.
It picks its lowering from the spec alone (never from sizes, except where noted); every
lowering is exact:

``torch.bmm / mm / mv on views``
    At most one batch, one contracted and one free axis per input, already in order
    (the common Keras shapes: ``(b, m, k)`` with ``(b, k, n)`` or ``(b, n, k)``,
    ``(b, m, k)`` with ``(b, k)``): one ``bmm`` on the inputs themselves, a transposed
    one reaching BLAS as a transposed view; without a batch axis, ``mm`` or ``mv``.
    Where that call is the whole lowering, the plan's ``run`` *is* ``torch.bmm`` (or
    ``mm``): no Python between the front end and the kernel.
``torch.matmul on views``
    x's free axes leading and one contracted axis last against a matrix y: one
    ``matmul`` folds x's leading axes. Several leading batch axes, then one free and
    one contracted axis each (attention scores ``bhqd,bhkd->bhqk``): one ``matmul`` of
    the inputs or their transposed views, once the batch sizes are seen equal (matmul
    would broadcast a size-1 batch axis).
``torch.bmm after permute/reshape``
    Everything else with a free axis: permute each input to (batch, free, contracted)
    or (batch, contracted, free), whichever matches its own axis order so that the
    ``reshape`` to 3-D is a view for a contiguous input, then one ``bmm`` and a
    ``reshape`` (a view) to the output shape.
``outer product``
    Nothing contracted, a free axis on either side: the inputs, viewed with size-1 axes
    for each other's free axes, multiplied elementwise: the product *is* the output.
``vector dot``
    Neither input has a free axis (a batched vector dot, e.g. Keras ``Dot(axes=1)`` on
    two ``(batch, n)`` inputs, or ``tensordot(a, b, axes=2)`` of two matrices): while
    the elementwise product of the inputs is at most 1 MiB, ``(x * y).sum(...)`` (the
    fastest for small inputs); above that, for floating inputs, on the CPU one ``bmm``
    of each row by the other's (rows of float32/float64 of 512 or more, where BLAS's dot
    kernels beat the product's memory traffic: 0.1–0.9× mul+sum), else the same product
    in chunks of at most 1 MiB summed into the output, elsewhere one ``bmm`` of
    ``(n, 1, k)`` by ``(n, k, 1)`` views: nothing is held beyond the output and 1 MiB.
    Integer and complex inputs keep one product and sum at every size.

No lowering materializes the broadcast product of the inputs. Per call, a plan checks
only what its torch calls would not refuse by themselves (sizes under a reshape or an
elementwise product); when a torch call refuses the operands, :meth:`Plan.recover` says
why in axisdot's words, or promotes mixed dtypes and runs again. A plan's ``fast`` is
its ``run`` for callers that have not checked the ranks: ``run`` itself where bmm / mm /
mv on views refuse every other pair of ranks, else ``run`` behind one ``ndim`` test
(:class:`RankMismatch`).
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import torch

from .errors import AxisdotError, OperandError, ShapeError, with_context
from .operands import check_same_device, check_tensor, promoted, unsupported_dtype
from .spec import AXES, Spec, output_shape

__all__ = ["Plan", "Run", "RECOVERABLE", "RankMismatch", "SMALL_PRODUCT_BYTES", "BMM_MIN_ROW"]

Run = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: The exceptions a torch call raises for operands it cannot take; a front end hands
#: them to :meth:`Plan.recover`.
RECOVERABLE = (RuntimeError, TypeError, AttributeError)

#: Above this many bytes, a vector dot no longer multiplies elementwise first.
SMALL_PRODUCT_BYTES = 2**20


class RankMismatch(RuntimeError):
    """Raised by :attr:`Plan.fast` for operands of other ranks than the plan's: the
    caller then looks up the plan for their ranks."""


_bmm, _mm, _mv, _matmul, _mul, _sum = torch.bmm, torch.mm, torch.mv, torch.matmul, torch.mul, torch.sum
_BOOL = torch.bool
#: On the CPU, a large vector dot over rows of at least this many float32/float64
#: elements is one bmm of row views (see _large_vector_dot): measured, not derived.
BMM_MIN_ROW = 512
_BMM_ROW_DTYPES = frozenset({torch.float32, torch.float64})
#: floating dtypes -> the most elements whose elementwise product is at most SMALL_PRODUCT_BYTES
_SMALL_ELEMENTS = {dtype: SMALL_PRODUCT_BYTES // dtype.itemsize
                   for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}
_tracing = torch._C._is_tracing  # torch.jit.is_tracing without its Python frame (nothing here is scripted)


def _T(t: torch.Tensor) -> torch.Tensor:
    """The transposed view of t's last two axes."""
    return t.transpose(-2, -1) if _tracing() else t.mT


def _sorted_contract(spec: Spec) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The contracted axis pairs in the order of x's axes (as given, when already so)."""
    xc, yc = spec.contract
    if len(xc) > 1 and list(xc) != sorted(xc):
        order = sorted(range(len(xc)), key=xc.__getitem__)
        xc, yc = tuple([xc[i] for i in order]), tuple([yc[i] for i in order])
    return xc, yc


def _large_vector_dot(x: torch.Tensor, y: torch.Tensor, nb: int, expand: bool = False) -> torch.Tensor:
    """Sums of products over the trailing axes of x and y (same shape, the first ``nb``
    batch axes) that hold nothing beyond the output and 1 MiB at any moment; ``expand``
    adds a trailing size-1 axis to the result (Keras's ``(batch, 1)``).

    On the CPU, for float32 and float64 rows of at least :data:`BMM_MIN_ROW` elements,
    one ``bmm`` of ``(n, 1, k)`` by the transposed view of the other ``(n, 1, k)``: BLAS
    runs each row as a dot, with no product at all (0.1–0.9× mul+sum on the development
    machine; on shorter rows, and for half precision, 2–10× slower). Otherwise the
    elementwise product in tiles of at most 1 MiB (rows of the batch, or columns when a
    row alone is larger), each summed straight into the output: as fast as one product
    and sum once the product outgrows the caches. With autograd, the tiles' sums are
    concatenated instead (an ``out=`` has no gradient). A full contraction is one
    ``torch.dot``. Under torch.compile or jit tracing, one product and sum (which
    inductor fuses into one reduction); under torch.func transforms and for tensor
    subclasses, the same (every transform and subclass has it). Elsewhere, or when no
    view flattens the inputs, one ``bmm`` of ``(n, 1, k)`` by ``(n, k, 1)``. (Below
    1 MiB of product a bmm of row views wins too, 0.8–0.95× from 256 KiB, but not by the
    ~4 µs this route costs in Python.)"""
    if nb == 0:
        return torch.dot(x.reshape(-1), y.reshape(-1))
    if (_tracing() or _transforms_active() or type(x) is not torch.Tensor or type(y) is not torch.Tensor
            or torch.compiler.is_compiling()):
        out = (x * y).sum(tuple(range(nb, x.ndim)))
        return out.unsqueeze(-1) if expand else out
    batch = x.shape[:nb]
    n = math.prod(batch)
    k = x.numel() // n if n else math.prod(x.shape[nb:])
    out_shape = (*batch, 1) if expand else batch  # unpacked below: view(torch.Size) costs 2.4 us, view(*ints) 1
    dtype = x.dtype if x.dtype is y.dtype else torch.result_type(x, y)
    size = dtype.itemsize  # of the product
    if x.is_cpu and n and k:
        try:
            xs, ys = (x, y) if x.ndim == 2 else (x.view(n, k), y.view(n, k))
        except RuntimeError:  # no view flattens this layout
            pass
        else:
            if k >= BMM_MIN_ROW and dtype in _BMM_ROW_DTYPES and x.dtype is y.dtype:
                return _bmm(xs.view(n, 1, k), ys.view(n, 1, k).mT).view(*out_shape)
            grad = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)
            if k * size <= SMALL_PRODUCT_BYTES:  # tiles of whole rows
                step = SMALL_PRODUCT_BYTES // (k * size)
                if grad:
                    return torch.cat([_sum(_mul(xs[i:i + step], ys[i:i + step]), 1)
                                      for i in range(0, n, step)]).view(*out_shape)
                out = torch.empty(n, dtype=dtype, device=x.device)
                for i in range(0, n, step):  # slices: cheaper than split's tuples of views
                    j = i + step
                    _sum(_mul(xs[i:j], ys[i:j]), 1, out=out[i:j])
                return out if nb == 1 and not expand else out.view(*out_shape)
            if 2 * n * size <= SMALL_PRODUCT_BYTES:  # tiles of columns, accumulated
                # a tile's product and its sum beside the running sum: at most the output + 1 MiB
                step = (SMALL_PRODUCT_BYTES - n * size) // (n * size)
                tiles = zip(xs.split(step, 1), ys.split(step, 1))
                a, b = next(tiles)
                out = (a * b).sum(1)
                for a, b in tiles:
                    out = out + (a * b).sum(1) if grad else out.add_((a * b).sum(1))
                return out.view(*out_shape)
    return _bmm(x.reshape(n, 1, k), y.reshape(n, k, 1)).view(*out_shape)


_transforms_active = torch._C._are_functorch_transforms_active  # vmap, grad, ... (their tensors are wrapped)


class Plan:
    """A compiled two-operand contraction: ``plan(x, y)``, or ``plan.run(x, y)`` with
    :meth:`recover` on failure (what the front ends do, to keep the hot path short).

    ``refuse_bool`` is the Keras front ends' rule (bool tensors are refused, as
    ``torch.matmul`` refuses them); einsum steps pass False and follow torch.
    """

    def __init__(self, spec: Spec, call: object, refuse_bool: bool = True) -> None:
        self.spec = spec
        self.call = call
        self.refuse_bool = refuse_bool
        (xb, yb), (xc, yc) = spec.batch, spec.contract
        fx, fy = spec.x_free, spec.y_free
        nb, nc = len(xb), len(xc)
        self.pairs = (*zip(xb + xc, yb + yc),)
        # The layouts (computed here, inline: a build pays for no call): x as (batch, free,
        # contracted) and y as (batch, contracted, free), as a matmul takes them, unless an
        # input's own axes come the other way round (x_cf: x's contracted axes all precede
        # its free ones; not y_cf: y's free axes all precede its contracted ones), so that a
        # contiguous input reshapes as a view. A permutation leaving every axis in place is
        # None. Free axes are in increasing order (first and last are min and max), and the
        # contracted ones are put in x's order.
        if nc > 1:
            xc, yc = _sorted_contract(spec)
        self.x_cf = x_cf = fx != () and xc != () and xc[-1] < fx[0]
        self.y_cf = y_cf = not (fy != () and yc != () and fy[-1] < (yc[0] if nc == 1 else min(yc)))
        x_perm = xb + (xc + fx if x_cf else fx + xc)
        y_perm = yb + (yc + fy if y_cf else fy + yc)
        self.x_perm = x_perm = None if x_perm == AXES[spec.x_rank] else x_perm
        self.y_perm = y_perm = None if y_perm == AXES[spec.y_rank] else y_perm
        self.sum_dims = AXES[nb + nc][nb:]
        self.expands = spec.keras_rank1 and spec.expands  # (the property read only where it can hold)
        self.keepdim = self.expands and nc == 1  # sum keeping the axis gives Keras's (batch, 1) at once
        self.scalar = spec.x_rank == 0 or spec.y_rank == 0
        in_place = x_perm is None and y_perm is None
        if not (fx or fy):
            self.lowering = "vector dot"
            self.run: Run = self._vector_dot
            if nc == 1 and in_place:
                self.run, self._row_dim = self._row_dot(nb, False), nb
        elif not nc:
            self.lowering = "broadcast product (an outer product: no axis contracted)"
            self.run = self._outer
        elif in_place and nb <= 1 and nc == 1 and len(fx) <= 1 and len(fy) <= 1:
            self.lowering, self.run = self._on_views(nb == 1, not fx, not fy)
            self.rank_proof, self.fast = True, self.run
        elif in_place and nb == 0 and nc == 1 and not x_cf and spec.y_rank == 2:
            self.lowering, self.run = "torch.matmul on views (leading axes folded)", self._on_leading_axes()
        elif in_place and nb > 1 and nc == 1 and len(fx) == 1 and len(fy) == 1:
            self.lowering, self.run = "torch.matmul on views (batch sizes checked)", self._on_batch_views(nb)
        else:
            self.lowering = "torch.bmm after permute/reshape"
            self.run = self._matmul

    #: whether ``run``'s torch calls refuse every other pair of ranks by themselves (bmm,
    #: mm and mv on views of the inputs): then ``fast`` is ``run`` itself
    rank_proof = False
    #: the summed axis of a vector dot over one axis in place (see _row_dot), else None
    _row_dim: Optional[int] = None

    @property
    def elementwise(self) -> bool:
        """Whether ``run`` multiplies elementwise (a vector dot or an outer product),
        which promotes mixed dtypes where the matrix products refuse them."""
        return self.lowering == "vector dot" or not self.spec.contract[0]

    @functools.cached_property
    def fast(self) -> Run:
        """``run`` for a caller that has not checked the ranks (a front end's table keyed
        by ``axes`` alone, see :mod:`axisdot.cache`): it raises :class:`RankMismatch` for
        operands of other ranks than the plan's. Made on first use (einsum steps never
        need it), then an attribute. A vector dot over one axis checks the ranks inside its
        own shape test (:meth:`_row_dot`)."""
        if self._row_dim is not None:
            return self._row_dot(self._row_dim, True)
        run, x_rank, y_rank = self.run, self.spec.x_rank, self.spec.y_rank

        def fast(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if x.ndim == x_rank and y.ndim == y_rank:
                return run(x, y)
            raise RankMismatch
        return fast

    def __repr__(self) -> str:
        return f"<axisdot.Plan {self.describe()} for {self.call}>"

    def describe(self) -> str:
        """The PyTorch calls this plan makes, in a few words."""
        if self.lowering == "vector dot":
            return (f"elementwise product and sum (above {SMALL_PRODUCT_BYTES // 2**20} MiB of product: on the CPU "
                    f"one bmm of row views for float32/float64 rows of {BMM_MIN_ROW} or more, else in chunks of "
                    f"at most {SMALL_PRODUCT_BYTES // 2**20} MiB; one bmm elsewhere)")
        return self.lowering

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        try:
            return self.run(x, y)
        except RECOVERABLE as err:
            return self.recover(x, y, err)

    # -- when a call fails ---------------------------------------------------------------

    def check_operands(self, x: object, y: object) -> None:
        """Refuse non-tensors, bool tensors (front ends only) and mixed devices."""
        check_tensor(x, "x", self.call)
        check_tensor(y, "y", self.call)
        if self.refuse_bool:
            for name, t in (("x", x), ("y", y)):
                if t.dtype == torch.bool:  # type: ignore[attr-defined]
                    raise OperandError(
                        f"{self.call}: {name} has dtype torch.bool, which PyTorch cannot multiply as a "
                        f"matrix; cast it first, e.g. {name}.int() or {name}.float()"
                    )
        check_same_device([x, y], ("x", "y"), self.call)  # type: ignore[list-item]

    def fail(self, x: torch.Tensor, y: torch.Tensor) -> AxisdotError:
        """The error for operands whose sizes do not fit (the shape rule's own words)."""
        try:
            output_shape(self.spec, tuple(x.shape), tuple(y.shape))
        except ShapeError as err:
            return with_context(err, [f"in {self.call}"])
        raise AssertionError("fail() called on operands that fit")  # pragma: no cover

    def recover(self, x: torch.Tensor, y: torch.Tensor, err: BaseException) -> torch.Tensor:
        """After ``run`` raised ``err``: raise axisdot's error for the operands, or, when
        their dtypes differ, run again in their common dtype. Other failures (out of
        memory, say) are raised as they are."""
        self.check_operands(x, y)
        try:
            output_shape(self.spec, tuple(x.shape), tuple(y.shape))
        except ShapeError as shape_err:
            raise with_context(shape_err, [f"in {self.call}"]) from None
        if x.dtype != y.dtype:
            return self(*promoted([x, y]))
        refusal = unsupported_dtype(err, [x, y], self.call)
        if refusal is not None:
            raise refusal from err
        raise err

    # -- lowerings -----------------------------------------------------------------------
    # Each is a closure with its decisions taken here, once: the hot path does no work a
    # plan could prove in advance. A transposed view is ``t.mT`` (a C attribute, cheaper
    # than ``t.transpose(-2, -1)``), except while ``torch.jit`` traces (ONNX has no
    # ``aten::mT``).

    def _on_views(self, batched: bool, x_vector: bool, y_vector: bool) -> tuple[str, Run]:
        """One bmm / mm / mv on the inputs or their transposed views."""
        x_t, y_t = self.x_cf, not self.y_cf
        if not batched:
            if x_vector:
                return "torch.mv on views", (lambda x, y: _mv(_T(y), x)) if self.y_cf else (lambda x, y: _mv(y, x))
            if y_vector:
                return "torch.mv on views", (lambda x, y: _mv(_T(x), y)) if x_t else _mv
            if x_t and y_t:
                return "torch.mm on views", lambda x, y: _mm(_T(x), _T(y))
            if x_t:
                return "torch.mm on views", lambda x, y: _mm(_T(x), y)
            return "torch.mm on views", (lambda x, y: _mm(x, y.transpose(-2, -1) if _tracing() else y.mT)) \
                if y_t else _mm
        label = "torch.bmm on views"
        if x_vector:
            if y_t:
                return label, lambda x, y: _bmm(x.unsqueeze(1), _T(y)).squeeze(1)
            return label, lambda x, y: _bmm(x.unsqueeze(1), y).squeeze(1)
        if y_vector:
            if x_t:
                return label, lambda x, y: _bmm(_T(x), y.unsqueeze(2)).squeeze(2)
            return label, lambda x, y: _bmm(x, y.unsqueeze(2)).squeeze(2)
        if x_t and y_t:
            return label, lambda x, y: _bmm(_T(x), _T(y))
        if x_t:
            return label, lambda x, y: _bmm(_T(x), y)
        return label, (lambda x, y: _bmm(x, y.transpose(-2, -1) if _tracing() else y.mT)) if y_t else _bmm

    def _on_leading_axes(self) -> Run:
        """x's free axes lead and its one contracted axis is last, y is a matrix:
        ``torch.matmul`` folds x's leading axes into one mm (a view of x)."""
        if self.y_cf:
            return _matmul
        return lambda x, y: _matmul(x, y.transpose(-2, -1) if _tracing() else y.mT)

    def _on_batch_views(self, nb: int) -> Run:
        """Leading batch axes, then one free and one contracted axis each, in either
        order: ``torch.matmul`` on the inputs or their transposed views (one bmm over the
        folded batch axes, as for attention scores ``bhqd,bhkd->bhqk``), once the batch
        sizes are seen equal, since matmul would broadcast a size-1 batch axis."""
        x_t, y_t, fail = self.x_cf, not self.y_cf, self.fail

        def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if x.shape[:nb] != y.shape[:nb]:
                raise fail(x, y)
            tracing = _tracing()
            if x_t:
                x = x.transpose(-2, -1) if tracing else x.mT
            if y_t:
                y = y.transpose(-2, -1) if tracing else y.mT
            return _matmul(x, y)
        return run

    def _check_sizes(self, x: torch.Tensor, y: torch.Tensor) -> None:
        xs, ys = x.shape, y.shape
        for xa, ya in self.pairs:
            if xs[xa] != ys[ya]:
                raise self.fail(x, y)

    def _elementwise_operands(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x and y checked and permuted for an elementwise product, which would
        broadcast a size-1 axis (or a CPU scalar) silently where a matmul refuses."""
        if self.x_perm is None and self.y_perm is None:
            if x.shape != y.shape:
                self._check_sizes(x, y)  # raises, unless a batch of outer products lines up
        else:
            self._check_sizes(x, y)
        if self.refuse_bool and (x.dtype is _BOOL or y.dtype is _BOOL):
            self.check_operands(x, y)
        if self.scalar and x.device != y.device:  # only a 0-dim CPU tensor mixes devices in a product
            check_same_device([x, y], ("x", "y"), self.call)
        if self.x_perm is not None:
            x = x.permute(*self.x_perm)
        if self.y_perm is not None:
            y = y.permute(*self.y_perm)
        return x, y

    def _vector_dot(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self._elementwise_operands(x, y)
        sum_dims = self.sum_dims
        if not sum_dims:
            out = x * y
            return out.unsqueeze(-1) if self.expands else out
        if x.dtype is _BOOL or y.dtype is _BOOL:
            raise OperandError(f"{self.call}: PyTorch has no sum of products of bool tensors (torch.einsum and "
                               f"torch.matmul refuse it too); cast the operands first, e.g. x.int() or x.float()")
        if x.numel() * x.element_size() <= SMALL_PRODUCT_BYTES or not x.is_floating_point():
            # integer sums keep their dtype, as a matmul does (sum would widen them to int64)
            out = _mul(x, y)
            out = _sum(out, sum_dims, self.keepdim, dtype=out.dtype)
            return out.unsqueeze(-1) if self.expands and not self.keepdim else out
        return _large_vector_dot(x, y, x.ndim - len(sum_dims), self.expands)

    def _row_dot(self, dim: int, check_rank: bool) -> Run:
        """The vector dot over one axis in place: a small float product and sum straight
        away (the same shapes and dtype need no other check); anything else goes the
        general way. ``check_rank``: the :attr:`fast` variant, which raises
        :class:`RankMismatch` for operands of other ranks (their shapes tell)."""
        keepdim, expands, general = self.keepdim, self.expands and not self.keepdim, self._vector_dot
        rank = self.spec.x_rank

        def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            shape = x.shape
            if shape == y.shape and (not check_rank or len(shape) == rank):
                dtype = x.dtype
                if dtype is y.dtype and x.numel() <= _SMALL_ELEMENTS.get(dtype, -1):
                    out = _sum(_mul(x, y), dim, keepdim)
                    return out.unsqueeze(-1) if expands else out
            if check_rank and (x.ndim != rank or y.ndim != rank):
                raise RankMismatch
            return general(x, y)
        return run

    def _outer(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self._elementwise_operands(x, y)
        nb, nx, ny = len(self.spec.batch[0]), len(self.spec.x_free), len(self.spec.y_free)
        x = x.reshape(tuple(x.shape) + (1,) * ny)
        y = y.reshape(tuple(y.shape[:nb]) + (1,) * nx + tuple(y.shape[nb:]))
        out = x * y
        return out.unsqueeze(-1) if self.expands else out

    def _matmul(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check_sizes(x, y)  # a reshape could reinterpret mismatched sizes silently
        spec = self.spec
        xs, ys = x.shape, y.shape
        batch = [xs[a] for a in spec.batch[0]]
        x_free = [xs[a] for a in spec.x_free]
        y_free = [ys[a] for a in spec.y_free]
        nb, nc = math.prod(batch), math.prod([xs[a] for a in spec.contract[0]])
        nx, ny = math.prod(x_free), math.prod(y_free)
        if self.x_perm is not None:  # sizes unpacked here: a sequence argument costs 0.45 us more
            x = x.permute(*self.x_perm)
        if self.y_perm is not None:
            y = y.permute(*self.y_perm)
        x = x.reshape(nb, nc, nx).transpose(-2, -1) if self.x_cf else x.reshape(nb, nx, nc)
        y = y.reshape(nb, nc, ny) if self.y_cf else y.reshape(nb, ny, nc).transpose(-2, -1)
        out = _bmm(x, y)
        return out.reshape(*batch, *x_free, *y_free, 1) if self.expands else out.reshape(*batch, *x_free, *y_free)
