"""n-ary einsum: parse and check the equation, let opt_einsum choose the pairwise order
once per (equation, shapes), and run each pairwise step through a two-operand
:class:`~axisdot.plan.Plan` (steps a Plan cannot express, such as diagonals or sums over
an axis of one operand, run as ``torch.einsum`` on that step's precomputed equation).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import opt_einsum
import torch

from .errors import AxisdotTypeError, EquationError, ShapeError
from .plan import build_plan
from .spec import Spec

__all__ = ["Parsed", "parse_equation", "promoted", "EinsumPlan", "build_einsum_plan", "run_traced"]

_VALID = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class Parsed:
    """An einsum equation with explicit letters (an ellipsis spelled out) and output.

    ``expand`` holds, per operand, the shape to broadcast it to first (its ellipsis axes
    of size 1 grown to the other operands' sizes), or None when nothing broadcasts.
    """

    inputs: tuple[str, ...]
    output: str
    expand: tuple[Optional[tuple[int, ...]], ...] = ()

    @property
    def equation(self) -> str:
        return ",".join(self.inputs) + "->" + self.output


def _split_ellipsis(term: str, quoted: str, where: str) -> tuple[str, str, bool]:
    if term.count("...") > 1 or term.replace("...", "").count("."):
        raise EquationError(f"{quoted}: {where} {term!r}: '.' appears only as one '...' per term")
    head, dots, tail = term.partition("...")
    return head, tail, bool(dots)


def _spell_out(inputs: list[str], rhs: Optional[str], shapes: Sequence[tuple[int, ...]],
               quoted: str) -> tuple[list[str], Optional[str], list[Optional[tuple[int, ...]]], str]:
    """Replace each '...' by letters the equation does not use, right-aligned across the
    operands as broadcasting aligns them; sizes 1 broadcast (as torch.einsum does)."""
    parts = [_split_ellipsis(t, quoted, f"operand {i}") for i, t in enumerate(inputs)]
    ranks = [len(shape) - len(h) - len(t) if dots else 0 for (h, t, dots), shape in zip(parts, shapes)]
    for i, ((h, t, _dots), r) in enumerate(zip(parts, ranks)):
        if r < 0:
            raise EquationError(f"{quoted}: operand {i} has rank {len(shapes[i])}, fewer than the "
                                f"{len(h) + len(t)} letters of {inputs[i]!r}")
    width = max(ranks, default=0)
    used = set("".join(inputs) + (rhs or ""))
    free = [c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    if width > len(free):
        raise EquationError(f"{quoted}: the ellipsis needs {width} letters but only {len(free)} are unused")
    letters = "".join(free[:width])
    broadcast = [1] * width
    for (h, _t, _d), r, shape in zip(parts, ranks, shapes):
        for k, n in enumerate(shape[len(h):len(h) + r]):
            j = width - r + k
            if n != 1 and broadcast[j] not in (1, n):
                raise ShapeError(f"{quoted}: the ellipsis axes do not broadcast: size {broadcast[j]} against {n}")
            broadcast[j] = n if n != 1 else broadcast[j]
    spelled, expand = [], []
    for (h, t, _d), r, shape in zip(parts, ranks, shapes):
        spelled.append(h + letters[width - r:] + t)
        target = tuple(shape[:len(h)]) + tuple(broadcast[width - r:]) + tuple(shape[len(h) + r:])
        expand.append(None if target == tuple(shape) else target)
    if rhs is not None:
        h, t, dots = _split_ellipsis(rhs, quoted, "the output")
        rhs = h + (letters if dots else "") + t
    return spelled, rhs, expand, letters


def parse_equation(equation: object, shapes: Sequence[tuple[int, ...]]) -> Parsed:
    """Check ``equation`` against the operands' shapes. An implicit output is made
    explicit (the ellipsis axes, then the letters used once in sorted order, as numpy and
    torch do); an ellipsis is spelled out in unused letters."""
    if not isinstance(equation, str):
        raise AxisdotTypeError(f"einsum: the equation must be a str, got {type(equation).__name__}")
    eq = equation.replace(" ", "")
    quoted = f"einsum({equation!r})"
    if eq.count("->") > 1:
        raise EquationError(f"{quoted}: an equation has at most one '->'")
    lhs, arrow, rhs = eq.partition("->")
    bad = sorted(set(lhs.replace(",", "").replace(".", "") + rhs.replace(".", "")) - _VALID)
    if bad:
        raise EquationError(
            f"{quoted}: {bad[0]!r} is not a subscript; use the letters a-z and A-Z (and '...')"
        )
    inputs = lhs.split(",")
    if len(inputs) != len(shapes):
        raise EquationError(
            f"{quoted}: the equation has {len(inputs)} operand terms but "
            f"{len(shapes)} operands were given"
        )
    expand: list[Optional[tuple[int, ...]]] = [None] * len(shapes)
    ellipsis = ""
    if "." in eq:
        inputs, explicit, expand, ellipsis = _spell_out(inputs, rhs if arrow else None, shapes, quoted)
        rhs = explicit or ""
        shapes = [t if t is not None else s for t, s in zip(expand, shapes)]
    sizes: dict[str, tuple[int, int, int]] = {}
    for i, (sub, shape) in enumerate(zip(inputs, shapes)):
        if len(sub) != len(shape):
            raise EquationError(
                f"{quoted}: subscript {sub!r} has {len(sub)} letters but operand {i} "
                f"has rank {len(shape)} (shape {tuple(shape)})"
            )
        for axis, (letter, n) in enumerate(zip(sub, shape)):
            first = sizes.setdefault(letter, (n, i, axis))
            if first[0] != n:
                raise ShapeError(
                    f"{quoted}: letter {letter!r} has size {first[0]} in operand {first[1]} "
                    f"axis {first[2]} but size {n} in operand {i} axis {axis}"
                )
    if not arrow:
        counts = "".join(inputs)
        rhs = ellipsis + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in ellipsis))
    for letter in rhs:
        if letter not in sizes:
            raise EquationError(f"{quoted}: output letter {letter!r} is not in any input")
        if rhs.count(letter) > 1:
            raise EquationError(f"{quoted}: output letter {letter!r} appears more than once")
    return Parsed(tuple(inputs), rhs, tuple(expand))


def _expanded(parsed: Parsed, operands: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if not any(t is not None for t in parsed.expand):
        return list(operands)
    return [t if target is None else t.expand(target) for t, target in zip(operands, parsed.expand)]


Step = Callable[..., torch.Tensor]


def _pairwise_spec(a: str, b: str, out: str) -> Spec:
    """The dot_general spec of ``a,b->out``, where neither term repeats a letter and every
    letter of each term is in the other term or in ``out``."""
    batch = [c for c in a if c in b and c in out]
    contract = [c for c in a if c in b and c not in out]
    return Spec(
        len(a),
        len(b),
        (tuple(a.index(c) for c in batch), tuple(b.index(c) for c in batch)),
        (tuple(a.index(c) for c in contract), tuple(b.index(c) for c in contract)),
    )


def _reducer(sub: str, keep: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """Take the diagonal of each repeated letter of ``sub`` and sum the letters not in
    ``keep``: the single-operand part of an einsum step, as torch.diagonal and sum (no
    torch.einsum, so ONNX and every transform see plain ops)."""
    ops: list[tuple[str, tuple[int, ...]]] = []
    while len(set(sub)) != len(sub):
        c = next(c for c in sub if sub.count(c) > 1)
        i = sub.index(c)
        j = sub.index(c, i + 1)
        ops.append(("diagonal", (i, j)))
        sub = sub[:i] + sub[i + 1:j] + sub[j + 1:] + c
    summed = tuple(i for i, c in enumerate(sub) if c not in keep)
    if summed:
        ops.append(("sum", summed))
        sub = "".join(c for c in sub if c in keep)

    def run(t: torch.Tensor) -> torch.Tensor:
        for kind, dims in ops:
            t = torch.diagonal(t, 0, dims[0], dims[1]) if kind == "diagonal" else t.sum(dims, dtype=t.dtype)
        return t

    return run, sub


def _permuter(sub: str, out: str) -> Optional[tuple[int, ...]]:
    perm = tuple(sub.index(c) for c in out)
    return None if perm == tuple(range(len(perm))) else perm


def _natural(a: str, b: str, out: str) -> str:
    """The letter order a Plan returns for ``a,b->out``: batch, a's free, b's free."""
    batch = [c for c in a if c in b and c in out]
    return "".join(batch + [c for c in a if c not in b] + [c for c in b if c not in a])


def _step(equation: str) -> tuple[Step, str]:
    """A function running one contraction step, and a description of its lowering.

    One operand: diagonals, sums and a permute. Two operands: each is first reduced to
    the letters the other operand or the output needs, then one two-operand Plan runs
    (the operands swapped when that saves a permute of the result).
    """
    lhs, out = equation.split("->")
    terms = lhs.split(",")
    if len(terms) == 1:
        reduce, sub = _reducer(terms[0], out)
        perm = _permuter(sub, out)
        return (lambda t: reduce(t) if perm is None else reduce(t).permute(perm)), "diagonal/sum/permute"
    reduce_a, a = _reducer(terms[0], terms[1] + out)
    reduce_b, b = _reducer(terms[1], a + out)
    swap = _natural(a, b, out) != out and _natural(b, a, out) == out
    if swap:
        a, b, reduce_a, reduce_b = b, a, reduce_b, reduce_a
    plan = build_plan(_pairwise_spec(a, b, out), f"einsum step {equation!r}")
    perm = _permuter(_natural(a, b, out), out)
    trivial = terms[0] == (b if swap else a) and terms[1] == (a if swap else b)
    label = plan.describe() + ("" if trivial else " after diagonal/sum") + ("" if perm is None else ", then permute")

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if swap:
            x, y = y, x
        result = plan(reduce_a(x), reduce_b(y))
        return result if perm is None else result.permute(perm)

    return run, label


def promoted(operands: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The operands converted to their common dtype (PyTorch's type promotion)."""
    if not operands or all(t.dtype == operands[0].dtype for t in operands):
        return list(operands)
    dtype = operands[0].dtype
    for t in operands[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [t.to(dtype) for t in operands]


class EinsumPlan:
    """A compiled n-ary einsum: the opt_einsum path, each step ready to run."""

    def __init__(self, parsed: Parsed, shapes: tuple[tuple[int, ...], ...]) -> None:
        self.parsed = parsed
        self.shapes = shapes
        shapes = tuple(t if t is not None else s for t, s in zip(parsed.expand, shapes)) if parsed.expand else shapes
        _, self.info = opt_einsum.contract_path(
            parsed.equation, *shapes, shapes=True, optimize="auto"
        )
        self.steps: list[tuple[tuple[int, ...], Step, str, str]] = []
        for inds, _removed, step_eq, _rest, _blas in self.info.contraction_list:
            fn, lowering = _step(step_eq)
            self.steps.append((tuple(inds), fn, step_eq, lowering))

    def __call__(self, *operands: torch.Tensor) -> torch.Tensor:
        work = promoted(_expanded(self.parsed, operands))
        for inds, fn, _eq, _lowering in self.steps:
            work.append(fn(*[work.pop(i) for i in inds]))
        return work[0]


def build_einsum_plan(equation: str, shapes: tuple[tuple[int, ...], ...]) -> EinsumPlan:
    return EinsumPlan(parse_equation(equation, shapes), shapes)


#: The size every axis is given when a path is chosen from the equation alone.
NOMINAL_SIZE = 8


@functools.lru_cache(maxsize=256)
def _equation_path(equation: str) -> tuple[tuple[tuple[int, ...], str], ...]:
    lhs, _ = equation.split("->")
    shapes = [(NOMINAL_SIZE,) * len(term) for term in lhs.split(",")]
    _, info = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="auto")
    return tuple((tuple(inds), step_eq) for inds, _r, step_eq, _rest, _b in info.contraction_list)


# torch.compile runs this at trace time and keeps its result as a constant: opt_einsum's
# own code is never traced, and the compiled graph does not depend on any size.
@torch.compiler.assume_constant_result
def equation_path(equation: str) -> tuple[tuple[tuple[int, ...], str], ...]:
    """The pairwise steps ``((operand positions), step equation)`` for ``equation``."""
    return _equation_path(equation)


def run_traced(parsed: Parsed, operands: Sequence[torch.Tensor]) -> torch.Tensor:
    """einsum inside torch.compile / torch.export: the pairwise order is chosen from the
    equation alone (every axis taken as the same size), so symbolic sizes are never
    inspected and one graph serves every size."""
    work = promoted(_expanded(parsed, operands))
    for inds, step_eq in equation_path(parsed.equation):
        fn, _ = _step(step_eq)
        work.append(fn(*[work.pop(i) for i in inds]))
    return work[0]
