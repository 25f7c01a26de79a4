"""Parse each front end's ``axes`` argument into a :class:`~axisdot.spec.Spec`.

Pure Python: ints, tuples and strings only, no torch. Two steps:

* :func:`canonical` checks the *types* of an ``axes`` argument and returns it as plain
  ints and tuples (NumPy integers become ints, lists become tuples). Its result is
  hashable and is what the plan cache is keyed by.
* ``*_spec`` functions check the *values* against the operands' ranks (range, batch
  axis, counts, repeats, overlaps, in that order) and build the Spec.
"""
from __future__ import annotations

import numbers
from typing import Any, Union

from .errors import AxesError, AxesTypeError, ShapeError
from .render import CallText
from .spec import Spec

Canon = Union[None, int, tuple]

__all__ = [
    "as_int",
    "canonical",
    "as_key",
    "is_plain",
    "keras_pair",
    "keras_spec",
    "tensordot_spec",
    "general_spec",
]


def as_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise AxesTypeError(f"{where}: an axis must be an int, got the bool {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    raise AxesTypeError(
        f"{where}: an axis must be an int, got {type(value).__name__} {value!r}"
    )


def canonical(axes: Any, where: str = "axes", depth: int = 2) -> Canon:
    """``axes`` as plain ints and nested tuples (at most ``depth`` levels), types checked.

    >>> canonical([2, (1, 3)])
    (2, (1, 3))
    """
    if axes is None:
        return None
    if isinstance(axes, (tuple, list)):
        if depth == 0:
            raise AxesTypeError(f"{where}: expected an int, got the sequence {axes!r}")
        return tuple(
            _canonical_item(item, f"{where}[{i}]", depth - 1) for i, item in enumerate(axes)
        )
    return as_int(axes, where)


#: tuples found plain, by id, each kept alive so that its id cannot be reused: a call
#: site's constant tuple is checked once (immutable, it stays plain)
_PLAIN: dict[int, tuple] = {}


def is_plain(axes: Any) -> bool:
    """True when ``axes`` is already canonical: an exact int, or a tuple of exact ints
    and tuples of exact ints (no bools, no NumPy integers, no lists). Such an ``axes``
    can key a plan cache as it is; anything else goes through :func:`canonical` first."""
    kind = axes.__class__
    if kind is int:
        return True
    if kind is not tuple:
        return False
    if _PLAIN.get(id(axes)) is axes:
        return True
    for item in axes:
        kind = item.__class__
        if kind is tuple:
            for a in item:
                if a.__class__ is not int:
                    return False
        elif kind is not int:
            return False
    if len(_PLAIN) < 256:
        _PLAIN[id(axes)] = axes
    return True


def as_key(axes: Any) -> Canon:
    """``axes`` as it keys a plan cache: itself when :func:`is_plain`, else
    :func:`canonical` (which refuses what is not an axes spec)."""
    return axes if is_plain(axes) else canonical(axes)


def _canonical_item(item: Any, where: str, depth: int) -> Canon:
    if item is None:
        raise AxesTypeError(f"{where}: an axis must be an int, got None")
    return canonical(item, where, depth)


def _normalized(axes: tuple[int, ...], rank: int, name: str, call: object) -> tuple[int, ...]:
    """The axes made non-negative, each checked to be in range and used once."""
    out = []
    for axis in axes:
        if not -rank <= axis < rank:
            raise AxesError(
                f"{call}: {name} axis {axis} is out of range for {name} of rank {rank} "
                f"(valid axes: {-rank} to {rank - 1})"
            )
        a = axis + rank if axis < 0 else axis
        if a in out:
            raise AxesError(f"{call}: {name} axis {a} appears twice; each axis may be used once")
        out.append(a)
    return tuple(out)


def _axis_list(value: Canon) -> tuple[int, ...]:
    return value if value.__class__ is tuple else (value,)  # type: ignore[return-value]


