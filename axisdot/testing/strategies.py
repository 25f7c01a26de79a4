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
    "InvalidProblem",
    "InvalidEinsumProblem",
    "FORMS",
    "RULES",
    "invalid_dot_problems",
    "invalid_batch_dot_problems",
    "invalid_tensordot_problems",
    "invalid_dot_general_problems",
    "invalid_einsum_problems",
    "dot_problems",
    "batch_dot_problems",
    "tensordot_problems",
    "dot_general_problems",
    "einsum_problems",
    "tensors",
    "DTYPES",
    "UNICODE_LETTERS",
    "EinsumDenseConfig",
    "einsum_dense_configs",
    "DENSE_ACTIVATIONS",
    "AttentionConfig",
    "attention_configs",
]

#: dtypes :func:`tensors` draws from by default.
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64)


class _TwoOperandCall:
    """What a two-operand problem shares: its keyword arguments and how to call with them."""

    func: str
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    axes: Any
    batch: Any

    @property
    def kwargs(self) -> dict[str, Any]:
        if self.func == "dot_general":
            return {"contract": self.axes, "batch": self.batch}
        if self.func == "dot" and getattr(self, "normalize", False):
            return {"axes": self.axes, "normalize": True}
        return {"axes": self.axes}

    def call(self, fn: Callable[..., Any], x: Any, y: Any) -> Any:
        """``fn(x, y, **kwargs)``: run any function with this front end's signature."""
        return fn(x, y, **self.kwargs)

    def _call_text(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.func}(x: {self.x_shape}, y: {self.y_shape}, {args})"


@dataclass(frozen=True)
class Problem(_TwoOperandCall):
    """A two-operand contraction: ``func(x, y, **kwargs)`` with x and y of these shapes."""

    func: str
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    axes: Any
    normalize: bool = False
    batch: Any = None  # dot_general only: ((x axes), (y axes))
    expected_shape: tuple[int, ...] = field(default=(), compare=False)
    #: how ``axes`` is written: one of :data:`FORMS`
    form: str = field(default="pair", compare=False)

    def __repr__(self) -> str:
        return self._call_text()


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


#: The ways an ``axes`` argument can be written. ``int``: one non-negative int for both
#: inputs; ``negative``: one negative int (counted from the end of each input);
#: ``pair``: ``(x_axis, y_axis)``, entries possibly negative; ``multi``: a pair of
#: sequences (several axes at once, an axisdot extension for dot and batch_dot);
#: ``none``: batch_dot's default; ``count``: tensordot's int N.
FORMS = ("int", "negative", "pair", "multi", "none", "count")


