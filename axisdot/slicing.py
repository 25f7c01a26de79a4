"""``max_memory=``: an einsum run in slices so that its temporaries stay under a bound.

A planned einsum (:class:`~axisdot.einsum_plan.SizedEinsum`) allocates temporaries
along its path: each step's result, the copies its lowering makes of operands it cannot
read in place, the sums that reduce an operand first and, for a vector dot, the
elementwise product. :func:`peak_bytes` counts them step by step from the plan (the
working list of intermediates alive at each step, as ``_run_steps`` holds them), for
given letter sizes, so it serves the whole contraction and any slice of it alike.

When that peak is over the bound, :func:`choose_slicing` cuts letters into pieces
(``tensor_split``, views): each added cut is the one that costs the fewest extra FLOPs
(opt_einsum's count over the sliced path, times the slices, plus the additions into the
output), so output letters go first (each slice writes its own part of the output) and
contracted ones after (each slice's result is added into the output), until the peak of
one slice fits. If nothing fits, :class:`~axisdot.errors.ArgumentError` names the
smallest feasible bound. :func:`run_sliced` runs the pieces into a preallocated output;
under autograd a :class:`torch.autograd.Function` recomputes each slice in the backward
pass instead of keeping every slice's intermediates. Under ``torch.compile``,
``torch.export`` and ``torch.func`` transforms the same slices run functionally
(``torch.cat`` and sums): the results agree, but the compiler plans the buffers there.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Optional, Sequence

import torch

from .einsum_layout import step_copies
from .einsum_path import step_cost
from .einsum_plan import SizedEinsum
from .einsum_steps import pairwise, reduced_order
from .errors import ArgumentError, AxisdotTypeError
from .layout import layout
from .lowerings import Kind, choose

__all__ = ["Slicing", "parse_max_memory", "peak_bytes", "choose_slicing", "run_sliced", "plan_for", "explain_slicing"]

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-z]*)\s*$")


def parse_max_memory(max_memory: Any, quoted: str) -> Optional[int]:
    """``max_memory`` in bytes: None, an int or float >= 0, or a string such as
    ``"512MiB"``, ``"1.5 GB"`` or ``"4096"`` (units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)."""
    if max_memory is None:
        return None
    if isinstance(max_memory, str):
        found = _AMOUNT.match(max_memory.lower())
        if found is None or found.group(2) not in _UNITS:
            raise ArgumentError(f"{quoted}: max_memory={max_memory!r} is not an amount of memory; write bytes as "
                                f"an int or a string such as '512MiB', '1.5GB' (units {', '.join(_NAMES)})")
        return int(float(found.group(1)) * _UNITS[found.group(2)])
    if isinstance(max_memory, bool) or not isinstance(max_memory, (int, float)):
        raise AxisdotTypeError(f"{quoted}: max_memory must be None, a number of bytes or a string such as '512MiB', "
                               f"got {type(max_memory).__name__} {max_memory!r}")
    if not max_memory >= 0 or math.isinf(max_memory):
        raise ArgumentError(f"{quoted}: max_memory must be a finite number of bytes >= 0, got {max_memory!r}")
    return int(max_memory)


_NAMES = ("B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB")


def _size(term: str, sizes: dict[str, int]) -> int:
    return math.prod(sizes.get(c, 1) for c in term)


def _pair_extra(a: str, b: str, result: str, sizes: dict[str, int], contiguous: tuple[bool, bool]) -> tuple[int, bool]:
    """Elements a two-operand step allocates besides its result (sums that reduce an
    operand first, the copies its lowering makes, a vector dot's product), and whether
    its result is contiguous in ``result``'s order."""
    ra, rb = reduced_order(a, b + result), reduced_order(b, a + result)
    extra = sum(_size(r, sizes) for t, r in ((a, ra), (b, rb)) if len(r) < len(set(t)))
    spec, natural = pairwise(ra, rb, result)  # type: ignore[misc]  # reduced: always pairwise
    if not spec.contract[0] and natural != result and ra == a and rb == b:
        return extra, True  # one broadcast product in the output's order
    kind = choose(layout(spec)).kind
    if kind in (Kind.VECTOR_DOT, Kind.ROW_DOT):
        return extra + _size("".join(set(ra + rb)), sizes), False
    laid = step_copies(a, b, result, sizes, *contiguous)
    copies = laid.cost
    if kind is not Kind.PERMUTE_BMM:  # a matmul may copy an operand it cannot read with its strides
        copies = sum(_size(r, sizes) for r, ok in ((ra, contiguous[0]), (rb, contiguous[1])) if not ok)
    return extra + copies, laid.contiguous and natural == result


def _simulate(plan: SizedEinsum, sizes: dict[str, int], contiguous: Sequence[bool]
              ) -> tuple[list[int], list[int], list[int]]:
    """For each step of ``plan`` with these letter sizes: the elements alive at its
    peak (intermediates held, its temporaries and its result), what it allocates, and
    its operands' elements (a repeated letter counted on each of its axes)."""
    work = [(term, ok, False) for term, ok in zip(plan.inputs, contiguous)]
    held, peaks, allocated, read = 0, [], [], []
    for step in plan.steps:
        picked = [work[i] for i in step.operands]
        for i in sorted(step.operands, reverse=True):
            del work[i]
        lhs, result = step.equation.split("->")
        if len(picked) == 2:
            extra, ok = _pair_extra(picked[0][0], picked[1][0], result, sizes, (picked[0][1], picked[1][1]))
        else:
            extra, ok = 0, reduced_order(picked[0][0], result) == result and picked[0][1]
        size = _size(result, sizes)
        peaks.append(held + extra + size)
        allocated.append(extra + size)
        read.append(sum(_size(t, sizes) for t, _ok, _mid in picked))
        held += size - sum(_size(t, sizes) for t, _ok, mid in picked if mid)
        work.append((result, ok, True))
    return peaks, allocated, read


def peak_bytes(plan: SizedEinsum, sizes: dict[str, int], itemsize: int, contiguous: Sequence[bool],
               grad: bool = False, converted: Sequence[bool] = ()) -> int:
    """The peak of temporaries (bytes) one run of ``plan`` allocates at these letter
    sizes, its result included (a slice's result is a temporary); with ``grad``, the
    forward and the backward of a recomputed slice: every step's allocation kept for
    backward, and for each step twice its operands, result and temporaries again (the
    gradients its backward makes: of each operand, of a diagonal's base, of a copy).
    ``converted`` operands are copied to the result dtype first."""
    peaks, allocated, read = _simulate(plan, sizes, contiguous)
    inputs = sum(_size(t, sizes) for t, conv in zip(plan.inputs, converted) if conv)
    if not grad:
        return (max(peaks, default=0) + inputs) * itemsize
    return (sum(allocated) + inputs + 2 * (sum(read) + sum(allocated))) * itemsize


@dataclass(frozen=True)
class Slicing:
    """How a call runs under a bound: ``cuts`` (letter, pieces) in the order the loops
    nest, output letters first; the peak of temporaries of the plan unsliced and of one
    slice (bytes); the number of slices; the FLOPs of the sliced run and the FLOPs it
    adds to the unsliced plan's."""

    cuts: tuple[tuple[str, int], ...]
    unsliced_peak: int
    peak: int
    slices: int
    flops: int
    extra_flops: int

    @property
    def letters(self) -> str:
        return "".join(c for c, _k in self.cuts)


def _sliced_sizes(sizes: dict[str, int], pieces: dict[str, int]) -> dict[str, int]:
    return {c: -(-n // pieces.get(c, 1)) for c, n in sizes.items()}


def _flops(plan: SizedEinsum, sizes: dict[str, int], pieces: dict[str, int]) -> int:
    """opt_einsum's FLOPs of every slice's path, plus one addition per output element of
    each slice after the first over the contracted letters."""
    sliced = _sliced_sizes(sizes, pieces)
    slices = math.prod(pieces.values())
    per_slice = sum(step_cost(s.equation, sliced) for s in plan.steps)
    summed = math.prod(k for c, k in pieces.items() if c not in plan.output)
    return slices * per_slice + (summed - 1) * _size(plan.output, sizes)


def choose_slicing(plan: SizedEinsum, bound: int, itemsize: int, contiguous: tuple[bool, ...], grad: bool,
                   converted: tuple[bool, ...] = ()) -> Slicing:
    """The cuts that bring one slice's peak of temporaries under ``bound`` bytes at the
    fewest extra FLOPs (see the module docstring); no cut when the plan fits as it is."""
    sizes = {c: n for c, n in plan.sizes.items() if c in "".join(plan.inputs)}
    base = _flops(plan, sizes, {})
    unsliced = peak_bytes(plan, sizes, itemsize, contiguous, grad, converted) if grad else \
        _unsliced_peak(plan, sizes, itemsize, contiguous, converted)
    pieces: dict[str, int] = {}
    peak = unsliced
    while peak > bound:
        best = None
        for c in sorted(sizes, key=lambda c: (c not in plan.output, c)):
            if pieces.get(c, 1) >= sizes[c]:
                continue
            trial = {**pieces, c: min(sizes[c], 2 * pieces.get(c, 1))}
            cut_contiguous = _narrowed(plan.inputs, trial, contiguous)
            p = peak_bytes(plan, _sliced_sizes(sizes, trial), itemsize, cut_contiguous, True, converted) if grad \
                else peak_bytes(plan, _sliced_sizes(sizes, trial), itemsize, cut_contiguous, False, converted)
            key = (p >= peak, _flops(plan, sizes, trial), p)
            if best is None or key < best[0]:
                best = (key, trial, p)
        if best is None:
            raise _infeasible(plan, bound, peak)
        pieces, peak = best[1], best[2]
    order = sorted(pieces, key=lambda c: (c not in plan.output, c))
    cuts = tuple((c, pieces[c]) for c in order if pieces[c] > 1)
    flops = _flops(plan, sizes, pieces)
    return Slicing(cuts, unsliced, peak, math.prod(k for _c, k in cuts), flops, flops - base)


def _unsliced_peak(plan: SizedEinsum, sizes: dict[str, int], itemsize: int, contiguous: tuple[bool, ...],
                   converted: tuple[bool, ...]) -> int:
    """The unsliced plan's peak: its final result is the output, not a temporary."""
    peaks, _allocated, _read = _simulate(plan, sizes, contiguous)
    if peaks:
        peaks[-1] -= _size(plan.steps[-1].equation.split("->")[1], sizes)
    inputs = sum(_size(t, sizes) for t, conv in zip(plan.inputs, converted) if conv)
    return (max(peaks, default=0) + inputs) * itemsize


def _narrowed(inputs: Sequence[str], pieces: dict[str, int], contiguous: Sequence[bool]) -> tuple[bool, ...]:
    """Whether each operand stays contiguous once cut: only its first axis may be cut."""
    return tuple(ok and not any(pieces.get(c, 1) > 1 for c in term[1:]) for term, ok in zip(inputs, contiguous))


def _infeasible(plan: SizedEinsum, bound: int, smallest: int) -> ArgumentError:
    return ArgumentError(
        f"{plan.quoted}: max_memory={bound:,} bytes cannot be kept: one slice of a single element along every "
        f"letter still needs {smallest:,} bytes of temporaries; the smallest feasible max_memory is {smallest:,}"
    )


@lru_cache(maxsize=256)
def plan_for(plan: SizedEinsum, bound: int, itemsize: int, contiguous: tuple[bool, ...], grad: bool,
             converted: tuple[bool, ...]) -> Slicing:
    """:func:`choose_slicing`, cached by the plan (itself cached by equation and shapes)."""
    return choose_slicing(plan, bound, itemsize, contiguous, grad, converted)


# -- running -------------------------------------------------------------------------------


def _pieces(tensors: Sequence[torch.Tensor], terms: Sequence[str],
            cuts: Sequence[tuple[str, int]]) -> Iterator[tuple[tuple[int, ...], list[torch.Tensor]]]:
    """Every slice: the piece index of each cut and each tensor's piece (views), cut
    with ``tensor_split`` along every axis that holds the cut's letter."""
    if not cuts:
        yield (), list(tensors)
        return
    (c, k), rest = cuts[0], cuts[1:]
    split = [_split(t, term, c, k) for t, term in zip(tensors, terms)]
    for i in range(k):
        for index, pieces in _pieces([s[i] if isinstance(s, list) else s for s in split], terms, rest):
            yield (i, *index), pieces


def _split(t: torch.Tensor, term: str, c: str, k: int) -> Any:
    axes = [a for a, d in enumerate(term) if d == c]
    if not axes:
        return t
    parts = [t]
    for a in axes:  # a repeated letter: the same piece along each of its axes (a block of the diagonal)
        parts = [p.tensor_split(k, a)[i] for i, p in enumerate(parts)] if len(parts) == k else list(t.tensor_split(k, a))
    return parts


def _first(index: tuple[int, ...], cuts: Sequence[tuple[str, int]], output: str) -> bool:
    return all(i == 0 for i, (c, _k) in zip(index, cuts) if c not in output)


def _slice_run(plan: SizedEinsum, ops: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    return plan.contract([t if t.dtype == dtype else t.to(dtype) for t in ops])


def _forward(plan: SizedEinsum, ops: Sequence[torch.Tensor], cuts: Sequence[tuple[str, int]],
             dtype: torch.dtype) -> torch.Tensor:
    out = torch.empty(_output_shape(plan, ops), dtype=dtype, device=ops[0].device)
    for index, pieces in _pieces([*ops, out], [*plan.inputs, plan.output], cuts):
        result = _slice_run(plan, pieces[:-1], dtype)
        if _first(index, cuts, plan.output):
            pieces[-1].copy_(result)
        else:
            pieces[-1].add_(result)
        del result
    return out


def _output_shape(plan: SizedEinsum, ops: Sequence[torch.Tensor]) -> list[int]:
    found = {c: n for term, t in zip(plan.inputs, ops) for c, n in zip(term, t.shape)}
    return [found[c] for c in plan.output]


class _Sliced(torch.autograd.Function):
    """The sliced run, its backward recomputing each slice (nothing kept but the inputs)."""

    @staticmethod
    def forward(ctx: Any, plan: SizedEinsum, cuts: tuple, dtype: torch.dtype, *ops: torch.Tensor) -> torch.Tensor:
        ctx.plan, ctx.cuts, ctx.dtype = plan, cuts, dtype
        ctx.save_for_backward(*ops)
        return _forward(plan, ops, cuts, dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
        plan, cuts, ops = ctx.plan, ctx.cuts, ctx.saved_tensors
        needed = ctx.needs_input_grad[3:]
        grads = [torch.zeros_like(t) if need else None for t, need in zip(ops, needed)]
        terms = [*plan.inputs, plan.output, *(t for t, g in zip(plan.inputs, grads) if g is not None)]
        tensors = [*ops, grad, *(g for g in grads if g is not None)]
        for _index, pieces in _pieces(tensors, terms, cuts):
            _slice_backward(plan, ctx.dtype, pieces, needed)
        return (None, None, None, *grads)


def _slice_backward(plan: SizedEinsum, dtype: torch.dtype, pieces: Sequence[torch.Tensor],
                    needed: Sequence[bool]) -> None:
    """One slice recomputed and its gradients added into the inputs' (``pieces``: the
    operands', the output gradient's, then the needed input gradients'); a function, so
    that nothing it made outlives it."""
    n = len(needed)
    leaves = [p.detach().requires_grad_(need) for p, need in zip(pieces[:n], needed)]
    with torch.enable_grad():
        result = _slice_run(plan, leaves, dtype)
        found = torch.autograd.grad(result, [t for t in leaves if t.requires_grad], pieces[n])
    del result
    for target, g in zip(pieces[n + 1:], found):
        target.add_(g)


def _functional(plan: SizedEinsum, ops: Sequence[torch.Tensor], cuts: Sequence[tuple[str, int]],
                dtype: torch.dtype) -> torch.Tensor:
    """The slices without in-place writes (compile, export, torch.func): cat and sum."""
    if not cuts:
        return _slice_run(plan, ops, dtype)
    (c, k), rest = cuts[0], cuts[1:]
    split = [_split(t, term, c, k) for t, term in zip(ops, plan.inputs)]
    results = [_functional(plan, [s[i] if isinstance(s, list) else s for s in split], rest, dtype) for i in range(k)]
    if c in plan.output:
        return torch.cat(results, plan.output.index(c))
    total = results[0]
    for r in results[1:]:
        total = total + r
    return total


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def _traced(ops: Sequence[torch.Tensor]) -> bool:
    """Whether the call is traced or transformed (torch.compile, export, AOTAutograd's
    fake and functional tensors, torch.func): the slices then run without in-place writes."""
    return torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active() \
        or any(t.__class__ not in _PLAIN for t in ops)


def run_sliced(plan: SizedEinsum, operands: Sequence[torch.Tensor], bound: int) -> torch.Tensor:
    """``plan(operands)`` with at most ``bound`` bytes of temporaries (see the module docstring)."""
    ops, dtype = plan.prepared(operands)
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in ops)
    contiguous = tuple(t.is_contiguous() for t in ops)
    converted = tuple(t.dtype != dtype for t in ops)
    itemsize = dtype.itemsize
    slicing = plan_for(plan, bound, itemsize, contiguous, grad, converted)
    if not slicing.cuts:
        out = plan.contract([t if t.dtype == dtype else t.to(dtype) for t in ops])
    elif _traced(ops):
        out = _functional(plan, ops, slicing.cuts, dtype)
    elif grad:
        out = _Sliced.apply(plan, slicing.cuts, dtype, *ops)
    else:
        out = _forward(plan, ops, slicing.cuts, dtype)
    return plan.finish(out)


def explain_slicing(plan: SizedEinsum, bound: int, dtype: torch.dtype) -> Slicing:
    """The slicing a forward call with contiguous operands of ``dtype`` takes."""
    itemsize = dtype.itemsize
    n = len(plan.inputs)
    return plan_for(plan, bound, itemsize, (True,) * n, False, (False,) * n)