def _pairs(
    x_axes: tuple[int, ...], y_axes: tuple[int, ...], x_rank: int, y_rank: int, call: object
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if len(x_axes) != len(y_axes):
        raise AxesError(
            f"{call}: x has {len(x_axes)} axes {x_axes} but y has {len(y_axes)} axes "
            f"{y_axes}; the two lists must have equal length"
        )
    xs = _normalized(x_axes, x_rank, "x", call)
    return xs, _normalized(y_axes, y_rank, "y", call)


def _check_rank(x_rank: int, y_rank: int, minimum: int, func: str) -> None:
    if x_rank < minimum or y_rank < minimum:
        name, rank = ("x", x_rank) if x_rank < minimum else ("y", y_rank)
        raise ShapeError(
            f"{func} needs inputs of rank >= {minimum} (axis 0 is the batch axis), "
            f"got {name} of rank {rank}"
        )


def keras_pair(axes: Canon, call: object) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The rank-free part of Keras's ``axes`` rules: an int (the same axis of both), a
    pair of ints, or a pair of non-empty sequences; never axis 0 as written. The
    ``Dot`` layer checks this much at construction, the functions at every new rank."""
    if axes is None:
        raise AxesTypeError(f"{call}: axes must be an int or a pair (x_axis, y_axis), got None")
    if axes.__class__ is int:
        axes = (axes, axes)
    if len(axes) != 2:
        raise AxesError(
            f"{call}: axes must be an int or a pair (x_axis, y_axis), "
            f"got a sequence of {len(axes)} items"
        )
    first, second = axes
    if (first.__class__ is tuple) != (second.__class__ is tuple):
        raise AxesError(
            f"{call}: give either two ints or two sequences of ints, not one of each"
        )
    x_axes, y_axes = _axis_list(first), _axis_list(second)
    if not x_axes:
        raise AxesError(f"{call}: at least one axis must be contracted, got empty lists")
    if 0 in x_axes or 0 in y_axes:
        raise _batch_axis(call, "x" if 0 in x_axes else "y", 0)
    return x_axes, y_axes


def _batch_axis(call: object, name: str, written: int) -> AxesError:
    return AxesError(
        f"{call}: {name} axis {written} is axis 0, the batch axis, which cannot be "
        f"contracted; add a batch axis with x.unsqueeze(0) or use "
        f"axisdot.tensordot for unbatched inputs"
    )


def keras_spec(axes: Canon, x_rank: int, y_rank: int, func: str = "dot") -> Spec:
    """Keras ``Dot`` / ``batch_dot`` axes: axis 0 of both is the batch axis.

    ``axes`` is an int (the same axis of both, negative counting from the end of each
    input separately), a pair of ints, or (an axisdot extension) a pair of equal-length
    sequences; ``None`` is batch_dot's default. Results of rank 1 become ``(batch, 1)``.
    """
    _check_rank(x_rank, y_rank, 2, func)
    call = CallText(lambda: f"{func}(x, y, axes={axes!r})")
    if axes is None and func == "batch_dot":
        axes = (x_rank - 1, y_rank - 1 if y_rank == 2 else y_rank - 2)
    x_axes, y_axes = keras_pair(axes, call)
    xs, ys = _pairs(x_axes, y_axes, x_rank, y_rank, call)
    if 0 in xs or 0 in ys:  # written negative: -rank is axis 0
        name, written, normed = ("x", x_axes, xs) if 0 in xs else ("y", y_axes, ys)
        raise _batch_axis(call, name, written[normed.index(0)])
    return Spec(x_rank, y_rank, ((0,), (0,)), (xs, ys), keras_rank1=True)


def tensordot_spec(axes: Canon, x_rank: int, y_rank: int) -> Spec:
    """NumPy ``tensordot`` axes: an int N (last N of x with first N of y) or a pair of
    axis lists (an int in the pair stands for a one-item list). No batch axis."""
    call = CallText(lambda: f"tensordot(x, y, axes={axes!r})")
    if isinstance(axes, int):
        if axes < 0:
            raise AxesError(f"{call}: the number of axes to contract must be >= 0, got {axes}")
        if axes > min(x_rank, y_rank):
            raise AxesError(
                f"{call}: cannot contract {axes} axes when x has rank {x_rank} "
                f"and y has rank {y_rank}"
            )
        xs = tuple(range(x_rank - axes, x_rank))
        return Spec(x_rank, y_rank, ((), ()), (xs, tuple(range(axes))))
    if not isinstance(axes, tuple) or len(axes) != 2:
        raise AxesError(f"{call}: axes must be an int or a pair (x_axes, y_axes)")
    xs, ys = _pairs(_axis_list(axes[0]), _axis_list(axes[1]), x_rank, y_rank, call)
    return Spec(x_rank, y_rank, ((), ()), (xs, ys))


def general_spec(contract: Canon, batch: Canon, x_rank: int, y_rank: int) -> Spec:
    """``jax.lax.dot_general`` dimension numbers: ``contract=((x axes), (y axes))`` and
    ``batch=((x axes), (y axes))``; negative axes count from the end."""
    call = CallText(lambda: f"dot_general(x, y, contract={contract!r}, batch={batch!r})")
    groups = []
    for name, value in (("contract", contract), ("batch", batch)):
        if not isinstance(value, tuple) or len(value) != 2:
            raise AxesError(f"{call}: {name} must be a pair (x_axes, y_axes), e.g. {name}=((2,), (1,))")
        groups.append(_pairs(_axis_list(value[0]), _axis_list(value[1]), x_rank, y_rank, call))
    (cx, cy), (bx, by) = groups
    for name, c, b in (("x", cx, bx), ("y", cy, by)):
        both = sorted(set(c) & set(b))
        if both:
            raise AxesError(f"{call}: {name} axis {both[0]} is both a batch and a contracted axis")
    return Spec(x_rank, y_rank, (bx, by), (cx, cy))