def _kinds(kind: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    kinds = allowed if kind is None else (kind,) if isinstance(kind, str) else tuple(kind)
    bad = [k for k in kinds if k not in allowed]
    if bad or not kinds:
        raise ValueError(f"kind must be one of {allowed} (or a collection of them), got {kind!r}")
    return kinds


def _fixed_min_ranks(axes: Any) -> tuple[int, int]:
    """The smallest ranks of x and y for which a Keras-style ``axes`` is valid."""
    pair = (axes, axes) if isinstance(axes, int) else axes
    need = []
    for side in pair:
        items = side if isinstance(side, (list, tuple)) else [side]
        need.append(max(2, *[a + 1 if a >= 0 else -a + 1 for a in items]))
    return need[0], need[1]


def _fixed_axes(axes: Any, x_rank: int, y_rank: int) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    pair = (axes, axes) if isinstance(axes, int) else axes
    sides = []
    for side, rank in zip(pair, (x_rank, y_rank)):
        items = side if isinstance(side, (list, tuple)) else [side]
        sides.append(tuple(a + rank if a < 0 else a for a in items))
    form = ("negative" if axes < 0 else "int") if isinstance(axes, int) else (
        "multi" if isinstance(pair[0], (list, tuple)) else "pair")
    return sides[0], sides[1], form


@st.composite
def _keras_problems(draw: st.DrawFn, func: str, min_rank: int, max_rank: int, min_side: int,
                    max_side: int, max_batch: int, kinds: tuple[str, ...], normalize: Optional[bool],
                    fixed: Any = None) -> Problem:
    form = draw(st.sampled_from(kinds))
    if fixed is not None:
        low_x, low_y = _fixed_min_ranks(fixed)
        x_rank = draw(st.integers(max(min_rank, low_x), max(max_rank, low_x)))
        y_rank = draw(st.integers(max(min_rank, low_y), max(max_rank, low_y)))
    else:
        x_rank = draw(st.integers(min_rank, max_rank))
        y_rank = draw(st.integers(min_rank, max_rank))
    low = min(x_rank, y_rank)
    if fixed is not None:
        cx, cy, form = _fixed_axes(fixed, x_rank, y_rank)
        axes = fixed
    elif form == "int":
        a = draw(st.integers(1, low - 1))
        cx, cy, axes = (a,), (a,), a
    elif form == "negative":
        n = draw(st.integers(1, low - 1))
        cx, cy, axes = (x_rank - n,), (y_rank - n,), -n
    elif form == "none":
        cx, cy, axes = (x_rank - 1,), (y_rank - 1 if y_rank == 2 else y_rank - 2,), None
    elif form == "pair":
        a, b = draw(st.integers(1, x_rank - 1)), draw(st.integers(1, y_rank - 1))
        cx, cy = (a,), (b,)
        axes = draw(st.sampled_from([tuple, list]))((_written(draw, a, x_rank), _written(draw, b, y_rank)))
    else:  # multi
        k = draw(st.integers(1, min(3, low - 1)))
        cx = tuple(draw(st.permutations(range(1, x_rank)))[:k])
        cy = tuple(draw(st.permutations(range(1, y_rank)))[:k])
        seq = draw(st.sampled_from([tuple, list]))
        axes = (seq(_written(draw, a, x_rank) for a in cx), seq(_written(draw, b, y_rank) for b in cy))
    side = _side(min_side, max_side)
    batch = draw(st.integers(min_side, max(min_side, max_batch)))
    x_shape = [batch] + [draw(side) for _ in range(x_rank - 1)]
    y_shape = [batch] + [draw(side) for _ in range(y_rank - 1)]
    for a, b in zip(cx, cy):
        y_shape[b] = x_shape[a]
    expected = (batch,) + tuple(x_shape[a] for a in range(1, x_rank) if a not in cx) + tuple(
        y_shape[b] for b in range(1, y_rank) if b not in cy)
    if len(expected) == 1:
        expected += (1,)
    norm = draw(st.booleans()) if normalize is None else normalize
    return Problem(func, tuple(x_shape), tuple(y_shape), axes, normalize=norm and func == "dot",
                   expected_shape=expected, form=form)


KERAS_FORMS = ("int", "negative", "pair")


def dot_problems(*, min_rank: int = 2, max_rank: int = 4, min_side: int = 0, max_side: int = 4,
                 max_batch: int = 3, kind: Any = None, multi_axis: bool = True,
                 normalize: Optional[bool] = False, axes: Any = None) -> st.SearchStrategy[Problem]:
    """Valid ``axisdot.dot`` / ``keras.layers.Dot`` problems.

    ``kind`` picks the axes forms drawn (``"int"``, ``"negative"``, ``"pair"``,
    ``"multi"``, or a collection of them; all by default). ``multi_axis=False`` keeps to
    the forms Keras itself accepts. ``normalize=None`` draws ``normalize`` too. ``axes``
    fixes the axes argument (for a function with fixed axes, such as attention scores,
    ``axes=(2, 2)``) and draws only shapes that fit it; ranks grow to what it needs.

    >>> from hypothesis import find
    >>> find(dot_problems(axes=(2, 2), min_rank=3, max_rank=3), lambda p: p.x_shape[1] > 1)
    dot(x: (0, 2, 0), y: (0, 0, 0), axes=(2, 2))
    """
    _check_bounds(min_rank=min_rank, max_rank=max_rank, min_side=min_side, max_side=max_side,
                  max_batch=max_batch)
    if min_rank < 2:
        raise ValueError(f"dot needs inputs of rank >= 2, got min_rank={min_rank}")
    kinds = _kinds(kind, (KERAS_FORMS + ("multi",)) if multi_axis else KERAS_FORMS)
    fixed = _fixed(axes, "dot_problems")
    return _keras_problems("dot", min_rank, max_rank, min_side, max_side, max_batch, kinds, normalize, fixed)


def _fixed(axes: Any, where: str) -> Any:
    if axes is None:
        return None
    from ..axes import canonical

    try:
        fixed = canonical(axes)
    except Exception as err:
        raise ValueError(f"{where}(axes={axes!r}): {err}") from None
    pair = (fixed, fixed) if isinstance(fixed, int) else fixed
    if len(pair) != 2 or any(a in (0,) for side in pair for a in (side if isinstance(side, tuple) else (side,))):
        raise ValueError(f"{where}(axes={axes!r}): axes must be an int or a pair, and may not name the batch axis 0")
    return axes


def batch_dot_problems(*, min_rank: int = 2, max_rank: int = 4, min_side: int = 0, max_side: int = 4,
                       max_batch: int = 3, kind: Any = None, multi_axis: bool = True,
                       axes: Any = None) -> st.SearchStrategy[Problem]:
    """Valid ``batch_dot`` problems; ``kind`` and ``axes`` as for :func:`dot_problems`,
    plus the kind ``"none"`` (``axes=None``, batch_dot's default)."""
    _check_bounds(min_rank=min_rank, max_rank=max_rank, min_side=min_side, max_side=max_side,
                  max_batch=max_batch)
    if min_rank < 2:
        raise ValueError(f"batch_dot needs inputs of rank >= 2, got min_rank={min_rank}")
    kinds = _kinds(kind, KERAS_FORMS + ("none",) + (("multi",) if multi_axis else ()))
    fixed = _fixed(axes, "batch_dot_problems")
    return _keras_problems("batch_dot", min_rank, max_rank, min_side, max_side, max_batch, kinds, False, fixed)


@st.composite
def _tensordot(draw: st.DrawFn, min_rank: int, max_rank: int, min_side: int, max_side: int) -> Problem:
    if draw(st.booleans()):  # the int form: last N of x with first N of y
        xr = draw(st.integers(min_rank, max_rank))
        yr = draw(st.integers(min_rank, max_rank))
        n = draw(st.integers(0, min(xr, yr)))
        shared = [draw(_side(min_side, max_side)) for _ in range(n)]
        xs = tuple(draw(_side(min_side, max_side)) for _ in range(xr - n)) + tuple(shared)
        ys = tuple(shared) + tuple(draw(_side(min_side, max_side)) for _ in range(yr - n))
        return Problem("tensordot", xs, ys, n, expected_shape=xs[: xr - n] + ys[n:], form="count")
    lay = draw(_layout(0, min_rank, max_rank, 3, min_side, max_side, 0))
    xr, yr = len(lay["x_shape"]), len(lay["y_shape"])
    cx = [_written(draw, a, xr) for a in lay["cx"]]
    cy = [_written(draw, b, yr) for b in lay["cy"]]
    axes: Any = (tuple(cx), tuple(cy)) if len(cx) != 1 or draw(st.booleans()) else (cx[0], cy[0])
    form = "pair" if isinstance(axes[0], int) else "multi"
    return Problem("tensordot", lay["x_shape"], lay["y_shape"], axes, expected_shape=lay["expected"], form=form)


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
    return Problem("dot_general", xs, ys, contract, batch=batch, expected_shape=expected, form="multi")


def dot_general_problems(*, min_rank: int = 0, max_rank: int = 4, min_side: int = 0, max_side: int = 4,
                         max_batch: int = 3, max_batch_axes: int = 2) -> st.SearchStrategy[Problem]:
    """Valid ``dot_general`` problems with batch axes anywhere (not only leading)."""
    _check_bounds(min_rank=min_rank, max_rank=max_rank, min_side=min_side, max_side=max_side,
                  max_batch=max_batch)
    return _general(min_rank, max_rank, min_side, max_side, max_batch, max_batch_axes)


@dataclass(frozen=True)
class EinsumProblem:
    """An einsum call and operand shapes that fit it.

    ``equation`` is the string form, as a user may write it (``...``, spaces, any
    letters, no ``->``); ``sublists`` holds the same problem in the sublist form
    (``(operand sublists, output sublist or None)``, labels ints >= 0 and ``Ellipsis``)
    when it was drawn that way: :meth:`args` then gives the interleaved arguments.
    """

    equation: str
    shapes: tuple[tuple[int, ...], ...]
    sublists: Optional[tuple[tuple[tuple[Any, ...], ...], Optional[tuple[Any, ...]]]] = None

    def args(self, operands: Any) -> list[Any]:
        """The arguments of the call: ``[equation, *operands]``, or the interleaved
        sublist form ``[op0, sublist0, op1, sublist1, ..., output]``."""
        if self.sublists is None:
            return [self.equation, *operands]
        subs, output = self.sublists
        args: list[Any] = []
        for t, sub in zip(operands, subs):
            args += [t, list(sub)]
        return args + ([] if output is None else [list(output)])

    def __repr__(self) -> str:
        if self.sublists is not None:
            subs, output = self.sublists
            text = ", ".join(f"op{i}, {list(s)}" for i, s in enumerate(subs)).replace("Ellipsis", "...")
            tail = "" if output is None else ", " + str(list(output)).replace("Ellipsis", "...")
            return f"einsum({text}{tail}, shapes={self.shapes})"
        return f"einsum({self.equation!r}, shapes={self.shapes})"


#: Letters drawn with ``unicode=True`` besides ASCII ones: Greek, and symbols that
#: opt_einsum hands out for large networks (not all of them letters).
UNICODE_LETTERS = "αβγδεζηθλμξπρστφχψωΓΔΘΛΞΠΣΦΨΩ×÷ÀÉ"


def _place_spaces(draw: st.DrawFn, text: str) -> str:
    """Spaces between tokens (never inside '->' or '...')."""
    out = []
    i = 0
    while i < len(text):
        token = text[i:i + 3] if text.startswith("...", i) else text[i:i + 2] if text.startswith("->", i) else text[i]
        out.append(token + (" " * draw(st.integers(0, 2))))
        i += len(token)
    return " " * draw(st.integers(0, 1)) + "".join(out)


@st.composite
def _einsum(draw: st.DrawFn, n_operands: tuple[int, int], max_rank: int, min_side: int, max_side: int,
            max_letters: int, repeated: bool, broadcast: bool, ellipsis: bool, implicit: bool, sublist: bool,
            unicode: bool, spaces: bool) -> EinsumProblem:
    n = draw(st.integers(*n_operands))
    pool = ("ijklmnopqrstuvwxyzabcdefgh" + ("ABC" if not unicode else UNICODE_LETTERS))[:max(max_letters, 1)]
    if unicode:
        pool = "".join(draw(st.permutations(pool)))[:max_letters] if draw(st.booleans()) else pool[:max_letters]
    sizes = {c: draw(_side(min_side, max_side)) for c in pool}
    terms, shapes = [], []
    ell_width = draw(st.integers(0, 2)) if ellipsis else 0
    ell_sizes = [draw(_side(min_side, max_side)) for _ in range(ell_width)]
    has_ell = []
    for _ in range(n):
        rank = draw(st.integers(0, max_rank))
        term = "".join(draw(st.lists(st.sampled_from(pool), min_size=rank, max_size=rank, unique=not repeated)))
        shape = []
        ones = {c for c in set(term) if broadcast and draw(st.booleans()) and draw(st.booleans())}
        for c in term:
            shape.append(1 if c in ones else sizes[c])
        use_ell = ellipsis and draw(st.booleans())
        if use_ell:
            k = draw(st.integers(0, ell_width))
            cut = draw(st.integers(0, len(term)))
            ell = [1 if broadcast and draw(st.booleans()) and draw(st.booleans()) else m for m in ell_sizes[ell_width - k:]]
            term = term[:cut] + "..." + term[cut:]
            shape = shape[:cut] + ell + shape[cut:]
        has_ell.append(use_ell)
        terms.append(term)
        shapes.append(tuple(shape))
    letters = sorted(set("".join(terms).replace(".", "")))
    if implicit and draw(st.booleans()):
        output: Optional[str] = None
    else:
        chosen = draw(st.permutations(letters))[: draw(st.integers(0, len(letters)))] if letters else []
        output = "".join(chosen)
        if any(has_ell) and draw(st.booleans()):
            cut = draw(st.integers(0, len(output)))
            output = output[:cut] + "..." + output[cut:]
    equation = ",".join(terms) + ("" if output is None else "->" + output)
    sublists = None
    if sublist and draw(st.booleans()):
        base = draw(st.sampled_from([0, 10, 40, 100]))  # labels beyond 52 too
        label = {c: base + 3 * i for i, c in enumerate(draw(st.permutations(sorted(set(pool)))))}

        def convert(term: str) -> tuple[Any, ...]:
            head, dots, tail = term.partition("...")
            return tuple(label[c] for c in head) + ((Ellipsis,) if dots else ()) + tuple(label[c] for c in tail)

        sublists = (tuple(convert(t) for t in terms), None if output is None else convert(output))
    if spaces and sublists is None:
        equation = _place_spaces(draw, equation)
    return EinsumProblem(equation, tuple(shapes), sublists)


def einsum_problems(*, n_operands: Any = 3, max_rank: int = 3, min_side: int = 0, max_side: int = 4,
                    max_letters: int = 6, repeated: bool = False, broadcast: bool = False, ellipsis: bool = False,
                    implicit: bool = False, sublist: bool = False, unicode: bool = False,
                    spaces: bool = False) -> st.SearchStrategy[EinsumProblem]:
    """Valid einsum problems over ``n_operands`` operands (an int, or a ``(min, max)``
    pair): each operand's letters, sizes that fit, and an output.

    With the default flags: distinct letters per operand, equal sizes, an explicit
    output. Each flag turns on one more thing torch.einsum accepts: ``repeated``
    letters in one operand (diagonals), ``broadcast`` (size-1 axes against larger
    ones), ``ellipsis`` (``...`` of 0-2 broadcast axes), ``implicit`` outputs (no
    ``->``), the ``sublist`` form (int labels, some beyond 52), ``unicode`` letters
    (Greek, opt_einsum's symbols), ``spaces`` between tokens.

    >>> from hypothesis import find
    >>> find(einsum_problems(n_operands=1, repeated=True), lambda p: "ii" in p.equation)
    einsum('ii->', shapes=((0, 0),))
    """
    low, high = (n_operands, n_operands) if isinstance(n_operands, int) else tuple(n_operands)
    if not 1 <= low <= high:
        raise ValueError(f"n_operands must be >= 1, got {n_operands!r} (an int, or a pair low <= high)")
    _check_bounds(min_rank=0, max_rank=max_rank, min_side=min_side, max_side=max_side, max_batch=0)
    return _einsum((low, high), max_rank, min_side, max_side, max_letters, repeated, broadcast, ellipsis, implicit,
                   sublist, unicode, spaces)


@st.composite
def _tensor(draw: st.DrawFn, shape: tuple[int, ...], dtype: torch.dtype, bound: float) -> torch.Tensor:
    seed = draw(st.integers(0, 2**32 - 1))
    gen = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point or dtype.is_complex:
        t = torch.rand(shape, generator=gen, dtype=torch.float64) * 2 * bound - bound
        if dtype.is_complex:
            t = torch.complex(t, torch.rand(shape, generator=gen, dtype=torch.float64) * 2 * bound - bound)
        return t.to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).bool()
    low = 0 if dtype == torch.uint8 or str(dtype).startswith("torch.uint") else -int(bound)
    return torch.randint(low, int(bound) + 1, shape, generator=gen, dtype=torch.int64).to(dtype)


