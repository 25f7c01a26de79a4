"""Run an einsum: the plans that :mod:`axisdot.cache` keeps and the front end calls.

:class:`RankedEinsum`
    One or two operands, planned from the equation and the ranks alone, so a new size
    never builds anything. Per call it checks only the sizes its torch calls would not
    refuse by themselves; a size-1 axis broadcasting against a larger one, mixed dtypes,
    or an integer/bool sum go to a :class:`SizedEinsum` for those shapes.
:class:`SizedEinsum`
    Any number of operands, planned for their shapes: size-1 axes are squeezed out
    first (a broadcast or degenerate axis is constant along itself, so dropping it is
    exact and leaves no broadcasting and no temporary), then opt_einsum's path over the
    rest, each step from :func:`axisdot.cache.einsum_step`, and a final reshape (a view)
    to the output shape. Built with nominal sizes (``traced=True``) it serves symbolic
    shapes under ``torch.compile`` and ``torch.export``: one graph for every size.

Result dtypes are torch.einsum's: the operands' dtype, except that torch sums integer
and bool operands in int64 where it sums an axis of one operand alone
(:func:`widens_to_int64`). Mixed dtypes, which torch.einsum refuses, are promoted
(:func:`axisdot.operands.common_dtype`).
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Optional, Sequence

import torch

from .einsum_parse import Subscripts, letter_sizes, quote
from .einsum_layout import LaidStep, laid_out_steps
from .einsum_path import choose_path, path_cost, rival_paths
from .errors import AxisdotError, ShapeError, with_context
from .operands import check_same_device, common_dtype, unsupported_dtype
from .plan import RECOVERABLE, Plan

__all__ = ["RankedEinsum", "SizedEinsum", "widens_to_int64", "NOMINAL_SIZE", "FLOATING"]

StepLookup = Callable[[str], tuple[Callable[..., torch.Tensor], str]]

#: The size every axis is given when a path is chosen without sizes (symbolic shapes).
NOMINAL_SIZE = 8

_FALLBACK = RECOVERABLE + (ShapeError,)

FLOATING = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64,
                      torch.complex64, torch.complex128})


def widens_to_int64(sub: Subscripts, shapes: Optional[Sequence[Sequence[Optional[int]]]]) -> bool:
    """Whether torch.einsum sums integer or bool operands in int64 here: one operand
    with any axis summed (``torch.sum``), or several with a summed label whose size is
    not 1 in exactly one operand (torch sums it there first). ``shapes=None``, or a
    size None, assumes no size is 1."""
    summed = set("".join(sub.inputs)) - set(sub.output)
    if len(sub.inputs) == 1:
        return bool(summed)
    for label in summed:
        holders = 0
        for i, term in enumerate(sub.inputs):
            if label in term and (shapes is None or shapes[i][term.index(label)] != 1):
                holders += 1
        if holders == 1:
            return True
    return False


def _guards_recompile(sizes: Sequence[Any]) -> bool:
    """Whether a guard on these symbolic sizes recompiles when it fails, as under
    torch.compile; not under ``torch.export`` (whose dynamic dimensions must take every
    size in their range), nor where the sizes' ShapeEnv turns guards into runtime
    asserts, as export's does (torch 2.5 has no ``torch.compiler.is_exporting``)."""
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    if is_exporting is not None and is_exporting():
        return False
    env = getattr(getattr(sizes[0], "node", None), "shape_env", None) if sizes else None
    return env is not None and not getattr(env, "prefer_deferred_runtime_asserts_over_guards", True)


def _pops(operands: Sequence[int]) -> tuple[int, ...]:
    """The ``list.pop`` positions that take ``operands`` (working-list positions) in
    their order: each less the earlier ones below it."""
    return tuple(p - sum(q < p for q in operands[:k]) for k, p in enumerate(operands))


def _run_steps(steps: Sequence[tuple[tuple[int, ...], Callable[..., torch.Tensor]]],
               operands: list[torch.Tensor]) -> torch.Tensor:
    work = operands
    for pops, fn in steps:
        work.append(fn(*[work.pop(i) for i in pops]))
    return work[0]


