"""Hypothesis strategies for contraction problems, in the manner of hypothesis.extra.numpy.

Each two-operand strategy draws a :class:`Problem`: shapes and an ``axes`` argument that
fit together, in every form the front end takes (int, pair, negative, multi-axis), plus
``expected_shape``, the result's shape known from how the problem was built (not from
axisdot). Problems shrink toward low ranks, small sides and the simplest axes form.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from hypothesis import strategies as st

__all__ = [
    "Problem",
    "EinsumProblem",
    "dot_problems",
    "batch_dot_problems",
    "tensordot_problems",
    "dot_general_problems",
    "einsum_problems",
    "tensors",
    "DTYPES",
]

#: dtypes :func:`tensors` draws from by default.
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64)


@dataclass(frozen=True)
class Problem:
    """A two-operand contraction: ``func(x, y, **kwargs)`` with x and y of these shapes."""

    func: str
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    axes: Any
    normalize: bool = False
    batch: Any = None  # dot_general only: ((x axes), (y axes))
    expected_shape: tuple[int, ...] = field(default=(), compare=False)

    @property
    def kwargs(self) -> dict[str, Any]:
        if self.func == "dot_general":
            return {"contract": self.axes, "batch": self.batch}
        if self.func == "dot" and self.normalize:
            return {"axes": self.axes, "normalize": True}
        return {"axes": self.axes}

    def call(self, fn: Callable[..., Any], x: Any, y: Any) -> Any:
        """``fn(x, y, **kwargs)``: run any function with this front end's signature."""
        return fn(x, y, **self.kwargs)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.func}(x: {self.x_shape}, y: {self.y_shape}, {args})"


def _check_bounds(**bounds: int) -> None:
    for name, value in bounds.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    if bounds["min_rank"] > bounds["max_rank"]:
        raise ValueError(f"min_rank={bounds['min_rank']} > max_rank={bounds['max_rank']}")
    if bounds["min_side"] > bounds["max_side"]:
        raise ValueError(f"min_side={bounds['min_side']} > max_side={bounds['max_side']}")


def _side(min_side: int, max_side: int) -> st.SearchStrategy[int]:
    return st.integers(min_side, max_side)


@st.composite
def _layout(draw: st.DrawFn, n_batch: int, min_rank: int, max_rank: int, max_contract: int,
            min_side: int, max_side: int, max_batch: int) -> dict[str, Any]:
    """Positions and sizes of batch, contracted and free axes of x and y."""
    x_rank = draw(st.integers(max(min_rank, n_batch), max_rank))
    y_rank = draw(st.integers(max(min_rank, n_batch), max_rank))
    room = min(x_rank, y_rank) - n_batch
    k = draw(st.integers(min(1, room), max(min(1, room), min(room, max_contract))))
    x_order = draw(st.permutations(range(n_batch, x_rank))) if n_batch else draw(st.permutations(range(x_rank)))
    y_order = draw(st.permutations(range(n_batch, y_rank))) if n_batch else draw(st.permutations(range(y_rank)))
    cx, cy = tuple(x_order[:k]), tuple(y_order[:k])
    batch_sizes = [draw(st.integers(min_side, max(min_side, max_batch))) for _ in range(n_batch)]
    c_sizes = [draw(_side(min_side, max_side)) for _ in range(k)]
    x_shape = [0] * x_rank
    y_shape = [0] * y_rank
    for i in range(n_batch):
        x_shape[i] = y_shape[i] = batch_sizes[i]
    for a, b, n in zip(cx, cy, c_sizes):
        x_shape[a] = y_shape[b] = n
    x_free = [a for a in range(n_batch, x_rank) if a not in cx]
    y_free = [a for a in range(n_batch, y_rank) if a not in cy]
    for a in x_free:
        x_shape[a] = draw(_side(min_side, max_side))
    for a in y_free:
        y_shape[a] = draw(_side(min_side, max_side))
    expected = tuple(batch_sizes) + tuple(x_shape[a] for a in x_free) + tuple(y_shape[a] for a in y_free)
    return dict(x_shape=tuple(x_shape), y_shape=tuple(y_shape), cx=cx, cy=cy, expected=expected)


def _written(draw: st.DrawFn, axis: int, rank: int) -> int:
    """An axis as a user may write it: positive or negative."""
    return axis - rank if draw(st.booleans()) else axis