def tensors(shape: tuple[int, ...], *, dtype: Optional[torch.dtype] = None,
            bound: float = 2.0) -> st.SearchStrategy[torch.Tensor]:
    """Tensors of ``shape`` with values in ``[-bound, bound]`` (integers for int dtypes,
    ``[0, bound]`` for unsigned ones, True and False for bool).
    Values come from a drawn seed, so a failing example replays exactly."""
    dtypes = st.just(dtype) if dtype is not None else st.sampled_from(DTYPES)
    return dtypes.flatmap(lambda d: _tensor(tuple(shape), d, bound))


# ---- invalid problems ------------------------------------------------------------------

#: The rules an invalid problem breaks, and the builtin exception a careful
#: implementation raises for each (axisdot raises an AxisdotError that is also it).
RULES = {
    "size mismatch": ValueError,         # contracted axes of different sizes
    "batch mismatch": ValueError,        # batch axes of different sizes
    "axis out of range": ValueError,     # an axis >= rank or < -rank
    "batch axis contracted": ValueError,  # dot / batch_dot: axis 0 in axes
    "rank too low": ValueError,          # dot / batch_dot: an input of rank < 2
    "axes form": ValueError,             # a pair of the wrong length, empty lists, ...
    "axes type": TypeError,              # a bool, float, str or None where an axis belongs
    "repeated axis": ValueError,         # the same axis twice in one input's list
    "unequal lengths": ValueError,       # multi-axis lists of different lengths
    "count out of range": ValueError,    # tensordot: an int N < 0 or > a rank
    "batch and contracted": ValueError,  # dot_general: one axis in both lists
    "unknown output letter": ValueError,  # einsum
    "operand count": ValueError,
    "letter sizes": ValueError,
    "subscript count": ValueError,
    "repeated output letter": ValueError,
    "bad character": ValueError,
}


