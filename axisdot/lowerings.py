"""The lowerings of a two-operand plan: an ordered table of (applies, build) entries.

As opt_einsum registers its path functions (``register_path_fn`` in
``opt_einsum/paths.py``), each lowering adds itself to :data:`LOWERINGS` with
:func:`register`: a :class:`Kind`, a test of the :class:`~axisdot.layout.Layout`
saying whether it applies, and a build that makes its run from a plan. A plan takes the
first entry that applies (:func:`choose`). An entry's test is exact (its build is right
wherever it says it applies), so each lowering can be built and tested alone on any
layout it applies to; the last, bmm after permute/reshape, applies to every layout with
an output axis, and a vector dot to the rest.

The lowerings (registered below vector dots first, the general bmm last):

``torch.bmm / mm / mv on views`` (:attr:`Kind.VIEWS`)
    At most one batch, one contracted and one free axis per input, already in order
    (the common Keras shapes: ``(b, m, k)`` with ``(b, k, n)`` or ``(b, n, k)``,
    ``(b, m, k)`` with ``(b, k)``): one ``bmm`` on the inputs themselves, a transposed
    one reaching BLAS as a transposed view (a batch of matrices times one vector each as
    the vectors times the matrices, BLAS's faster form: always for matrices stored
    transposed, on the CPU above 4096 elements for contiguous ones); without a batch
    axis, ``mm`` or ``mv``.
    Where that call is the whole lowering, the plan's ``run`` *is* ``torch.bmm`` (or
    ``mm``): no Python between the front end and the kernel.
``torch.matmul on views`` (:attr:`Kind.LEADING_AXES`, :attr:`Kind.BATCH_VIEWS`)
    x's free axes leading and one contracted axis last against a matrix y: one
    ``matmul`` folds x's leading axes. Several leading batch axes, then one free and
    one contracted axis each (attention scores ``bhqd,bhkd->bhqk``): one ``matmul`` of
    the inputs or their transposed views, once the batch sizes are seen equal (matmul
    would broadcast a size-1 batch axis).
``torch.bmm after permute/reshape`` (:attr:`Kind.PERMUTE_BMM`, the last)
    Everything else with a free axis: permute each input to (batch, free, contracted)
    or (batch, contracted, free), whichever matches its own axis order so that the
    ``reshape`` to 3-D is a view for a contiguous input, then one ``bmm`` and a
    ``reshape`` (a view) to the output shape. Where the contracted sizes multiply to 1
    (seen per call), the ``(nb, nx, 1)`` and ``(nb, 1, ny)`` views are multiplied
    elementwise instead: the same result without a bmm of tiny matrices. Where y is a
    batch of vectors and x large, the vectors times the transposed matrices. Where y is
    copied and larger than x (seen per call), the layout led by y
    (:func:`axisdot.layout.layout`, ``led_by_y``): its copy keeps y's contiguous runs.
``outer product`` (:attr:`Kind.OUTER`)
    Nothing contracted, a free axis on either side: the inputs, viewed with size-1 axes
    for each other's free axes, multiplied elementwise: the product *is* the output.
``vector dot`` (:attr:`Kind.ROW_DOT` in place over one axis, else :attr:`Kind.VECTOR_DOT`)
    Neither input has a free axis (a batched vector dot, e.g. Keras ``Dot(axes=1)`` on
    two ``(batch, n)`` inputs, or ``tensordot(a, b, axes=2)`` of two matrices): while
    the elementwise product of the inputs is at most 1 MiB, ``(x * y).sum(...)`` (the
    fastest for small inputs); above that, for floating inputs, on the CPU one ``bmm``
    of each row by the other's (rows of float32/float64 of 512 or more, where BLAS's dot
    kernels beat the product's memory traffic: 0.1–0.9× mul+sum), of rows of at most 2
    a sum column by column into the output, of rows shorter than 32 one ``bmm`` of
    ``(n, 1, k)`` by ``(n, k, 1)`` views (no product at all), else the same product
    in chunks of at most 1 MiB summed into the output, elsewhere one ``bmm`` of
    ``(n, 1, k)`` by ``(n, k, 1)`` views: nothing is held beyond the output and 1 MiB.
    Integer and complex inputs keep one product and sum at every size.

Each run is a closure with its decisions taken at build time: the hot path does no work
a plan could prove in advance. Per call it checks only what its torch calls would not
refuse by themselves (sizes under a reshape or an elementwise product). A transposed
view is ``t.mT`` (a C attribute: 0.70 us against ``t.transpose(-2, -1)``'s 1.04), except while
``torch.jit`` traces (ONNX has no ``aten::mT``).
"""
from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional

