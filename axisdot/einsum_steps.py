"""One step of an einsum path as PyTorch calls, built from the step's equation alone.

A step equation such as ``"bkl,bjk->blj"`` depends on no size, so its function is built
once (cached by :mod:`axisdot.cache`) and serves every size and every equation that
contains it. One operand: diagonals, sums and a permute. Two operands: each is first
reduced to the letters the other operand or the output needs, then one two-operand
:class:`~axisdot.plan.Plan` runs (the operands swapped when that saves a permute of the
result). More than two (an explicit path may ask for it): pairwise, left to right.
Nothing here calls ``torch.einsum``, so every transform (ONNX, export) sees plain ops.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .einsum_path import kept_letters
from .plan import Plan
from .render import CallText
from .spec import Spec

__all__ = ["StepFn", "build_step"]

StepFn = Callable[..., torch.Tensor]


def _pairwise_spec(a: str, b: str, out: str) -> Spec:
    """The dot_general spec of ``a,b->out``, where neither term repeats a letter and every
    letter of each term is in the other term or in ``out``."""
    bx: list[int] = []
    by: list[int] = []
    cx: list[int] = []
    cy: list[int] = []
    for i, c in enumerate(a):
        j = b.find(c)
        if j >= 0:
            if c in out:
                bx.append(i)
                by.append(j)
            else:
                cx.append(i)
                cy.append(j)
    return Spec(len(a), len(b), (tuple(bx), tuple(by)), (tuple(cx), tuple(cy)))


def _reducer(sub: str, keep: str) -> tuple[Optional[Callable[[torch.Tensor], torch.Tensor]], str]:
    """Take the diagonal of each repeated letter of ``sub`` and sum the letters not in
    ``keep`` (keeping the dtype: the result dtype is settled before any step runs)."""
    if len(set(sub)) == len(sub) and all(c in keep for c in sub):
        return None, sub
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
    if not ops:
        return None, sub

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


def _single(term: str, out: str) -> tuple[StepFn, str]:
    reduce, sub = _reducer(term, out)
    perm = _permuter(sub, out)
    if reduce is None:
        return ((lambda t: t) if perm is None else (lambda t: t.permute(perm))), "permute" if perm else "nothing"
    if perm is None:
        return reduce, "diagonal/sum"
    return (lambda t: reduce(t).permute(perm)), "diagonal/sum/permute"


def _pair(a_term: str, b_term: str, out: str) -> tuple[StepFn, str]:
    reduce_a, a = _reducer(a_term, b_term + out)
    reduce_b, b = _reducer(b_term, a + out)
    natural = _natural(a, b, out)
    swap = False
    if natural != out and _natural(b, a, out) == out:
        swap, natural = True, out
        a, b, reduce_a, reduce_b = b, a, reduce_b, reduce_a
    plan = Plan(_pairwise_spec(a, b, out), CallText(lambda: f"einsum step {a_term},{b_term}->{out}"), refuse_bool=False)
    perm = _permuter(natural, out)
    label = plan.describe() + ("" if reduce_a is None and reduce_b is None else " after diagonal/sum") + \
        ("" if perm is None else ", then permute")

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if swap:
            x, y = y, x
        if reduce_a is not None:
            x = reduce_a(x)
        if reduce_b is not None:
            y = reduce_b(y)
        result = plan(x, y)
        return result if perm is None else result.permute(perm)

    # a step that is one plan on the operands as they are: callers in a hurry may run the
    # plan's own lowering (and handle its refusals themselves)
    run.direct = plan.run if not swap and reduce_a is None and reduce_b is None and perm is None else None  # type: ignore[attr-defined]
    run.plan = plan  # type: ignore[attr-defined]
    return run, label


def build_step(equation: str) -> tuple[StepFn, str]:
    """A function running the step ``equation``, and a few words on its lowering."""
    lhs, out = equation.split("->")
    terms = lhs.split(",")
    if len(terms) == 1:
        return _single(terms[0], out)
    if len(terms) == 2:
        return _pair(terms[0], terms[1], out)
    chain = []  # k > 2 operands: pairwise, keeping the letters the rest or the output need
    acc = terms[0]
    for k in range(1, len(terms)):
        keep = out if k == len(terms) - 1 else kept_letters(acc + terms[k], "".join(terms[k + 1:]) + out)
        chain.append(_pair(acc, terms[k], keep)[0])
        acc = keep

    def run(*operands: torch.Tensor) -> torch.Tensor:
        result = operands[0]
        for fn, operand in zip(chain, operands[1:]):
            result = fn(result, operand)
        return result

    return run, f"{len(terms)} operands, pairwise left to right"