@dataclass(frozen=True)
class InvalidProblem(_TwoOperandCall):
    """A two-operand call that must be refused, and the rule it breaks."""

    func: str
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    axes: Any
    rule: str
    batch: Any = None
    detail: str = field(default="", compare=False)

    @property
    def expected_error(self) -> type:
        """The builtin exception class the call must raise (or a subclass of it)."""
        return RULES[self.rule]

    def __repr__(self) -> str:
        return f"{self._call_text()}  # breaks: {self.rule}"


def _other(draw: st.DrawFn, n: int) -> int:
    return n + draw(st.integers(1, 3))


def _mutate_size(draw: st.DrawFn, p: Problem, xa: int, ya: int, rule: str) -> InvalidProblem:
    ys = list(p.y_shape)
    ys[ya] = _other(draw, p.x_shape[xa])
    return InvalidProblem(p.func, p.x_shape, tuple(ys), p.axes, rule, p.batch,
                          f"x axis {xa} has size {p.x_shape[xa]}, y axis {ya} has size {ys[ya]}")


def contracted_axes(p: Problem) -> tuple[list[int], list[int]]:
    """Non-negative contracted axes of a valid Keras-style problem."""
    xr, yr = len(p.x_shape), len(p.y_shape)
    axes = p.axes
    if axes is None:
        axes = (xr - 1, yr - 1 if yr == 2 else yr - 2)
    if isinstance(axes, int):
        axes = (axes, axes)
    ax = list(axes[0]) if isinstance(axes[0], (list, tuple)) else [axes[0]]
    ay = list(axes[1]) if isinstance(axes[1], (list, tuple)) else [axes[1]]
    return [a % xr for a in ax], [b % yr for b in ay]