import torch

from .errors import OperandError
from .layout import Layout, larger_y_layout, y_leads
from .operands import check_same_device
from .vector_dot import SMALL_ELEMENTS, SMALL_PRODUCT_BYTES, large_vector_dot

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["Kind", "Lowering", "LOWERINGS", "register", "choose", "by_kind", "Run", "RankMismatch"]

Run = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class RankMismatch(RuntimeError):
    """Raised by :attr:`Plan.fast` for operands of other ranks than the plan's: the
    caller then looks up the plan for their ranks."""


class Kind(enum.Enum):
    """What a plan runs."""

    ROW_DOT = "vector dot over one axis in place"
    VECTOR_DOT = "vector dot"
    OUTER = "broadcast product"
    VIEWS = "bmm / mm / mv on views"
    LEADING_AXES = "matmul on views, leading axes folded"
    BATCH_VIEWS = "matmul on views, batch sizes checked"
    PERMUTE_BMM = "bmm after permute/reshape"

    @property
    def elementwise(self) -> bool:
        """Whether the run multiplies elementwise, which promotes mixed dtypes where the
        matrix products refuse them."""
        return self in _ELEMENTWISE


_ELEMENTWISE = frozenset({Kind.ROW_DOT, Kind.VECTOR_DOT, Kind.OUTER})

#: A build: the plan to run -> (a few words on the torch calls, the run).
Build = Callable[["Plan"], tuple[str, Run]]


class Lowering(NamedTuple):
    """An entry of :data:`LOWERINGS`."""

    kind: Kind
    #: whether the build is right for a layout (exact: never a layout it cannot run)
    applies: Callable[[Layout], bool]
    #: the plan -> (a few words on its torch calls, its run)
    build: Build
    #: whether the run's torch calls refuse every other pair of ranks by themselves (bmm,
    #: mm and mv on views): then the plan's ``fast`` is its ``run``
    rank_proof: bool = False
    #: the plan's ``fast`` when it is not the run behind an ``ndim`` test
    build_fast: Optional[Callable[["Plan"], Run]] = None


#: The lowerings in the order a plan tries them.
LOWERINGS: list[Lowering] = []


def register(kind: Kind, applies: Callable[[Layout], bool], *, rank_proof: bool = False,
             build_fast: Optional[Callable[["Plan"], Run]] = None) -> Callable[[Build], Build]:
    """Add the decorated build to :data:`LOWERINGS`, after those registered before it."""
    def add(build: Build) -> Build:
        LOWERINGS.append(Lowering(kind, applies, build, rank_proof, build_fast))
        return build
    return add


def choose(layout: Layout) -> Lowering:
    """The first lowering that applies to ``layout``."""
    for lowering in LOWERINGS:
        if lowering.applies(layout):
            return lowering
    raise AssertionError(f"no lowering applies to {layout}")  # pragma: no cover - a vector dot or the last


def by_kind(kind: Kind) -> Lowering:
    """The lowering of ``kind``."""
    (lowering,) = [entry for entry in LOWERINGS if entry.kind is kind]
    return lowering


_bmm, _mm, _mv, _matmul, _mul, _sum = torch.bmm, torch.mm, torch.mv, torch.matmul, torch.mul, torch.sum
_BOOL = torch.bool
#: bound once: a method call on a name imported with ``from`` is compiled without
#: LOAD_METHOD, 100 ns slower a call on dot (64, 32) axes=1 (measured)
_small_elements = SMALL_ELEMENTS.get
#: Above this many elements of x, a batch of contiguous (m, k) matrices times one vector
#: each runs as the vector times the transposed matrices (0.1-0.5x the time from (2, 64, 64)
#: and (64, 16, 16) up; 1.1-1.25x below, ~0.8 us; measured): permute/reshape/bmm only,
#: which reads the sizes anyway
_SWAP_MIN = 4096
#: Above this many output elements, one contracted element is a broadcast product, not a bmm
#: (below, the product's setup costs ~0.5 us more a call at (2, 3, 1) by (2, 3, 1, 4); measured)
_MUL_MIN = 4096
#: torch.jit.is_tracing without its Python frame (nothing here is scripted): 33 ns a call against 123
_tracing = torch._C._is_tracing


def _T(t: torch.Tensor) -> torch.Tensor:
    """The transposed view of t's last two axes."""
    return t.transpose(-2, -1) if _tracing() else t.mT


