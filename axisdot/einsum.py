"""n-ary einsum: parse and check the equation, let opt_einsum choose the pairwise order
once per (equation, shapes), and run each pairwise step through a two-operand
:class:`~axisdot.plan.Plan` (steps a Plan cannot express, such as diagonals or sums over
an axis of one operand, run as ``torch.einsum`` on that step's precomputed equation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import opt_einsum
import torch

from .errors import AxisdotTypeError, EquationError, ShapeError
from .plan import build_plan
from .spec import Spec

__all__ = ["Parsed", "parse_equation", "promoted", "EinsumPlan", "build_einsum_plan"]

_VALID = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class Parsed:
    """An einsum equation split into its input subscripts and (explicit) output."""

    inputs: tuple[str, ...]
    output: str

    @property
    def equation(self) -> str:
        return ",".join(self.inputs) + "->" + self.output


def parse_equation(equation: object, shapes: Sequence[tuple[int, ...]]) -> Parsed:
    """Check ``equation`` against the operands' shapes; implicit output is made explicit
    (the letters used once, in sorted order, as numpy and torch do)."""
    if not isinstance(equation, str):
        raise AxisdotTypeError(f"einsum: the equation must be a str, got {type(equation).__name__}")
    eq = equation.replace(" ", "")
    quoted = f"einsum({equation!r})"
    if eq.count("->") > 1:
        raise EquationError(f"{quoted}: an equation has at most one '->'")
    lhs, arrow, rhs = eq.partition("->")
    if "." in eq:
        raise EquationError(f"{quoted}: ellipsis ('...') is not supported yet; name every axis")
    bad = sorted(set(lhs.replace(",", "") + rhs) - _VALID)
    if bad:
        raise EquationError(
            f"{quoted}: {bad[0]!r} is not a subscript; use the letters a-z and A-Z"
        )
    inputs = tuple(lhs.split(","))
    if len(inputs) != len(shapes):
        raise EquationError(
            f"{quoted}: the equation has {len(inputs)} operand terms but "
            f"{len(shapes)} operands were given"
        )
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
        counts = lhs.replace(",", "")
        rhs = "".join(sorted(c for c in set(counts) if counts.count(c) == 1))
    for letter in rhs:
        if letter not in sizes:
            raise EquationError(f"{quoted}: output letter {letter!r} is not in any input")
        if rhs.count(letter) > 1:
            raise EquationError(f"{quoted}: output letter {letter!r} appears more than once")
    return Parsed(inputs, rhs)


Step = Callable[..., torch.Tensor]


def _pairwise_spec(a: str, b: str, out: str) -> Spec | None:
    """The dot_general spec of ``a,b->out`` when it is a plain pairwise contraction."""
    if len(set(a)) != len(a) or len(set(b)) != len(b):
        return None
    if any(c not in b and c not in out for c in a) or any(c not in a and c not in out for c in b):
        return None
    batch = [c for c in a if c in b and c in out]
    contract = [c for c in a if c in b and c not in out]
    return Spec(
        len(a),
        len(b),
        (tuple(a.index(c) for c in batch), tuple(b.index(c) for c in batch)),
        (tuple(a.index(c) for c in contract), tuple(b.index(c) for c in contract)),
    )


def _natural(a: str, b: str, out: str) -> str:
    """The letter order a Plan returns for ``a,b->out``: batch, a's free, b's free."""
    batch = [c for c in a if c in b and c in out]
    return "".join(batch + [c for c in a if c not in b] + [c for c in b if c not in a])


def _step(equation: str) -> tuple[Step, str]:
    """A function running one contraction step, and a description of its lowering."""
    lhs, out = equation.split("->")
    terms = lhs.split(",")
    spec = _pairwise_spec(terms[0], terms[1], out) if len(terms) == 2 else None
    if spec is None:
        return (lambda *ops: torch.einsum(equation, *ops)), "torch.einsum"
    a, b = terms
    if _natural(a, b, out) != out and _natural(b, a, out) == out:  # swapping avoids a permute
        spec = _pairwise_spec(b, a, out)
        plan = build_plan(spec, f"einsum step {equation!r}")  # type: ignore[arg-type]
        return (lambda x, y: plan(y, x)), plan.describe()
    plan = build_plan(spec, f"einsum step {equation!r}")
    natural = _natural(a, b, out)
    if natural == out:
        return plan, plan.describe()
    perm = tuple(natural.index(c) for c in out)
    return (lambda x, y: plan(x, y).permute(perm)), plan.describe() + ", then permute"


def promoted(operands: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The operands converted to their common dtype (PyTorch's type promotion)."""
    dtype = operands[0].dtype if operands else None
    if all(t.dtype == dtype for t in operands):
        return list(operands)
    for t in operands[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [t.to(dtype) for t in operands]


class EinsumPlan:
    """A compiled n-ary einsum: the opt_einsum path, each step ready to run."""

    def __init__(self, parsed: Parsed, shapes: tuple[tuple[int, ...], ...]) -> None:
        self.parsed = parsed
        self.shapes = shapes
        self.path, self.info = opt_einsum.contract_path(
            parsed.equation, *shapes, shapes=True, optimize="auto"
        )
        self.steps: list[tuple[tuple[int, ...], Step, str, str]] = []
        for inds, _removed, step_eq, _rest, _blas in self.info.contraction_list:
            fn, lowering = _step(step_eq)
            self.steps.append((tuple(inds), fn, step_eq, lowering))

    def __call__(self, *operands: torch.Tensor) -> torch.Tensor:
        work = promoted(operands)
        for inds, fn, _eq, _lowering in self.steps:
            work.append(fn(*[work.pop(i) for i in inds]))
        return work[0]


def build_einsum_plan(equation: str, shapes: tuple[tuple[int, ...], ...]) -> EinsumPlan:
    return EinsumPlan(parse_equation(equation, shapes), shapes)
