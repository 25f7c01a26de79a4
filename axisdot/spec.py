"""The spec: one two-operand contraction in ``dot_general`` form, and its shape rule.

Every two-operand front end (``dot``, ``batch_dot``, ``tensordot``, ``dot_general``)
parses its arguments into a :class:`Spec`. The output axis order is a contract, as in
``jax.lax.dot_general``: batch axes (in the order given), then x's free axes in order,
then y's free axes in order. This module knows nothing of torch.
"""
from __future__ import annotations

from typing import Optional, Sequence

from .errors import ShapeError
from .render import mark_axes

#: A shape whose sizes are known.
Shape = tuple[int, ...]
#: A shape in which a size may be unknown (None), as in a Keras config or ``explain``.
PartialShape = tuple[Optional[int], ...]
AxisPair = tuple[tuple[int, ...], tuple[int, ...]]

__all__ = ["Spec", "Shape", "PartialShape", "output_shape", "AXES"]


class _Ranges(dict):
    """``AXES[n] == tuple(range(n))``: held for every n up to 64 (the ranks tensors have
    in practice), made for any other. Plans are built from these; a build looks them
    up (a subscript, not a call) instead of making them."""

    def __missing__(self, n: int) -> tuple[int, ...]:
        return tuple(range(n))


AXES: dict[int, tuple[int, ...]] = _Ranges((n, tuple(range(n))) for n in range(65))


def _free(rank: int, used: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of ``range(rank)`` not in ``used``, in order (a loop: cheaper than a
    comprehension on these few axes, and a plan build makes two)."""
    if not used:
        return AXES[rank]
    free = []
    for a in range(rank):
        if a not in used:
            free.append(a)
    return tuple(free)


class Spec:
    """Which axes of x and y are batch, which are contracted; the rest are free.

    ``batch`` and ``contract`` hold non-negative axes, pairwise: ``batch[0][i]`` of x
    goes with ``batch[1][i]`` of y. ``keras_rank1`` is the Keras rule that a result of
    rank 1 is returned as ``(batch, 1)``. A Spec is valid by construction: the parsers
    in :mod:`axisdot.axes` check ranges, counts, repeats and overlaps before building one.
    It is a value (equal Specs compare and hash equal) and is never changed once made.
    """

    __slots__ = ("x_rank", "y_rank", "batch", "contract", "keras_rank1", "x_free", "y_free")

    def __init__(self, x_rank: int, y_rank: int, batch: AxisPair, contract: AxisPair,
                 keras_rank1: bool = False, free: Optional[AxisPair] = None) -> None:
        self.x_rank, self.y_rank = x_rank, y_rank
        self.batch, self.contract = batch, contract
        self.keras_rank1 = keras_rank1
        #: each input's axes that are neither batch nor contracted, in order: derived, or
        #: ``free`` when the caller found them already (an einsum step's scan of its letters)
        if free is None:
            self.x_free: tuple[int, ...] = _free(x_rank, batch[0] + contract[0])
            self.y_free: tuple[int, ...] = _free(y_rank, batch[1] + contract[1])
        else:
            self.x_free, self.y_free = free

    def _key(self) -> tuple:
        return (self.x_rank, self.y_rank, self.batch, self.contract, self.keras_rank1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Spec) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Spec(x_rank={self.x_rank}, y_rank={self.y_rank}, batch={self.batch}, contract={self.contract}, "
                f"keras_rank1={self.keras_rank1})")

    @property
    def expands(self) -> bool:
        """True when the Keras (batch, 1) rule appends a size-1 axis to the result."""
        return self.keras_rank1 and len(self.batch[0]) + len(self.x_free) + len(self.y_free) == 1


def _clash(kind: str, xa: int, ya: int, x_shape: Shape, y_shape: Shape) -> ShapeError:
    lines = [
        f"cannot pair x axis {xa} (size {x_shape[xa]}) with y axis {ya} "
        f"(size {y_shape[ya]}): {kind} axes must have equal sizes",
        f"  x: {mark_axes(x_shape, [xa])}",
        f"  y: {mark_axes(y_shape, [ya])}",
    ]
    fits = [a for a, n in enumerate(y_shape) if n == x_shape[xa] and a != ya]
    if kind == "contracted" and fits:
        lines.append(f"  y axes of size {x_shape[xa]}: {', '.join(map(str, fits))}")
    return ShapeError("\n".join(lines))


def _sizes(shape: Sequence[Optional[int]]) -> PartialShape:
    return tuple(None if n is None else int(n) for n in shape)


def output_shape(spec: Spec, x_shape: Sequence[Optional[int]], y_shape: Sequence[Optional[int]]) -> PartialShape:
    """The result's shape, or a :class:`ShapeError` naming the first axis pair that clashes.

    This one function serves the run-time check, ``equation`` and ``explain``, so their
    answers cannot disagree. A size may be ``None`` (unknown, as in a Keras config): it
    is not checked and stays ``None`` in the result.
    """
    xs, ys = _sizes(x_shape), _sizes(y_shape)
    if (len(xs), len(ys)) != (spec.x_rank, spec.y_rank):
        raise ShapeError(
            f"expected x of rank {spec.x_rank} and y of rank {spec.y_rank}, "
            f"got shapes {xs} and {ys}"
        )
    for kind, (xa_all, ya_all) in (("batch", spec.batch), ("contracted", spec.contract)):
        for xa, ya in zip(xa_all, ya_all):
            if xs[xa] != ys[ya] and xs[xa] is not None and ys[ya] is not None:
                raise _clash(kind, xa, ya, xs, ys)
    out = (
        tuple(xs[a] for a in spec.batch[0])
        + tuple(xs[a] for a in spec.x_free)
        + tuple(ys[a] for a in spec.y_free)
    )
    return out + (1,) if spec.expands else out