def _size_check(plan: "Plan") -> Callable[[torch.Tensor, torch.Tensor], None]:
    """Raise the plan's ShapeError unless each batch and contracted pair of sizes agree
    (a reshape or an elementwise product would take mismatched sizes silently)."""
    pairs, fail = plan.layout.pairs, plan.fail

    def check(x: torch.Tensor, y: torch.Tensor) -> None:
        xs, ys = x.shape, y.shape
        for xa, ya in pairs:
            if xs[xa] != ys[ya]:
                raise fail(x, y)
    return check


# -- elementwise: no free axis, or none contracted -------------------------------------------


def _elementwise_operands(plan: "Plan") -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """x and y checked and permuted for an elementwise product, which would broadcast a
    size-1 axis (or a CPU scalar) silently where a matmul refuses."""
    lay, check_sizes, refuse_bool, scalar = plan.layout, _size_check(plan), plan.refuse_bool, plan.layout.scalar
    x_perm, y_perm, in_place = lay.x_perm, lay.y_perm, lay.in_place

    def operands(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not in_place or x.shape != y.shape:
            check_sizes(x, y)  # in place, raises unless a batch of outer products lines up
        if refuse_bool and (x.dtype is _BOOL or y.dtype is _BOOL):
            plan.check_operands(x, y)
        if scalar and x.device != y.device:  # only a 0-dim CPU tensor mixes devices in a product
            check_same_device([x, y], ("x", "y"), plan.call)
        if x_perm is not None:
            x = x.permute(*x_perm)
        if y_perm is not None:
            y = y.permute(*y_perm)
        return x, y
    return operands


def _no_free(lay: Layout) -> bool:
    return not (lay.n_x_free or lay.n_y_free)


def _vector_dot(plan: "Plan") -> Run:
    operands, lay, call = _elementwise_operands(plan), plan.layout, plan.call
    sum_dims, expands, keepdim = lay.sum_dims, lay.expands, lay.keepdim

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = operands(x, y)
        if not sum_dims:
            out = x * y
            return out.unsqueeze(-1) if expands else out
        if x.dtype is _BOOL or y.dtype is _BOOL:
            raise OperandError(f"{call}: PyTorch has no sum of products of bool tensors (torch.einsum and "
                               f"torch.matmul refuse it too); cast the operands first, e.g. x.int() or x.float()")
        if x.numel() * x.element_size() <= SMALL_PRODUCT_BYTES or not x.is_floating_point():
            # integer sums keep their dtype, as a matmul does (sum would widen them to int64)
            out = _mul(x, y)
            out = _sum(out, sum_dims, keepdim, dtype=out.dtype)
            return out.unsqueeze(-1) if expands and not keepdim else out
        return large_vector_dot(x, y, x.ndim - len(sum_dims), expands)
    return run


def _row_dot(plan: "Plan", check_rank: bool) -> Run:
    """The vector dot over one axis in place: a small float product and sum straight
    away (the same shapes and dtype need no other check); anything else goes the general
    way. ``check_rank``: the plan's ``fast``, which raises :class:`RankMismatch` for
    operands of other ranks (their shapes tell)."""
    lay = plan.layout
    dim, keepdim, expands, general = lay.n_batch, lay.keepdim, lay.expands and not lay.keepdim, _vector_dot(plan)
    rank = plan.spec.x_rank

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        if shape == y.shape and (not check_rank or len(shape) == rank):
            dtype = x.dtype
            if dtype is y.dtype and x.numel() <= _small_elements(dtype, -1):
                out = _sum(_mul(x, y), dim, keepdim)
                return out.unsqueeze(-1) if expands else out
        if check_rank and (x.ndim != rank or y.ndim != rank):
            raise RankMismatch
        return general(x, y)
    return run


@register(Kind.ROW_DOT, lambda lay: _no_free(lay) and lay.n_contract == 1 and lay.in_place,
          build_fast=lambda plan: _row_dot(plan, True))
def row_dot(plan: "Plan") -> tuple[str, Run]:
    return "vector dot", _row_dot(plan, False)


@register(Kind.VECTOR_DOT, _no_free)
def vector_dot(plan: "Plan") -> tuple[str, Run]:
    """While the elementwise product is at most 1 MiB, ``(x * y).sum(...)``; above that,
    :func:`axisdot.vector_dot.large_vector_dot`."""
    return "vector dot", _vector_dot(plan)


@register(Kind.OUTER, lambda lay: lay.n_contract == 0)
def outer(plan: "Plan") -> tuple[str, Run]:
    """The inputs, viewed with size-1 axes for each other's free axes, multiplied
    elementwise: the product *is* the output."""
    operands, lay = _elementwise_operands(plan), plan.layout
    nb, nx, ny, expands = lay.n_batch, lay.n_x_free, lay.n_y_free, lay.expands

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = operands(x, y)
        x = x.reshape(tuple(x.shape) + (1,) * ny)
        y = y.reshape(tuple(y.shape[:nb]) + (1,) * nx + tuple(y.shape[nb:]))
        out = x * y
        return out.unsqueeze(-1) if expands else out
    return "broadcast product (an outer product: no axis contracted)", run


# -- matrix products on views ----------------------------------------------------------------


def _one_product(lay: Layout) -> bool:
    return lay.in_place and lay.n_batch <= 1 and lay.n_contract == 1 and lay.n_x_free <= 1 \
        and lay.n_y_free <= 1 and not _no_free(lay) and not lay.expands


@register(Kind.VIEWS, _one_product, rank_proof=True)
def on_views(plan: "Plan") -> tuple[str, Run]:
    """One bmm / mm / mv on the inputs or their transposed views: the run *is* the torch
    call where it can be (no Python between the front end and the kernel)."""
    lay = plan.layout
    x_t, y_t, x_vector, y_vector = lay.x_cf, not lay.y_cf, not lay.n_x_free, not lay.n_y_free
    if not lay.n_batch:
        if x_vector:
            return "torch.mv on views", (lambda x, y: _mv(_T(y), x)) if lay.y_cf else (lambda x, y: _mv(y, x))
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
        if x_t:  # the vector times the matrices as they lie: BLAS's batched (1, k) x (k, m) products run
            # 0.8-0.95x the time of (m, k) x (k, 1) on transposed views up to (1024, 16, 16), 0.1x above
            return label, lambda x, y: _bmm(y.unsqueeze(1), x).squeeze(1)
        return label, _matrices_times_vectors
    if x_t and y_t:
        return label, lambda x, y: _bmm(_T(x), _T(y))
    if x_t:
        return label, lambda x, y: _bmm(_T(x), y)
    return label, (lambda x, y: _bmm(x, y.transpose(-2, -1) if _tracing() else y.mT)) if y_t else _bmm


def _matrices_times_vectors(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A batch of (m, k) matrices times one vector each, ``bij,bj->bi``. On the CPU,
    above :data:`_SWAP_MIN` elements of x, the vectors times the matrices' transposed
    views ((1, k) x (k, m) products), which BLAS runs in a fraction of the time of
    (m, k) x (k, 1): float32 0.5x at (2, 64, 64), 0.35x at (64, 512, 512), 0.8x at
    (1000, 4, 4), 1.08x on the worst shape seen, (100, 2, 100); float64, float16,
    bfloat16 and complex64 0.2-1.06x; below the bound 1.2-1.3x (~0.8 us at (2, 3, 4)).
    Measured on one CPU thread; not measured on CUDA, so not done there. The size test
    costs ~0.15 us a call (3.5 -> 3.7 us at (2, 3, 4); `benchmarks/RESULTS.md`) and reads
    a plain int only (a symbolic size under torch.compile would add a guard)."""
    if (n := x.numel()).__class__ is int and n > _SWAP_MIN and x.is_cpu:
        return _bmm(y.unsqueeze(1), _T(x)).squeeze(1)
    return _bmm(x, y.unsqueeze(2)).squeeze(2)


@register(Kind.LEADING_AXES,
          lambda lay: lay.in_place and lay.n_batch == 0 and lay.n_contract == 1 and not lay.x_cf and lay.y_rank == 2
          and not lay.expands)
def on_leading_axes(plan: "Plan") -> tuple[str, Run]:
    """x's free axes lead and its one contracted axis is last, y is a matrix:
    ``torch.matmul`` folds x's leading axes into one mm (a view of x)."""
    label = "torch.matmul on views (leading axes folded)"
    if plan.layout.y_cf:
        return label, _matmul
    return label, lambda x, y: _matmul(x, y.transpose(-2, -1) if _tracing() else y.mT)


@register(Kind.BATCH_VIEWS, lambda lay: lay.in_place and lay.n_batch > 1 and lay.n_contract == 1
          and lay.n_x_free == 1 and lay.n_y_free == 1)
def on_batch_views(plan: "Plan") -> tuple[str, Run]:
    """Leading batch axes, then one free and one contracted axis each, in either order:
    ``torch.matmul`` on the inputs or their transposed views (one bmm over the folded
    batch axes, as for attention scores ``bhqd,bhkd->bhqk``), once the batch sizes are
    seen equal, since matmul would broadcast a size-1 batch axis."""
    lay, fail = plan.layout, plan.fail
    nb, x_t, y_t = lay.n_batch, lay.x_cf, not lay.y_cf

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[:nb] != y.shape[:nb]:
            raise fail(x, y)
        tracing = _tracing()
        if x_t:
            x = x.transpose(-2, -1) if tracing else x.mT
        if y_t:
            y = y.transpose(-2, -1) if tracing else y.mT
        return _matmul(x, y)
    return "torch.matmul on views (batch sizes checked)", run


@register(Kind.PERMUTE_BMM, lambda lay: bool(lay.n_batch or lay.n_x_free or lay.n_y_free or lay.expands))
def permute_bmm(plan: "Plan") -> tuple[str, Run]:
    """Permute each input to its layout, reshape it to 3-D (a view for a contiguous
    input), one ``bmm``, and a ``reshape`` (a view) to the output shape."""
    spec, lay, check_sizes = plan.spec, plan.layout, _size_check(plan)
    expands = lay.expands
    xb, xc, fx, fy = spec.batch[0], spec.contract[0], spec.x_free, spec.y_free
    y_vector = not fy
    # Where y must be copied, the contracted axes in y's order (and y's last axis kept last)
    # for a y larger than x: its copy then moves whole contiguous runs (the CCSDT triples
    # term jkbc,abcijk->ai, 27M-element y: 186 ms -> 66 ms, torch.einsum 101 ms; measured)
    orders = (lay.x_perm, lay.y_perm, lay.x_cf, lay.y_cf)
    by_y = larger_y_layout(spec, lay)
    led_by_y = None if by_y is None else (by_y.x_perm, by_y.y_perm, by_y.x_cf, by_y.y_cf)

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_sizes(x, y)  # a reshape could reinterpret mismatched sizes silently
        xs, ys = x.shape, y.shape
        batch = [xs[a] for a in xb]
        x_free = [xs[a] for a in fx]
        y_free = [ys[a] for a in fy]
        nb, nc = math.prod(batch), math.prod([xs[a] for a in xc])
        nx, ny = math.prod(x_free), math.prod(y_free)
        # the size tests below run on plain ints only: on the symbolic sizes torch.compile traces
        # they would add guards (a recompile whenever a size crosses a threshold)
        if led_by_y is None:
            x_perm, y_perm, x_cf, y_cf = orders
        else:
            y_size = nb * nc * ny
            x_perm, y_perm, x_cf, y_cf = led_by_y if (y_size * nx).__class__ is int and y_leads(y_size, nx, ny) \
                else orders
        if x_perm is not None:  # sizes unpacked here: a sequence argument costs 0.45 us more
            x = x.permute(*x_perm)
        if y_perm is not None:
            y = y.permute(*y_perm)
        x = x.reshape(nb, nc, nx).transpose(-2, -1) if x_cf else x.reshape(nb, nx, nc)
        y = y.reshape(nb, nc, ny) if y_cf else y.reshape(nb, ny, nc).transpose(-2, -1)
        # one contracted element: a product of (nx, 1) by (1, ny) matrices is their broadcast
        # product (pytorch#41467's bic,bicf->bif, c = 1: 10^6 bmm products of 1x1 by 1x3 took
        # 10.5 ms, the broadcast product 2.6 ms, as torch.einsum; measured). mul would promote
        # mixed dtypes and take bool, which bmm refuses (and recover() explains)
        if nc == 1 and (size := nb * nx * ny).__class__ is int and size > _MUL_MIN and x.dtype is y.dtype \
                and x.dtype is not _BOOL:
            out = x * y
        elif y_vector and (x_cf or (size := nb * nc * nx).__class__ is int and size > _SWAP_MIN):
            # y a batch of vectors: (1, k) x (k, m) products (acde,ae->acd, (2000, 8, 8, 64): 7.2 -> 2.6 ms)
            out = _bmm(_T(y), _T(x))
        else:
            out = _bmm(x, y)
        return out.reshape(*batch, *x_free, *y_free, 1) if expands else out.reshape(*batch, *x_free, *y_free)
    return "torch.bmm after permute/reshape", run