class SizedEinsum:
    """An einsum planned for given shapes (see the module docstring).

    A size given as None is unknown (a symbolic size under ``torch.compile``): the path
    is chosen for its hint (the size it was traced with) where ``hints`` gives one, else
    for :data:`NOMINAL_SIZE`, and sizes are checked at every call instead. The path is
    guarded against its :attr:`rivals` (:func:`axisdot.einsum_path.rival_paths`, from
    the symbols that ``symbols`` numbers): each trace compares their costs on the
    symbolic sizes, which torch.compile keeps as guards, so sizes where a rival is
    cheaper recompile and choose their own path (:meth:`guard`).
    """

    def __init__(self, sub: Subscripts, shapes: Sequence[Sequence[Optional[int]]], optimize: Hashable,
                 memory_limit: Any, step: StepLookup,
                 hints: Optional[Sequence[Sequence[Optional[int]]]] = None,
                 symbols: Optional[Sequence[Sequence[Optional[int]]]] = None) -> None:
        self.sub = sub
        self.traced = any(n is None for shape in shapes for n in shape)
        self.quoted = quoted = quote(sub.written)
        if self.traced:  # the path for the hinted sizes; any size runs it (checked per call)
            self.sizes = {c: NOMINAL_SIZE for c in "".join(sub.inputs)}
            for term, shape, hint in zip(sub.inputs, shapes, hints or shapes):
                for c, n, h in zip(term, shape, hint):
                    n = n if n is not None else h
                    if n is not None and n != 1:
                        self.sizes[c] = n
        else:
            self.sizes = letter_sizes(sub, shapes)  # type: ignore[arg-type]
        inputs, squeeze = [], []
        for term, shape in zip(sub.inputs, shapes):
            ones = tuple(k for k, n in enumerate(shape) if n == 1)
            inputs.append("".join(c for k, c in enumerate(term) if k not in ones))
            squeeze.append(ones or None)
        kept = set("".join(inputs))
        output = "".join(c for c in sub.output if c in kept)
        self.squeeze: tuple[Optional[tuple[int, ...]], ...] = tuple(squeeze)
        #: output axes of size 1 everywhere: squeezed out, put back at the end
        self.unsqueeze = tuple(k for k, c in enumerate(sub.output) if c not in kept)
        self.inputs, self.output = tuple(inputs), output
        self.widens = widens_to_int64(sub, shapes)
        sizes = {c: self.sizes.get(c, 1) for c in kept}
        self.path, self.path_origin = choose_path(self.inputs, output, sizes, optimize, memory_limit, quoted)
        #: paths chosen for other values of the symbolic sizes, which cost no less at the hints;
        #: none where a size has no hint (an unbacked, data-dependent size: torch refuses to guard on it)
        self.rivals: tuple[tuple[tuple[int, ...], ...], ...] = ()
        if self.traced and symbols is not None and hints is not None \
                and all(h is not None for hint in hints for h in hint):
            groups: dict[int, set[str]] = {}
            for term, numbers in zip(sub.inputs, symbols):
                for c, k in zip(term, numbers):
                    if k is not None and c in kept:
                        groups.setdefault(k, set()).add(c)
            varied = [sorted(g) for _, g in sorted(groups.items())]
            self.rivals = rival_paths(self.inputs, output, sizes, self.path, optimize, memory_limit, quoted, varied)
        #: each intermediate laid out for the step that reads it (:mod:`axisdot.einsum_layout`)
        self.steps: tuple[LaidStep, ...] = laid_out_steps(self.inputs, output, self.path, self.sizes)
        self.lowerings = [step(s.equation) for s in self.steps]
        self._run = [(_pops(s.operands), fn) for s, (fn, _label) in zip(self.steps, self.lowerings)]

    def prepared(self, operands: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], torch.dtype]:
        """The operands checked and squeezed, and the dtype the steps run in."""
        if self.traced:
            self.guard(letter_sizes(self.sub, [t.shape for t in operands]))
        ops = [t if dims is None else t.squeeze(dims) for t, dims in zip(operands, self.squeeze)]
        dtype = common_dtype(ops)
        if self.widens and dtype not in FLOATING:
            dtype = torch.int64
        if len(ops) > 1 and any(t.device != ops[0].device for t in ops[1:]):
            check_same_device(ops, [f"operand {i}" for i in range(len(ops))], self.quoted)
        return ops, dtype

    def guard(self, sizes: dict[str, Any]) -> None:
        """Compare the path's FLOPs with each rival's on the traced (symbolic) sizes.
        Turning each comparison into a bool makes torch.compile keep it as a guard
        (``cost(path) <= cost(rival)``, true at the hints the plan was chosen for), so a
        later size where a rival is cheaper recompiles. Not under ``torch.export``,
        whose dynamic dimensions must accept every size in their range."""
        if not self.rivals or not _guards_recompile([n for n in sizes.values() if n.__class__ is not int]):
            return
        mine = path_cost(self.inputs, self.output, sizes, self.path)[1]
        for rival in self.rivals:
            if not mine <= path_cost(self.inputs, self.output, sizes, rival)[1]:
                break  # not at the hints; a guard was recorded either way

    def contract(self, ops: Sequence[torch.Tensor]) -> torch.Tensor:
        """The steps on prepared operands (or slices of them), in :attr:`output`'s order."""
        return _run_steps(self._run, list(ops))

    def finish(self, out: torch.Tensor) -> torch.Tensor:
        """The output axes of size 1 everywhere put back."""
        for k in self.unsqueeze:
            out = out.unsqueeze(k)
        return out

    def __call__(self, operands: Sequence[torch.Tensor]) -> torch.Tensor:
        quoted = self.quoted
        ops, dtype = self.prepared(operands)
        ops = [t if t.dtype == dtype else t.to(dtype) for t in ops]
        try:
            out = _run_steps(self._run, list(ops))
        except AxisdotError as err:  # a step's refusal, in the words of the user's equation
            cause = err.__cause__
            refusal = unsupported_dtype(cause, ops, quoted) if cause is not None else None
            if refusal is not None:
                raise refusal from cause
            raise with_context(err, [f"in {quoted}"]) from cause
        except RECOVERABLE as err:
            refusal = unsupported_dtype(err, ops, quoted)
            if refusal is not None:
                raise refusal from err
            raise
        return self.finish(out)