@st.composite
def _invalid_keras(draw: st.DrawFn, func: str, max_rank: int, max_side: int, rules: tuple[str, ...]) -> InvalidProblem:
    rule = draw(st.sampled_from(rules))
    make = dot_problems if func == "dot" else batch_dot_problems
    p = draw(make(min_rank=2, max_rank=max_rank, min_side=1, max_side=max_side, max_batch=max_side))
    xr, yr = len(p.x_shape), len(p.y_shape)
    cx, cy = contracted_axes(p)
    if rule == "size mismatch":
        i = draw(st.integers(0, len(cx) - 1))
        return _mutate_size(draw, p, cx[i], cy[i], rule)
    if rule == "batch mismatch":
        return _mutate_size(draw, p, 0, 0, rule)
    if rule == "axis out of range":
        bad = draw(st.sampled_from([yr + draw(st.integers(0, 2)), -yr - draw(st.integers(1, 3))]))
        return InvalidProblem(func, p.x_shape, p.y_shape, (cx[0], bad), rule, detail=f"y axis {bad}, rank {yr}")
    if rule == "batch axis contracted":
        zero = draw(st.sampled_from([0, -xr]))
        return InvalidProblem(func, p.x_shape, p.y_shape, (zero, cy[0]), rule, detail=f"x axis {zero} is axis 0")
    if rule == "rank too low":
        n = p.x_shape[-1]
        return InvalidProblem(func, (n,), p.y_shape, -1 if p.y_shape[-1] == n else (0, yr - 1), rule)
    if rule == "axes form":
        axes = draw(st.sampled_from([(cx[0],), (cx[0], cy[0], cy[0]), (cx[0], (cy[0],)), ((), ())]))
        return InvalidProblem(func, p.x_shape, p.y_shape, axes, rule)
    if rule == "axes type":
        axes = draw(st.sampled_from([True, float(cx[0]), str(cx[0]), (cx[0], None), (float(cx[0]), cy[0])]
                                    + ([None] if func == "dot" else [])))
        return InvalidProblem(func, p.x_shape, p.y_shape, axes, rule)
    xs = tuple(p.x_shape) + (p.x_shape[cx[0]],)
    ys = tuple(p.y_shape) + (p.y_shape[cy[0]],)
    if rule == "repeated axis":
        return InvalidProblem(func, xs, ys, ((cx[0], cx[0]), (cy[0], yr)), rule)
    return InvalidProblem(func, xs, ys, ((cx[0], xr), (cy[0],)), rule)  # unequal lengths


_KERAS_RULES = ("size mismatch", "batch mismatch", "axis out of range", "batch axis contracted", "rank too low",
                "axes form", "axes type", "repeated axis", "unequal lengths")


