"""Each intermediate of an einsum path laid out for the step that reads it.

A pairwise step's plan returns its result as ``batch, x's free, y's free`` (the order
:func:`axisdot.einsum_steps.pairwise` names), so an intermediate costs nothing to lay out
in one of two orders: the step's operands as they are, or swapped. The step that reads it
runs without a copy when the intermediate is already in its layout (batch leading in
the other operand's order, the contracted letters as one block; see
:mod:`axisdot.layout`) and copies it otherwise. :func:`laid_out_steps` picks, for every
step, the operand order whose results the later steps read with the fewest copied
elements (dynamic programming over the path, keeping a few orders per intermediate);
the final step writes the requested output order directly where an order allows it,
else returns a permuted view (no copy, as torch.einsum does). The copies left are those
no order avoids; :attr:`LaidStep.copied` names them for ``explain``.

Nothing here runs torch: the cost of a step is read from the lowering its plan would take.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

from .einsum_path import Path, kept_letters
from .einsum_steps import pairwise, reduced_order
from .layout import larger_y_layout, layout, y_leads
from .lowerings import Kind, choose

__all__ = ["LaidStep", "StepLayout", "laid_out_steps", "step_copies", "KEEP_ORDERS"]

#: Orders kept per intermediate (the cheapest): enough for every case of the benchmark
#: corpus, few enough that a path of hundreds of steps lays out in milliseconds.
KEEP_ORDERS = 4


@dataclass(frozen=True)
class LaidStep:
    """A step as it runs: the working-list positions of its operands in the order the
    equation names them, the equation, and the operands its plan copies (their letters; see :class:`StepLayout`)."""

    operands: tuple[int, ...]
    equation: str
    copied: tuple[str, ...] = ()


def _size(term: str, sizes: dict[str, int]) -> int:
    return math.prod(sizes.get(c, 1) for c in term)


def _copied(term: str, perm: Optional[tuple[int, ...]], groups: tuple[int, int, int], sizes: dict[str, int]) -> bool:
    """Whether the permute/reshape/bmm lowering copies a contiguous operand ``term``:
    its permuted axes, as ``groups`` (batch, then the two matrix groups), must each merge
    as a view, and one matrix axis must have stride 1 (else bmm copies inside)."""
    stride, step = {}, 1
    for c in reversed(term):
        stride[c] = step
        step *= sizes.get(c, 1)
    order = term if perm is None else "".join(term[i] for i in perm)
    merged: list[Optional[int]] = []
    start = 0
    for n in groups:
        group = [c for c in order[start:start + n] if sizes.get(c, 1) != 1]
        start += n
        if any(stride[u] != stride[v] * sizes[v] for u, v in zip(group, group[1:])):
            return True  # the reshape copies
        merged.append(stride[group[-1]] if group else None)
    return merged[1] not in (None, 1) and merged[2] not in (None, 1)


class StepLayout(NamedTuple):
    """What a step's layout costs: the operands it copies (their letters, as reduced for
    the product; ``may copy`` ones are not contiguous in their letter order, as an
    elementwise product or a diagonal leaves them), the elements copied, the order its
    plan returns, and whether that result is contiguous in that order."""

    copied: tuple[str, ...]
    cost: int
    natural: str
    contiguous: bool


def _reduced(term: str, keep: str, contiguous: bool) -> tuple[str, bool]:
    """``term`` as a step reduces it, and whether it is still contiguous in that order
    (a sum keeps the order; a diagonal leaves a strided view, or a sum of one laid out
    as its strides say: not counted on)."""
    return reduced_order(term, keep), contiguous and len(set(term)) == len(term)


def step_copies(x: str, y: str, result: str, sizes: dict[str, int], x_contiguous: bool = True,
                y_contiguous: bool = True) -> StepLayout:
    """How the step ``x,y->result`` lays its operands out (see :class:`StepLayout`);
    an operand not contiguous in its letter order is counted as copied by a bmm."""
    (x, x_ok), (y, y_ok) = _reduced(x, y + result, x_contiguous), _reduced(y, x + result, y_contiguous)
    spec, natural = pairwise(x, y, result)  # type: ignore[misc]  # reduced: always pairwise
    lay = layout(spec)
    if choose(lay).kind is not Kind.PERMUTE_BMM:
        in_place = x_ok and y_ok and lay.in_place
        return StepLayout((), 0, natural, in_place or not choose(lay).kind.elementwise)
    by_y = larger_y_layout(spec, lay)  # the lowering's choice for a larger y, as it makes it per call
    if by_y is not None and y_leads(_size(y, sizes), _size("".join(c for c in x if c not in y), sizes),
                                    _size("".join(c for c in y if c not in x), sizes)):
        lay = by_y
    nb, nc = lay.n_batch, lay.n_contract
    x_groups = (nb, nc, lay.n_x_free) if lay.x_cf else (nb, lay.n_x_free, nc)
    y_groups = (nb, nc, lay.n_y_free) if lay.y_cf else (nb, lay.n_y_free, nc)
    copied = tuple(term if ok else f"{term} (may copy)"
                   for term, ok, perm, groups in ((x, x_ok, lay.x_perm, x_groups), (y, y_ok, lay.y_perm, y_groups))
                   if not ok or _copied(term, perm, groups, sizes))
    return StepLayout(copied, sum(_size(term.split()[0], sizes) for term in copied), natural, True)


@dataclass(frozen=True)
class _Choice:
    """One way to make an intermediate (a linked list back to the inputs)."""

    cost: int
    step: Optional[LaidStep]
    earlier: tuple["_Choice", ...]
    #: the step's place in the path (-1 for an input)
    index: int = -1
    #: whether the intermediate is contiguous in its letter order
    contiguous: bool = True


def _pair_choices(a: dict[str, _Choice], b: dict[str, _Choice], positions: tuple[int, int], result: str,
                  final: Optional[str], sizes: dict[str, int], index: int) -> dict[str, _Choice]:
    """Every order of a step's two operands and of their own candidate orders; keeps the
    cheapest way to each result order. ``positions`` are ``a``'s then ``b``'s."""
    found: dict[str, _Choice] = {}
    y_vectors: dict[str, bool] = {}
    for oa, ca in a.items():
        for ob, cb in b.items():
            for (x, cx, px), (y, cy, py) in (((oa, ca, positions[0]), (ob, cb, positions[1])),
                                             ((ob, cb, positions[1]), (oa, ca, positions[0]))):
                lay = step_copies(x, y, result if final is None else final, sizes, cx.contiguous, cy.contiguous)
                out = lay.natural if final is None else final
                # a result laid out by an elementwise product may cost its reader a copy
                cost = ca.cost + cb.cost + lay.cost + (0 if lay.contiguous else _size(out, sizes) // 2) + \
                    (1 if final is not None and lay.natural != final else 0)
                # at equal cost, matrices times vectors as the vectors times the matrices: BLAS's
                # batched (1, k) x (k, m) products run 0.1-0.5x the time of (m, k) x (k, 1) from
                # (2, 64, 64) up (cupy#4834's ace,ae->ac, (20000, 20, 100): 40 -> 11 ms; measured)
                y_vector = set(y) <= set(x) and not set(x) <= set(y)
                if out not in found or cost < found[out].cost or \
                        (cost == found[out].cost and y_vectors[out] and not y_vector):
                    step = LaidStep((px, py), f"{x},{y}->{out}", lay.copied)
                    found[out] = _Choice(cost, step, (cx, cy), index, lay.contiguous)
                    y_vectors[out] = y_vector
    return dict(sorted(found.items(), key=lambda kv: kv[1].cost)[:KEEP_ORDERS])


def laid_out_steps(inputs: Sequence[str], output: str, path: Path, sizes: dict[str, int]) -> tuple[LaidStep, ...]:
    """The steps of ``path`` with each intermediate's letter order chosen for the step
    that reads it (see the module docstring)."""
    work: list[dict[str, _Choice]] = [{t: _Choice(0, None, ())} for t in inputs]
    for k, inds in enumerate(path):
        order = tuple(sorted(inds, reverse=True))
        picked = [work.pop(i) for i in order]
        final = output if k == len(path) - 1 else None
        needed = set("".join(o for entry in work for o in entry)) | set(output)
        if len(picked) == 2:
            some = next(iter(picked[0])) + next(iter(picked[1]))
            work.append(_pair_choices(picked[0], picked[1], (order[0], order[1]),
                                      kept_letters(some, needed), final, sizes, k))
            continue
        # one operand (or more, which choose_path never leaves): the letters still needed, in order
        choices = {}
        for joined, ways in _combinations(picked):
            out = final if final is not None else kept_letters("".join(joined), needed)
            equation = ",".join(joined) + "->" + out
            (term,) = joined if len(joined) == 1 else ("",)  # one operand: contiguous if only summed
            contiguous = len(joined) == 1 and all(w.contiguous for w in ways) and \
                _reduced(term, out, True) == (out, True)
            choices.setdefault(out, _Choice(sum(w.cost for w in ways), LaidStep(order, equation), ways, k,
                                            contiguous))
        work.append(choices)
    (last,) = work
    best = min(last.values(), key=lambda c: c.cost)
    steps: list[LaidStep] = []
    _collect(best, steps)
    return tuple(steps)


def _combinations(picked: list[dict[str, _Choice]]) -> list[tuple[tuple[str, ...], tuple[_Choice, ...]]]:
    combos: list[tuple[tuple[str, ...], tuple[_Choice, ...]]] = [((), ())]
    for entry in picked:
        combos = [(terms + (o,), ways + (c,)) for terms, ways in combos for o, c in entry.items()][:KEEP_ORDERS]
    return combos


def _collect(choice: _Choice, steps: list[LaidStep]) -> None:
    """The steps behind ``choice``, in path order."""
    pending, seen = [choice], []
    while pending:  # iterative: a path of hundreds of steps would overflow the recursion limit
        c = pending.pop()
        if c.step is not None:
            seen.append(c)
            pending.extend(c.earlier)
    steps.extend(c.step for c in sorted(seen, key=lambda c: c.index))  # type: ignore[misc]
