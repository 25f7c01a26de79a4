"""A spec's :class:`Layout`: how a plan lays the two inputs out for one matrix product.

What einops calls a recipe: from the spec alone (no sizes, no torch), each input's axes
as (batch, free, contracted) or (batch, contracted, free), whichever keeps its own axis
order, so that a contiguous input reshapes to 3-D as a view. A lowering
(:mod:`axisdot.lowerings`) is chosen from the layout and built from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .spec import Spec

__all__ = ["Layout", "layout", "larger_y_layout", "y_leads", "LED_BY_Y_MIN"]


@dataclass(slots=True)  # not frozen: a frozen dataclass of these fields costs a plan build 1 us more
class Layout:
    """How the inputs of a spec are laid out; never changed once made.

    The permuted x is ``(batch, contracted, free)`` when ``x_cf`` else ``(batch, free,
    contracted)``; the permuted y is ``(batch, contracted, free)`` when ``y_cf`` else
    ``(batch, free, contracted)``; a permutation leaving every axis in place is None.
    """

    #: x's permutation to its layout, or None when its axes are already so
    x_perm: Optional[tuple[int, ...]]
    #: y's permutation to its layout, or None
    y_perm: Optional[tuple[int, ...]]
    #: x's contracted axes all precede its free ones
    x_cf: bool
    #: y's contracted axes do not all follow its free ones
    y_cf: bool
    #: ``(x axis, y axis)`` of each batch pair, then each contracted pair (sizes that must agree)
    pairs: tuple[tuple[int, int], ...]
    n_batch: int
    n_contract: int
    n_x_free: int
    n_y_free: int
    y_rank: int
    #: Keras's rule adds a trailing size-1 axis to the result (a result of rank 1)
    expands: bool
    #: whether an input is a scalar (rank 0)
    scalar: bool

    @property
    def in_place(self) -> bool:
        """Neither input needs a permute."""
        return self.x_perm is None and self.y_perm is None

    @property
    def sum_dims(self) -> tuple[int, ...]:
        """The contracted axes of the permuted inputs, for an elementwise product's sum."""
        return tuple(range(self.n_batch, self.n_batch + self.n_contract))

    @property
    def keepdim(self) -> bool:
        """A sum over one axis keeping it gives Keras's ``(batch, 1)`` at once."""
        return self.expands and self.n_contract == 1


def _sorted_contract(spec: Spec, led_by_y: bool = False) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The contracted axis pairs in the order of x's axes (of y's when ``led_by_y``)."""
    xc, yc = spec.contract
    order = sorted(range(len(xc)), key=(yc if led_by_y else xc).__getitem__)
    return tuple(xc[i] for i in order), tuple(yc[i] for i in order)


def _or_none(perm: tuple[int, ...]) -> Optional[tuple[int, ...]]:
    return None if perm == tuple(range(len(perm))) else perm


def layout(spec: Spec, led_by_y: bool = False) -> Layout:
    """The layout of ``spec``'s inputs (see :class:`Layout`). Free axes are in increasing
    order; the contracted ones are put in x's order, or, ``led_by_y``, in y's order with
    y's orientation keeping its last axis last where y must be copied anyway (the copy
    then moves whole contiguous runs: the layout for a y larger than x, which the
    permute/reshape lowering takes per call)."""
    (xb, yb), (xc, yc) = spec.batch, _sorted_contract(spec, led_by_y)
    fx, fy = spec.x_free, spec.y_free
    x_cf = bool(fx and xc) and xc[-1] < fx[0]
    y_cf = not (fy and yc and fy[-1] < min(yc))
    if led_by_y and fy and yc and _or_none(yb + yc + fy) is not None and _or_none(yb + fy + yc) is not None:
        y_cf = spec.y_rank - 1 not in yc
    return Layout(
        x_perm=_or_none(xb + (xc + fx if x_cf else fx + xc)),
        y_perm=_or_none(yb + (yc + fy if y_cf else fy + yc)),
        x_cf=x_cf,
        y_cf=y_cf,
        pairs=tuple(zip(spec.batch[0] + spec.contract[0], spec.batch[1] + spec.contract[1])),
        n_batch=len(xb),
        n_contract=len(xc),
        n_x_free=len(fx),
        n_y_free=len(fy),
        y_rank=spec.y_rank,
        expands=spec.keras_rank1 and spec.expands,
        scalar=spec.x_rank == 0 or spec.y_rank == 0,
    )


#: The permute/reshape lowering takes the layout led by y for a y of at least this many
#: elements (and more free elements than x): below it the copy's order costs nothing
#: measurable, the extra copy of x does (3 us more on CCSDT's jkbc,abcijk->ai at sizes 2-3).
LED_BY_Y_MIN = 2**16


def y_leads(y_elements: int, x_free: int, y_free: int) -> bool:
    """Whether the permute/reshape lowering takes :func:`larger_y_layout` (where there is
    one) for a y of ``y_elements`` with ``y_free`` free elements against x's ``x_free``:
    the rule the lowering applies per call and ``explain``'s copies count by."""
    return y_free > x_free and y_elements >= LED_BY_Y_MIN


def larger_y_layout(spec: Spec, lay: Layout) -> Optional[Layout]:
    """The layout led by y (see :func:`layout`) that the permute/reshape lowering takes
    for a y with more free elements than x has (the larger operand), or None where y
    needs no copy in ``lay`` (``layout(spec)``), where that copy keeps y's last axis last
    already (the layout led by y would only add a copy of x: CCSDT's ``aj,ijab->ib`` no
    faster), or where the layout led by y is the same."""
    if lay.y_perm is None or lay.y_perm[-1] == spec.y_rank - 1:
        return None
    by_y = layout(spec, led_by_y=True)
    same = (by_y.x_perm, by_y.y_perm, by_y.x_cf, by_y.y_cf) == (lay.x_perm, lay.y_perm, lay.x_cf, lay.y_cf)
    return None if same else by_y