def _rules(rules: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    chosen = allowed if rules is None else (rules,) if isinstance(rules, str) else tuple(rules)
    bad = [r for r in chosen if r not in allowed]
    if bad or not chosen:
        raise ValueError(f"rules must be taken from {allowed}, got {rules!r}")
    return chosen


def invalid_dot_problems(*, max_rank: int = 4, max_side: int = 4, rules: Any = None) -> st.SearchStrategy[InvalidProblem]:
    """``dot`` calls that must be refused, each naming the rule it breaks (``rules``
    narrows the choice; see :data:`RULES`)."""
    return _invalid_keras("dot", max_rank, max_side, _rules(rules, _KERAS_RULES))


def invalid_batch_dot_problems(*, max_rank: int = 4, max_side: int = 4,
                               rules: Any = None) -> st.SearchStrategy[InvalidProblem]:
    """``batch_dot`` calls that must be refused (``axes=None`` is valid there)."""
    return _invalid_keras("batch_dot", max_rank, max_side, _rules(rules, _KERAS_RULES))


_TENSORDOT_RULES = ("size mismatch", "axis out of range", "count out of range", "repeated axis", "unequal lengths",
                    "axes type")


@st.composite
def _invalid_tensordot(draw: st.DrawFn, max_rank: int, max_side: int, rules: tuple[str, ...]) -> InvalidProblem:
    rule = draw(st.sampled_from(rules))
    p = draw(tensordot_problems(min_rank=1, max_rank=max_rank, min_side=1, max_side=max_side))
    xr, yr = len(p.x_shape), len(p.y_shape)
    if rule == "count out of range":
        n = draw(st.sampled_from([-1 - draw(st.integers(0, 2)), min(xr, yr) + 1 + draw(st.integers(0, 2))]))
        return InvalidProblem("tensordot", p.x_shape, p.y_shape, n, rule)
    if rule == "axes type":
        return InvalidProblem("tensordot", p.x_shape, p.y_shape, draw(st.sampled_from([1.0, "1", (1.0, 0)])), rule)
    a, b = xr - 1, 0
    if rule == "size mismatch":
        ys = list(p.y_shape)
        ys[b] = _other(draw, p.x_shape[a])
        return InvalidProblem("tensordot", p.x_shape, tuple(ys), ((a,), (b,)), rule)
    ys = list(p.y_shape)
    ys[b] = p.x_shape[a]
    if rule == "axis out of range":
        return InvalidProblem("tensordot", p.x_shape, tuple(ys), ((a,), (yr + draw(st.integers(0, 2)),)), rule)
    if rule == "repeated axis":
        return InvalidProblem("tensordot", p.x_shape, tuple(ys), ((a, a), (b, b)), rule)
    return InvalidProblem("tensordot", p.x_shape, tuple(ys), ((a,), (b, b)), rule)  # unequal lengths


def invalid_tensordot_problems(*, max_rank: int = 4, max_side: int = 4,
                               rules: Any = None) -> st.SearchStrategy[InvalidProblem]:
    """``tensordot`` calls that must be refused."""
    return _invalid_tensordot(max_rank, max_side, _rules(rules, _TENSORDOT_RULES))


_GENERAL_RULES = ("size mismatch", "batch mismatch", "axis out of range", "batch and contracted", "repeated axis")


@st.composite
def _invalid_general(draw: st.DrawFn, max_rank: int, max_side: int, rules: tuple[str, ...]) -> InvalidProblem:
    rule = draw(st.sampled_from(rules))
    need_batch = rule in ("batch mismatch", "batch and contracted")
    p = draw(dot_general_problems(min_rank=2, max_rank=max_rank, min_side=1, max_side=max_side)
             .filter(lambda q: q.axes[0] and (q.batch[0] or not need_batch)))
    xr, yr = len(p.x_shape), len(p.y_shape)
    cx = [a % xr for a in p.axes[0]]
    cy = [b % yr for b in p.axes[1]]
    if rule == "size mismatch":
        return _mutate_size(draw, p, cx[0], cy[0], rule)  # type: ignore[arg-type]
    if rule == "batch mismatch":
        bad = _mutate_size(draw, p, p.batch[0][0], p.batch[1][0], rule)  # type: ignore[arg-type]
        return InvalidProblem("dot_general", bad.x_shape, bad.y_shape, p.axes, rule, p.batch)
    if rule == "axis out of range":
        contract = ((xr + draw(st.integers(0, 2)),), (cy[0],))
        return InvalidProblem("dot_general", p.x_shape, p.y_shape, contract, rule, p.batch)
    if rule == "batch and contracted":
        batch = ((cx[0],), (cy[0],))
        return InvalidProblem("dot_general", p.x_shape, p.y_shape, p.axes, rule, batch)
    contract = ((cx[0], cx[0]), (cy[0], cy[0]))
    return InvalidProblem("dot_general", p.x_shape, p.y_shape, contract, rule, p.batch)  # repeated axis


def invalid_dot_general_problems(*, max_rank: int = 4, max_side: int = 4,
                                 rules: Any = None) -> st.SearchStrategy[InvalidProblem]:
    """``dot_general`` calls that must be refused."""
    return _invalid_general(max_rank, max_side, _rules(rules, _GENERAL_RULES))


@dataclass(frozen=True)
class InvalidEinsumProblem:
    """An einsum call that must be refused, and the rule it breaks."""

    equation: str
    shapes: tuple[tuple[int, ...], ...]
    rule: str

    @property
    def expected_error(self) -> type:
        return RULES[self.rule]

    def __repr__(self) -> str:
        return f"einsum({self.equation!r}, shapes={self.shapes})  # breaks: {self.rule}"


_EINSUM_RULES = ("unknown output letter", "operand count", "letter sizes", "subscript count",
                 "repeated output letter", "bad character")


@st.composite
def _invalid_einsum(draw: st.DrawFn, n_operands: int, rules: tuple[str, ...]) -> InvalidEinsumProblem:
    rule = draw(st.sampled_from(rules))
    p = draw(einsum_problems(n_operands=n_operands, min_side=1, max_rank=3).filter(
        lambda q: any(q.shapes) and q.equation.split("->")[1]))
    lhs, out = p.equation.split("->")
    terms = lhs.split(",")
    i = next(k for k, s in enumerate(p.shapes) if s)
    if rule == "unknown output letter":
        return InvalidEinsumProblem(f"{lhs}->{out}Z", p.shapes, rule)
    if rule == "operand count":
        return InvalidEinsumProblem(p.equation, p.shapes + ((1,),) if draw(st.booleans()) else p.shapes[:-1], rule)
    if rule == "letter sizes":  # the new letter Y twice in one operand, with sizes 2 and 3
        terms[i] += "YY"
        shapes = list(p.shapes)
        shapes[i] = tuple(shapes[i]) + (2, 3)
        return InvalidEinsumProblem(",".join(terms) + "->" + out, tuple(shapes), rule)
    if rule == "subscript count":
        shapes = list(p.shapes)
        shapes[i] = shapes[i] + (1,)
        return InvalidEinsumProblem(p.equation, tuple(shapes), rule)
    if rule == "repeated output letter":
        return InvalidEinsumProblem(f"{lhs}->{out}{out[0]}", p.shapes, rule)
    return InvalidEinsumProblem(draw(st.sampled_from(["1", "!", "#", "\t"])) + p.equation, p.shapes, rule)  # bad character


def invalid_einsum_problems(*, n_operands: int = 2, rules: Any = None) -> st.SearchStrategy[InvalidEinsumProblem]:
    """einsum calls that must be refused."""
    return _invalid_einsum(n_operands, _rules(rules, _EINSUM_RULES))


# ---- Keras layers -------------------------------------------------------------------------

#: Activation names :func:`einsum_dense_configs` draws (Keras's names).
DENSE_ACTIVATIONS = ("linear", "relu", "gelu", "tanh", "sigmoid", "softmax", "silu", "elu", "softplus")


@dataclass(frozen=True)
class EinsumDenseConfig:
    """A valid ``EinsumDense`` configuration and an input shape that fits it.

    ``kwargs`` are the constructor's (Keras's and axisdot's alike); ``kernel_shape``,
    ``bias_shape`` and ``output_shape_full`` are known from how the config was drawn."""

    equation: str
    output_shape: tuple[Optional[int], ...]
    bias_axes: Optional[str]
    activation: str
    input_shape: tuple[int, ...]
    lora_rank: Optional[int] = None
    lora_alpha: Optional[float] = None
    kernel_shape: tuple[int, ...] = field(default=(), compare=False)
    bias_shape: Optional[tuple[int, ...]] = field(default=None, compare=False)
    output_shape_full: tuple[int, ...] = field(default=(), compare=False)

    @property
    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"equation": self.equation, "output_shape": self.output_shape,
                              "bias_axes": self.bias_axes, "activation": self.activation}
        if self.lora_rank:
            kw.update(lora_rank=self.lora_rank, lora_alpha=self.lora_alpha)
        return kw

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"EinsumDense({args})  # input {self.input_shape}"