@st.composite
def _keras_problems(draw: st.DrawFn, func: str, min_rank: int, max_rank: int, min_side: int,
                    max_side: int, max_batch: int, multi_axis: bool, normalize: Optional[bool]) -> Problem:
    lay = draw(_layout(1, min_rank, max_rank, 3 if multi_axis else 1, min_side, max_side, max_batch))
    xr, yr = len(lay["x_shape"]), len(lay["y_shape"])
    cx, cy = lay["cx"], lay["cy"]
    if len(cx) > 1:
        seq = draw(st.sampled_from([tuple, list]))
        axes: Any = (seq(_written(draw, a, xr) for a in cx), seq(_written(draw, b, yr) for b in cy))
    else:
        (a,), (b,) = cx, cy
        forms = [(_written(draw, a, xr), _written(draw, b, yr)), [a, b]]
        if a == b:
            forms.append(a)
        if a - xr == b - yr:
            forms.append(a - xr)
        axes = draw(st.sampled_from(forms))
    if func == "batch_dot" and not multi_axis and draw(st.booleans()):
        default = (xr - 1, yr - 1 if yr == 2 else yr - 2)
        if (cx[0], cy[0]) == default:
            axes = None
    expected = lay["expected"]
    if len(expected) == 1:
        expected = expected + (1,)
    norm = draw(st.booleans()) if normalize is None else normalize
    return Problem(func, lay["x_shape"], lay["y_shape"], axes, normalize=norm and func == "dot",
                   expected_shape=expected)


def dot_problems(*, min_rank: int = 2, max_rank: int = 4, min_side: int = 0, max_side: int = 4,
                 max_batch: int = 3, multi_axis: bool = True,
                 normalize: Optional[bool] = False) -> st.SearchStrategy[Problem]:
    """Valid ``axisdot.dot`` / ``keras.layers.Dot`` problems. ``multi_axis=False`` keeps
    to the forms Keras itself accepts; ``normalize=None`` draws it too."""
    _check_bounds(min_rank=min_rank, max_rank=max_rank, min_side=min_side, max_side=max_side,
                  max_batch=max_batch)
    if min_rank < 2:
        raise ValueError(f"dot needs inputs of rank >= 2, got min_rank={min_rank}")
    return _keras_problems("dot", min_rank, max_rank, min_side, max_side, max_batch, multi_axis, normalize)


def batch_dot_problems(*, min_rank: int = 2, max_rank: int = 4, min_side: int = 0, max_side: int = 4,
                       max_batch: int = 3, multi_axis: bool = True) -> st.SearchStrategy[Problem]:
    """Valid ``batch_dot`` problems, including ``axes=None`` where it applies."""
    _check_bounds(min_rank=min_rank, max_rank=max_rank, min_side=min_side, max_side=max_side,
                  max_batch=max_batch)
    if min_rank < 2:
        raise ValueError(f"batch_dot needs inputs of rank >= 2, got min_rank={min_rank}")
    return _keras_problems("batch_dot", min_rank, max_rank, min_side, max_side, max_batch, multi_axis, False)


@st.composite
def _tensordot(draw: st.DrawFn, min_rank: int, max_rank: int, min_side: int, max_side: int) -> Problem:
    if draw(st.booleans()):  # the int form: last N of x with first N of y
        xr = draw(st.integers(min_rank, max_rank))
        yr = draw(st.integers(min_rank, max_rank))
        n = draw(st.integers(0, min(xr, yr)))
        shared = [draw(_side(min_side, max_side)) for _ in range(n)]
        xs = tuple(draw(_side(min_side, max_side)) for _ in range(xr - n)) + tuple(shared)
        ys = tuple(shared) + tuple(draw(_side(min_side, max_side)) for _ in range(yr - n))
        return Problem("tensordot", xs, ys, n, expected_shape=xs[: xr - n] + ys[n:])
    lay = draw(_layout(0, min_rank, max_rank, 3, min_side, max_side, 0))
    xr, yr = len(lay["x_shape"]), len(lay["y_shape"])
    cx = [_written(draw, a, xr) for a in lay["cx"]]
    cy = [_written(draw, b, yr) for b in lay["cy"]]
    axes: Any = (tuple(cx), tuple(cy)) if len(cx) != 1 or draw(st.booleans()) else (cx[0], cy[0])
    return Problem("tensordot", lay["x_shape"], lay["y_shape"], axes, expected_shape=lay["expected"])


def tensordot_problems(*, min_rank: int = 0, max_rank: int = 4, min_side: int = 0,
                       max_side: int = 4) -> st.SearchStrategy[Problem]:
    """Valid ``tensordot`` problems: an int count or a pair of axis lists."""
    _check_bounds(min_rank=min_rank, max_rank=max_rank, min_side=min_side, max_side=max_side, max_batch=0)
    return _tensordot(min_rank, max_rank, min_side, max_side)


