"""One step of an einsum path as PyTorch calls, built from the step's equation alone.

A step equation such as ``"bkl,bjk->blj"`` depends on no size, so its function is built
once (cached by :mod:`axisdot.cache`) and serves every size and every equation that
contains it. One operand: diagonals, sums and a permute. Two operands: each is first
reduced to the letters the other operand or the output needs, then one two-operand
:class:`~axisdot.plan.Plan` runs (the operands swapped when that saves a permute of the
result); the usual step needs none of that and *is* its Plan (called as a step is), so
a cold call builds nothing more and a warm one runs nothing more. More than two (an
explicit path may ask for it): pairwise, left to right.
Nothing here calls ``torch.einsum``, so every transform (ONNX, export) sees plain ops.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .einsum_path import kept_letters
from .plan import Plan
from .spec import Spec

__all__ = ["StepFn", "build_step", "pairwise", "reduced_order"]

StepFn = Callable[..., torch.Tensor]


def _pairwise(a: str, b: str, out: str) -> Optional[tuple[Spec, str]]:
    """The dot_general spec of ``a,b->out`` and the letter order its Plan returns (batch,
    a's free, b's free), in one pass over the letters; None when a term repeats a letter
    or holds one that neither the other term nor ``out`` holds (a step that must reduce
    an operand first, see :func:`_reducer`)."""
    x_rank, y_rank = len(a), len(b)
    if len(set(a)) != x_rank or len(set(b)) != y_rank:
        return None
    bx = by = cx = cy = fx = fy = ()
    batch = a_free = b_free = ""
    for i, c in enumerate(a):
        j = b.find(c)
        if j < 0:
            if c not in out:
                return None
            fx += (i,)
            a_free += c
        elif c in out:
            bx += (i,)
            by += (j,)
            batch += c
        else:
            cx += (i,)
            cy += (j,)
    for j, c in enumerate(b):
        if c not in a:
            if c not in out:
                return None
            fy += (j,)
            b_free += c
    return Spec(x_rank, y_rank, (bx, by), (cx, cy), keras_rank1=False, free=(fx, fy)), batch + a_free + b_free


def _reductions(sub: str, keep: str) -> tuple[list[tuple[str, tuple[int, ...]]], str]:
    """The diagonals and sums that reduce ``sub`` to letters of ``keep``, each once, and
    the letter order they leave."""
    ops: list[tuple[str, tuple[int, ...]]] = []
    while len(set(sub)) != len(sub):
        c = next(c for c in sub if sub.count(c) > 1)  # the first repeated letter
        i = sub.index(c)
        j = sub.index(c, i + 1)
        ops.append(("diagonal", (i, j)))
        sub = sub[:i] + sub[i + 1:j] + sub[j + 1:] + c
    summed = tuple(i for i, c in enumerate(sub) if c not in keep)
    if summed:
        ops.append(("sum", summed))
        sub = "".join(c for c in sub if c in keep)
    return ops, sub


#: the dot_general spec of a step and the letter order its plan returns (public name)
pairwise = _pairwise


def reduced_order(sub: str, keep: str) -> str:
    """The letters of ``sub`` a step keeps before its product (see :func:`_reducer`)."""
    if len(set(sub)) == len(sub) and set(keep).issuperset(sub):
        return sub
    return _reductions(sub, keep)[1]


def _reducer(sub: str, keep: str) -> tuple[Optional[Callable[[torch.Tensor], torch.Tensor]], str]:
    """Take the diagonal of each repeated letter of ``sub`` and sum the letters not in
    ``keep`` (keeping the dtype: the result dtype is settled before any step runs)."""
    if len(set(sub)) == len(sub) and set(keep).issuperset(sub):
        return None, sub
    ops, sub = _reductions(sub, keep)
    if not ops:
        return None, sub

    def run(t: torch.Tensor) -> torch.Tensor:
        for kind, dims in ops:
            t = torch.diagonal(t, 0, dims[0], dims[1]) if kind == "diagonal" else t.sum(dims, dtype=t.dtype)
        return t

    return run, sub


def _permuter(sub: str, out: str) -> Optional[tuple[int, ...]]:
    if sub == out:
        return None
    perm = tuple(sub.index(c) for c in out)
    return None if perm == tuple(range(len(perm))) else perm


def _single(term: str, out: str) -> tuple[StepFn, str]:
    reduce, sub = _reducer(term, out)
    perm = _permuter(sub, out)
    if reduce is None:
        return ((lambda t: t) if perm is None else (lambda t: t.permute(*perm))), "permute" if perm else "nothing"
    if perm is None:
        return reduce, "diagonal/sum"
    return (lambda t: reduce(t).permute(*perm)), "diagonal/sum/permute"


def _pair(a_term: str, b_term: str, out: str, call: str) -> tuple[StepFn, str]:
    """The step ``a_term,b_term->out``; ``call`` names it in the plan's errors. The usual
    step (see :func:`_pairwise`) is analysed in one pass, and when its plan returns the
    output order as it is, the step *is* that plan; any other step reduces its operands
    first, swaps them or permutes the result, as needed."""
    pairwise = _pairwise(a_term, b_term, out)
    if pairwise is not None and pairwise[1] == out:
        plan = Plan(pairwise[0], call, refuse_bool=False)
        return plan, plan.describe()
    a, b, reduce_a, reduce_b = a_term, b_term, None, None
    if pairwise is None:
        reduce_a, a = _reducer(a_term, b_term + out)
        reduce_b, b = _reducer(b_term, a + out)
        pairwise = _pairwise(a, b, out)
        assert pairwise is not None  # reduced: every letter is in the other term or the output
    spec, natural = pairwise
    swap = False
    if natural != out:  # swapped operands may give the output order at once
        swapped = _pairwise(b, a, out)
        assert swapped is not None
        if swapped[1] == out:
            swap, (spec, natural) = True, swapped
            a, b, reduce_a, reduce_b = b, a, reduce_b, reduce_a
    if natural != out and not spec.contract[0] and reduce_a is None and reduce_b is None:
        return _broadcast_product(a, b, out), "broadcast product in the output's order"
    plan = Plan(spec, call, refuse_bool=False)
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
        return result if perm is None else result.permute(*perm)  # unpacked: a sequence costs 0.45 us more

    return run, label


def _broadcast_product(a: str, b: str, out: str) -> StepFn:
    """``a,b->out`` with nothing summed, as torch.einsum runs it: each operand permuted to
    the output's order, with size-1 axes for the letters it lacks, and one product,
    which broadcasting writes in the output's order (7.8x faster than a product in
    the plan's order and a permute of it, on mamba-mini's ``gdn,lbgd->lbgdn``)."""
    perm_a = tuple(a.index(c) for c in out if c in a)
    perm_b = tuple(b.index(c) for c in out if c in b)
    index_a = tuple(slice(None) if c in a else None for c in out)
    index_b = tuple(slice(None) if c in b else None for c in out)
    if perm_a == tuple(range(len(a))) and perm_b == tuple(range(len(b))):
        return lambda x, y: x[index_a] * y[index_b]
    return lambda x, y: x.permute(perm_a)[index_a] * y.permute(perm_b)[index_b]


def build_step(equation: str) -> tuple[StepFn, str]:
    """A function running the step ``equation``, and a few words on its lowering."""
    lhs, out = equation.split("->")
    terms = lhs.split(",")
    if len(terms) == 1:
        return _single(terms[0], out)
    if len(terms) == 2:
        return _pair(terms[0], terms[1], out, "einsum step " + equation)
    chain = []  # k > 2 operands: pairwise, keeping the letters the rest or the output need
    acc = terms[0]
    for k in range(1, len(terms)):
        keep = out if k == len(terms) - 1 else kept_letters(acc + terms[k], "".join(terms[k + 1:]) + out)
        chain.append(_pair(acc, terms[k], keep, f"einsum step {acc},{terms[k]}->{keep}")[0])
        acc = keep

    def run(*operands: torch.Tensor) -> torch.Tensor:
        result = operands[0]
        for fn, operand in zip(chain, operands[1:]):
            result = fn(result, operand)
        return result

    return run, f"{len(terms)} operands, pairwise left to right"