@st.composite
def _einsum_dense(draw: st.DrawFn, max_side: int, lora: bool) -> EinsumDenseConfig:
    pool = iter("bcdefghijklmnopqrstuvwxyz")
    n_free, n_con, n_out, n_kb = (draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(0, 2)),
                                  draw(st.integers(0, 1)))
    if n_con + n_out + n_kb == 0:
        n_con = 1
    free = [next(pool) for _ in range(n_free)]
    con = [next(pool) for _ in range(n_con)]
    out = [next(pool) for _ in range(n_out)]
    kb = [next(pool) for _ in range(n_kb)]  # in the input, the kernel and the output
    x = draw(st.permutations(free + con + kb))
    y = draw(st.permutations(con + out + kb))
    z = draw(st.permutations(free + out + kb))
    sizes = {c: draw(st.integers(1, max_side)) for c in free + con + out + kb}
    batch = draw(st.integers(1, 3))
    forms = ["plain"] + (["left"] if x and z else []) + (["right"] if x else [])  # Keras's three forms
    form = draw(st.sampled_from(forms))
    extra = [draw(st.integers(1, max_side)) for _ in range(draw(st.integers(0, 2)))]
    if form == "plain":
        eq = f"a{''.join(x)},{''.join(y)}->a{''.join(z)}"
        in_shape = (batch, *[sizes[c] for c in x])
        partial_letters = z
        full = (batch, *[sizes[c] for c in z])
    elif form == "left":
        eq = f"...{''.join(x)},{''.join(y)}->...{''.join(z)}"
        in_shape = (batch, *extra, *[sizes[c] for c in x])
        partial_letters = z
        full = (batch, *extra, *[sizes[c] for c in z])
    else:
        eq = f"a{''.join(x)}...,{''.join(y)}->a{''.join(z)}..."
        in_shape = (batch, *[sizes[c] for c in x], *extra)
        partial_letters = z
        full = (batch, *[sizes[c] for c in z], *extra)
    # sizes of kernel letters are given (Keras reads a kernel size from output_shape when the
    # letter reaches the output); the others may be None, taken from the input
    partial = tuple(sizes[c] if c in out or c in kb or draw(st.booleans()) else None for c in partial_letters)
    kernel = tuple(sizes[c] for c in y)
    z_letters = [c for c, n in zip(partial_letters, partial) if n is not None]  # a bias needs known sizes
    bias_axes = None
    bias_shape = None
    if z_letters and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(z_letters), min_size=1, max_size=len(z_letters), unique=True))
        bias_axes = "".join(chosen)
        first = min(z.index(c) for c in chosen)
        bias_shape = tuple(sizes[c] if c in chosen else 1 for c in z[first:]) + \
            ((1,) * len(extra) if form == "right" else ())
    rank = draw(st.integers(1, 3)) if lora and draw(st.booleans()) else None
    alpha = float(draw(st.integers(1, 8))) if rank and draw(st.booleans()) else None
    return EinsumDenseConfig(eq, partial, bias_axes, draw(st.sampled_from(DENSE_ACTIVATIONS)), in_shape, rank, alpha,
                             kernel, bias_shape, full)