@st.composite
def _general(draw: st.DrawFn, min_rank: int, max_rank: int, min_side: int, max_side: int,
             max_batch: int, max_batch_axes: int) -> Problem:
    n_batch = draw(st.integers(0, min(max_batch_axes, max_rank)))
    lay = draw(_layout(n_batch, min_rank, max_rank, 3, min_side, max_side, max_batch))
    xr, yr = len(lay["x_shape"]), len(lay["y_shape"])
    # move the batch axes of x and y to random places, so they need not lead
    x_perm = draw(st.permutations(range(xr)))
    y_perm = draw(st.permutations(range(yr)))
    xs = tuple(lay["x_shape"][p] for p in x_perm)
    ys = tuple(lay["y_shape"][p] for p in y_perm)
    where_x = {p: i for i, p in enumerate(x_perm)}
    where_y = {p: i for i, p in enumerate(y_perm)}
    contract = (tuple(_written(draw, where_x[a], xr) for a in lay["cx"]),
                tuple(_written(draw, where_y[b], yr) for b in lay["cy"]))
    batch = (tuple(where_x[i] for i in range(n_batch)), tuple(where_y[i] for i in range(n_batch)))
    x_free = [where_x[a] for a in range(n_batch, xr) if a not in lay["cx"]]
    y_free = [where_y[a] for a in range(n_batch, yr) if a not in lay["cy"]]
    expected = (tuple(xs[a] for a in batch[0]) + tuple(xs[a] for a in sorted(x_free))
                + tuple(ys[a] for a in sorted(y_free)))
    return Problem("dot_general", xs, ys, contract, batch=batch, expected_shape=expected)


def dot_general_problems(*, min_rank: int = 0, max_rank: int = 4, min_side: int = 0, max_side: int = 4,
                         max_batch: int = 3, max_batch_axes: int = 2) -> st.SearchStrategy[Problem]:
    """Valid ``dot_general`` problems with batch axes anywhere (not only leading)."""
    _check_bounds(min_rank=min_rank, max_rank=max_rank, min_side=min_side, max_side=max_side,
                  max_batch=max_batch)
    return _general(min_rank, max_rank, min_side, max_side, max_batch, max_batch_axes)


@dataclass(frozen=True)
class EinsumProblem:
    """An einsum equation and operand shapes that fit it."""

    equation: str
    shapes: tuple[tuple[int, ...], ...]

    def __repr__(self) -> str:
        return f"einsum({self.equation!r}, shapes={self.shapes})"


@st.composite
def _einsum(draw: st.DrawFn, n_operands: int, max_rank: int, min_side: int, max_side: int,
            max_letters: int) -> EinsumProblem:
    pool = "ijklmnopqrstuvwxyzabcdefgh"[:max_letters]
    sizes = {c: draw(_side(min_side, max_side)) for c in pool}
    terms = []
    for _ in range(n_operands):
        rank = draw(st.integers(0, max_rank))
        terms.append("".join(draw(st.lists(st.sampled_from(pool), min_size=rank, max_size=rank, unique=True))))
    used = sorted(set("".join(terms)))
    out = draw(st.permutations(used))[: draw(st.integers(0, len(used)))] if used else []
    shapes = tuple(tuple(sizes[c] for c in t) for t in terms)
    return EinsumProblem(",".join(terms) + "->" + "".join(out), shapes)


def einsum_problems(*, n_operands: int = 3, max_rank: int = 3, min_side: int = 0, max_side: int = 4,
                    max_letters: int = 6) -> st.SearchStrategy[EinsumProblem]:
    """Valid einsum equations over ``n_operands`` operands with explicit output."""
    if n_operands < 1:
        raise ValueError(f"n_operands must be >= 1, got {n_operands}")
    return _einsum(n_operands, max_rank, min_side, max_side, max_letters)


@st.composite
def _tensor(draw: st.DrawFn, shape: tuple[int, ...], dtype: torch.dtype, bound: float) -> torch.Tensor:
    seed = draw(st.integers(0, 2**32 - 1))
    gen = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point or dtype.is_complex:
        t = torch.rand(shape, generator=gen, dtype=torch.float64) * 2 * bound - bound
        if dtype.is_complex:
            t = torch.complex(t, torch.rand(shape, generator=gen, dtype=torch.float64) * 2 * bound - bound)
        return t.to(dtype)
    return torch.randint(-int(bound), int(bound) + 1, shape, generator=gen, dtype=dtype)


def tensors(shape: tuple[int, ...], *, dtype: Optional[torch.dtype] = None,
            bound: float = 2.0) -> st.SearchStrategy[torch.Tensor]:
    """Tensors of ``shape`` with values in ``[-bound, bound]`` (integers for int dtypes).
    Values come from a drawn seed, so a failing example replays exactly."""
    dtypes = st.just(dtype) if dtype is not None else st.sampled_from(DTYPES)
    return dtypes.flatmap(lambda d: _tensor(tuple(shape), d, bound))