def _diagonals(terms: Sequence[str]) -> tuple[tuple[int, int, int, int], ...]:
    """``(operand, axis, operand, axis)`` for each later axis of a letter repeated in one
    term, paired with its first axis; none (after one set per term) in the usual case."""
    for term in terms:
        if len(set(term)) != len(term):
            break
    else:
        return ()
    return tuple((i, term.index(c), i, a) for i, term in enumerate(terms) for a, c in enumerate(term)
                 if term.index(c) != a)


def _shared(a: str, b: str) -> tuple[tuple[int, int], ...]:
    """``(a axis, b axis)`` of each letter of ``a`` that ``b`` holds too, in ``a``'s order."""
    shared: tuple[tuple[int, int], ...] = ()
    for i, c in enumerate(a):
        j = b.find(c)
        if j >= 0:
            shared += ((i, j),)
    return shared


class RankedEinsum:
    """A one- or two-operand einsum planned from the equation and the ranks alone."""

    def __init__(self, sub: Subscripts, step: StepLookup,
                 sized: Callable[[Sequence[torch.Tensor]], SizedEinsum]) -> None:
        self.sub = sub
        self.sized = sized
        fn, self.lowering = step(sub.equation)
        self.fn = fn
        terms = sub.inputs
        # a step that is one plan on the operands as they are (see einsum_steps) has no letter
        # repeated in a term, pairs the letters the operands share, and sums contracted letters only
        plain = fn.__class__ is Plan
        #: (operand, axis, operand, axis) pairs of a repeated letter, whose sizes must agree exactly
        self.diagonals = () if plain else _diagonals(terms)
        #: the step's plan, run as it is when the step is nothing else
        self.direct: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = fn.run if plain else None
        #: (x axis, y axis) of each letter the two operands share
        self.shared = fn.layout.pairs if plain else _shared(terms[0], terms[1]) if len(terms) == 2 else ()
        #: integer and bool operands need the size-aware dtype rule when anything is summed
        self.int_sensitive = fn.spec.contract[0] != () if plain else not set(sub.output).issuperset("".join(terms))

    def __call__(self, operands: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(operands) == 2:
            x, y = operands
            direct, dtype = self.direct, x.dtype
            if direct is not None and dtype is y.dtype and (not self.int_sensitive or dtype in FLOATING):
                try:  # the lowering checks what torch would not; anything unusual goes the sized way
                    return direct(x, y)
                except _FALLBACK:
                    return self.sized(operands)(operands)
            for i, a, j, b in self.diagonals:
                if operands[i].shape[a] != operands[j].shape[b]:
                    return self.sized(operands)(operands)  # raises the diagonal's ShapeError
            if x.dtype != y.dtype:
                return self.sized(operands)(operands)
            xs, ys = x.shape, y.shape
            for a, b in self.shared:
                if xs[a] != ys[b]:
                    return self.sized(operands)(operands)  # broadcasting, or a ShapeError
            if self.int_sensitive and x.dtype not in FLOATING:
                return self.sized(operands)(operands)
            try:
                return self.fn(x, y)
            except RECOVERABLE:
                return self.sized(operands)(operands)
        for i, a, j, b in self.diagonals:
            if operands[i].shape[a] != operands[j].shape[b]:
                return self.sized(operands)(operands)  # raises the diagonal's ShapeError
        (t,) = operands
        if self.int_sensitive and t.dtype not in FLOATING:
            return self.sized(operands)(operands)
        return self.fn(t)