def einsum_dense_configs(*, max_side: int = 4, lora: bool = True) -> st.SearchStrategy[EinsumDenseConfig]:
    """Valid ``keras.layers.EinsumDense`` / ``axisdot.EinsumDense`` configurations in
    every equation form Keras takes (``X,Y->Z``, ``...X,Y->...Z``, ``X...,Y->Z...``):
    free, contracted and kernel-only letters in any order, a kernel axis shared with
    the input and output, sizes None where the input gives them, a bias over any
    output letters, an activation, and LoRA (``lora=False`` leaves it out)."""
    return _einsum_dense(max_side, lora)


@dataclass(frozen=True)
class AttentionConfig:
    """A valid ``MultiHeadAttention`` configuration, input shapes and a call."""

    num_heads: int
    key_dim: int
    value_dim: Optional[int]
    output_shape: Optional[tuple[int, ...]]
    attention_axes: Optional[tuple[int, ...]]
    use_bias: bool
    query_shape: tuple[int, ...]
    value_shape: tuple[int, ...]
    key_shape: Optional[tuple[int, ...]]
    mask_shape: Optional[tuple[int, ...]]  #: an attention_mask of this shape, or None
    use_causal_mask: bool
    return_attention_scores: bool

    @property
    def kwargs(self) -> dict[str, Any]:
        return {"num_heads": self.num_heads, "key_dim": self.key_dim, "value_dim": self.value_dim,
                "output_shape": self.output_shape, "attention_axes": self.attention_axes, "use_bias": self.use_bias}


@st.composite
def _attention(draw: st.DrawFn, max_side: int, max_rank: int) -> AttentionConfig:
    rank = draw(st.integers(3, max_rank))
    batch = draw(st.integers(1, 2))
    inner = [draw(st.integers(1, max_side)) for _ in range(rank - 2)]
    if rank == 3 or draw(st.booleans()):
        axes = None
        attn = tuple(range(1, rank - 1))
    else:
        attn = tuple(draw(st.lists(st.integers(1, rank - 2), min_size=1, max_size=rank - 2, unique=True)))
        axes = tuple(a - rank if draw(st.booleans()) else a for a in attn)
    q_feat, v_feat = draw(st.integers(1, max_side + 2)), draw(st.integers(1, max_side + 2))
    source = list(inner)
    for a in attn:  # key/value may have other lengths along the attention axes
        source[a - 1] = draw(st.integers(1, max_side))
    query = (batch, *inner, q_feat)
    value = (batch, *source, v_feat)
    key = (batch, *source, draw(st.integers(1, max_side + 2))) if draw(st.booleans()) else None
    scores_q = tuple(inner[a - 1] for a in attn)
    scores_k = tuple(source[a - 1] for a in attn)
    others = tuple(inner[i] for i in range(rank - 2) if i + 1 not in attn)
    mask = None
    if draw(st.booleans()):
        full = (batch, *others, *scores_q, *scores_k) if rank > 3 else (batch, *scores_q, *scores_k)
        mask = tuple(1 if draw(st.booleans()) and draw(st.booleans()) else n for n in full)
    causal = rank == 3 and draw(st.booleans())
    output_shape = (draw(st.integers(1, max_side + 2)),) if draw(st.booleans()) else None
    return AttentionConfig(draw(st.integers(1, 3)), draw(st.integers(1, max_side)),
                           draw(st.one_of(st.none(), st.integers(1, max_side))), output_shape, axes,
                           draw(st.booleans()), query, value, key, mask, causal, draw(st.booleans()))


def attention_configs(*, max_side: int = 4, max_rank: int = 4) -> st.SearchStrategy[AttentionConfig]:
    """Valid ``MultiHeadAttention`` configurations and calls: head counts, key and value
    dims, output shapes, one or several attention axes (positive or negative), query,
    value and key shapes (key and value lengths may differ from the query's), an
    attention mask broadcast from smaller shapes, a causal mask, scores returned."""
    return _attention(max_side, max_rank)
