"""The order of an einsum's pairwise contractions, and each step spelled out. Torch-free.

A *path* is opt_einsum's: a list of tuples of positions in the working list of operands;
each step removes those operands and appends its result at the end. :func:`choose_path`
takes ``optimize`` as opt_einsum does (a strategy name, an explicit path, a
``PathOptimizer``, or ``False`` for left to right) and asks opt_einsum's path functions
directly, with the sizes already checked (no second parse). :func:`contraction_steps`
turns a path into :class:`Step` equations, with opt_einsum's choice of index order for
intermediates, and :func:`step_cost` counts FLOPs as opt_einsum counts them.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, Container, Hashable, Iterator, NamedTuple, Optional, Sequence

from opt_einsum import paths as _paths

from .errors import ArgumentError, AxisdotTypeError

__all__ = ["Step", "Chosen", "optimize_key", "choose_path", "pairwise_path", "path_cost", "search_harder",
           "search_trials", "rival_paths", "contraction_steps", "kept_letters", "step_cost", "memory_arg", "STRATEGIES"]

Path = tuple[tuple[int, ...], ...]


def _strategies() -> tuple[str, ...]:
    names = []
    for name in ("auto", "auto-hq", "optimal", "branch-all", "branch-2", "branch-1", "greedy", "eager",
                 "opportunistic", "dp", "dynamic-programming"):
        try:
            _paths.get_path_fn(name)
        except KeyError:  # pragma: no cover - an older opt_einsum
            continue
        names.append(name)
    return tuple(names)


#: The path strategies ``optimize=`` takes by name (opt_einsum's).
STRATEGIES = _strategies()


@dataclass(frozen=True)
class Step:
    """One contraction: the working-list positions it takes (in the order they are
    removed, highest first) and its equation, e.g. ``"bkl,bjk->blj"``."""

    operands: tuple[int, ...]
    equation: str


def optimize_key(optimize: Any, quoted: str) -> Hashable:
    """``optimize`` checked and made hashable: a strategy name (lower case), ``False``,
    a path as a tuple of tuples, or the PathOptimizer object itself."""
    if optimize is True or optimize is None:
        return "auto"
    if optimize is False:
        return False
    if isinstance(optimize, str):
        name = optimize.lower()
        try:
            _paths.get_path_fn(name)
        except KeyError:
            raise ArgumentError(
                f"{quoted}: optimize={optimize!r} is not a path strategy; use one of "
                f"{', '.join(map(repr, STRATEGIES))}, an explicit path such as [(0, 1), (0, 1)], or False"
            ) from None
        return name
    if isinstance(optimize, _paths.PathOptimizer):
        return optimize
    if isinstance(optimize, (list, tuple)):
        path = []
        for step in optimize:
            if not isinstance(step, (list, tuple)) or not all(
                    isinstance(i, int) and not isinstance(i, bool) for i in step):
                raise AxisdotTypeError(f"{quoted}: an explicit path is a list of tuples of operand positions, "
                                       f"as opt_einsum.contract_path returns; got the step {step!r}")
            path.append(tuple(step))
        return tuple(path)
    raise AxisdotTypeError(f"{quoted}: optimize must be a strategy name, a path, a PathOptimizer or False, "
                           f"got {type(optimize).__name__}")


def memory_arg(memory_limit: Any, sizes: Sequence[int], quoted: str) -> Optional[int]:
    """opt_einsum's ``memory_limit``: None (or -1) for none, an int >= 1, or
    ``"max_input"`` for the largest input (or output) size."""
    if memory_limit is None:
        return None
    if memory_limit == "max_input":
        return max(sizes, default=1)
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, (int, float)):
        raise AxisdotTypeError(f"{quoted}: memory_limit must be None, an int or 'max_input', got "
                               f"{type(memory_limit).__name__} {memory_limit!r}")
    if memory_limit == -1:
        return None
    if memory_limit < 1:
        raise ArgumentError(f"{quoted}: memory_limit must be >= 1 (or -1 for none), got {memory_limit!r}")
    return int(memory_limit)


def _size(term: str, sizes: dict[str, int]) -> int:
    return math.prod(sizes[c] for c in term)


def _left_to_right(n: int) -> Path:
    return tuple([(0, 1)] + [(0, n - 1 - k) for k in range(1, n - 1)]) if n > 1 else ((0,),)


def _check_path(path: Path, n: int, quoted: str) -> Path:
    count = n
    for k, step in enumerate(path):
        if not step or len(set(step)) != len(step) or any(not 0 <= i < count for i in step):
            raise ArgumentError(
                f"{quoted}: step {k} {step!r} of the path is not valid: it must name distinct positions "
                f"0 to {count - 1} of the {count} operands left at that step"
            )
        count -= len(step) - 1
    if count != 1:
        raise ArgumentError(f"{quoted}: the path leaves {count} operands; it must contract all {n} into one")
    return path


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """Python's global random state put back afterwards: opt_einsum's random-greedy
    trials call ``random.seed(r)`` per trial, which would reset the user's."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


class Chosen(NamedTuple):
    """A path, and who chose it (for ``explain``: "opt_einsum", "opt_einsum's 'dp'",
    "axisdot's one-time search ...", "the path given", ...)."""

    path: Path
    origin: str


#: ``explain``'s word for a path the default's one-time search found (:func:`search_harder`).
SEARCHED = "axisdot's one-time search (opt_einsum's greedy and random-greedy trials, subtrees reconfigured)"


def choose_path(inputs: Sequence[str], output: str, sizes: dict[str, int], optimize: Hashable,
                memory_limit: Any, quoted: str, search: bool = True) -> Chosen:
    """The path for these checked subscripts and sizes (``optimize`` from :func:`optimize_key`),
    every step pairwise: a step of more operands (opt_einsum leaves one under
    ``memory_limit``, an explicit path may ask for one) gets its own path
    (:func:`pairwise_path`). ``search=False`` leaves out the default's one-time search."""
    n = len(inputs)
    if isinstance(optimize, tuple):
        return _pairwise(inputs, output, sizes, _check_path(optimize, n, quoted), "the path given")
    limit = memory_arg(memory_limit, [_size(t, sizes) for t in (*inputs, output)], quoted)
    if n <= 2:
        return Chosen((tuple(range(n)),), "opt_einsum")
    if optimize is False:
        return Chosen(_left_to_right(n), "left to right (optimize=False)")
    find = optimize if isinstance(optimize, _paths.PathOptimizer) else _paths.get_path_fn(str(optimize))
    with _random_state_kept():  # opt_einsum's random-greedy strategies ("auto-hq", ...) seed it
        found = tuple(tuple(step) for step in find([frozenset(t) for t in inputs], frozenset(output), sizes, limit))
    if find is optimize:
        _refuse_slicing(optimize, quoted)
        origin = type(optimize).__name__
    else:
        origin = "opt_einsum" if optimize == "auto" else f"opt_einsum's {optimize!r}"
    if limit is not None:
        origin += f" under memory_limit={limit}"
    if search and optimize == "auto" and limit is None and n >= SEARCH_OPERANDS:
        searched = search_harder(inputs, output, sizes, found)
        found, origin = searched, (origin if searched is found else SEARCHED)
    return _pairwise(inputs, output, sizes, found, origin)


#: Under torch.compile with symbolic sizes a path is chosen for the sizes' hints, then
#: guarded against the paths chosen with each symbolic size this many times larger, this
#: many times smaller, or 2 (the least a symbolic size takes: torch.compile specializes 0
#: and 1) (:func:`rival_paths`): another size recompiles only where one of those is cheaper.
PROBE = 16
#: At most this many symbolic sizes are probed, and this many rivals kept.
PROBED_SIZES = 16
RIVALS = 8


def rival_paths(inputs: Sequence[str], output: str, sizes: dict[str, int], chosen: Path, optimize: Hashable,
                memory_limit: Any, quoted: str, varied: Sequence[Sequence[str]]) -> tuple[Path, ...]:
    """The other paths ``optimize`` chooses when the letters of one group of ``varied``
    (the letters of one symbolic size) are :data:`PROBE` times larger or smaller than in
    ``sizes``, or 2, keeping those that cost at least as much as ``chosen`` at ``sizes``
    (so that ``cost(chosen) <= cost(rival)`` holds there). None for an explicit path, left to
    right, or a ``PathOptimizer`` (a search of its own, not run again per probe)."""
    if len(inputs) <= 2 or isinstance(optimize, (tuple, _paths.PathOptimizer)) or optimize is False:
        return ()
    base = path_cost(inputs, output, sizes, chosen)[1]
    rivals: list[Path] = []
    for group in list(varied)[:PROBED_SIZES]:
        for scale in (PROBE, 1 / PROBE, 0):
            probe = dict(sizes)
            for c in group:
                probe[c] = max(2, round(sizes[c] * scale))
            if probe == sizes:
                continue
            path = choose_path(inputs, output, probe, optimize, memory_limit, quoted, search=False).path
            if path != chosen and path not in rivals and path_cost(inputs, output, sizes, path)[1] >= base:
                rivals.append(path)
                if len(rivals) == RIVALS:
                    return tuple(rivals)
    return tuple(rivals)


def _pairwise(inputs: Sequence[str], output: str, sizes: dict[str, int], path: Path, origin: str) -> Chosen:
    pairwise = pairwise_path(inputs, output, sizes, path)
    return Chosen(pairwise, origin if pairwise == path else f"{origin}, its steps of several operands ordered pairwise")


#: The default ``"auto"`` searches harder (once: plans are cached) on networks of at least
#: this many operands whose opt_einsum path costs more than :data:`SEARCH_FLOPS`
#: (below, opt_einsum's own path is the one torch.einsum takes too).
SEARCH_OPERANDS = 8
SEARCH_FLOPS = 10**7
#: The search's time: at most one second per :data:`SEARCH_RATE` FLOPs of the default
#: path (about ten calls' worth at 1 GFLOP/s), and never more than :data:`SEARCH_SECONDS`.
SEARCH_RATE = 10**8
SEARCH_SECONDS = 9.0


def search_trials(flops: int) -> int:
    """Random-greedy trials (each reconfigured) beyond the default path's own
    reconfiguration, for a network whose default path costs ``flops``: none up to 1e8,
    8 up to 1e9, else 16 (on the networks of `benchmarks/RESULTS.md`, 16 trials came
    within 1.12x of cotengra's 10-second ``HyperOptimizer``; the default path alone, 5.4x)."""
    return 0 if flops < 10**8 else 8 if flops < 10**9 else 16


def search_harder(inputs: Sequence[str], output: str, sizes: dict[str, int], path: Path) -> Path:
    """``path``, or a cheaper one from :func:`axisdot.einsum_search.search` when ``path``
    costs more than :data:`SEARCH_FLOPS`: the same network gets the same path, unless
    the time bound cut the search short (a slow machine gets a worse path, never a late one)."""
    from .einsum_search import search

    flops = path_cost(inputs, output, sizes, path)[1]
    if flops <= SEARCH_FLOPS:
        return path
    found = search(inputs, output, sizes, trials=search_trials(flops),
                   seconds=min(SEARCH_SECONDS, flops / SEARCH_RATE))
    return found if path_cost(inputs, output, sizes, found)[1] < flops else path


def _refuse_slicing(optimizer: Any, quoted: str) -> None:
    """Refuse a path its optimizer meant to be run sliced (cotengra's ``HyperOptimizer``
    with ``slicing_opts``: its ``tree`` holds the sliced letters), which axisdot would run
    unsliced, holding the very tensors slicing avoids."""
    tree = getattr(optimizer, "tree", None)
    sliced = getattr(tree, "sliced_inds", None)
    if sliced:
        raise ArgumentError(
            f"{quoted}: optimize={type(optimizer).__name__} chose to slice the contraction over "
            f"{', '.join(map(repr, sliced))} ({tree.nslices} slices); axisdot runs a path unsliced, so its "
            f"largest intermediate would be the unsliced one. Drop slicing_opts / slicing_reconf_opts, or "
            f"contract with cotengra itself (tree.contract(arrays))"
        )


def path_cost(inputs: Sequence[str], output: str, sizes: dict[str, int], path: Path) -> tuple[int, int]:
    """``(largest intermediate, FLOPs)`` of ``path``: the largest step result (the final
    output included) and opt_einsum's FLOP count."""
    steps = contraction_steps(inputs, output, path)
    largest = max((_size(s.equation.split("->")[1], sizes) for s in steps), default=1)
    return largest, sum(step_cost(s.equation, sizes) for s in steps)


#: Operands up to which a multi-operand step's own order is searched exactly (opt_einsum's
#: dynamic programming minimizing the largest intermediate); beyond it, random-greedy trials.
EXACT_SUBPATH = 8


def _subpath(terms: Sequence[str], result: str, sizes: dict[str, int]) -> Path:
    """A pairwise order for one step's operands: of opt_einsum's greedy path, random-greedy
    trials minimizing size, and (for a few operands) dynamic programming minimizing size,
    the one whose largest intermediate is smallest, then the cheapest. No memory limit:
    the step must contract them all anyway. Deterministic: letters are numbered
    (:func:`axisdot.einsum_search.numbered`) and trial r is seeded with r; opt_einsum
    seeds the global random module for that, so its state is put back."""
    from opt_einsum.path_random import RandomGreedy

    from .einsum_search import numbered

    sets, out, numbered_sizes = numbered(terms, result, sizes)
    with _random_state_kept():
        found = [_paths.greedy(sets, out, numbered_sizes),
                 RandomGreedy(max_repeats=16, minimize="size")(sets, out, numbered_sizes)]
    if len(terms) <= EXACT_SUBPATH:
        found.append(_paths.DynamicProgramming(minimize="size", search_outer=True)(sets, out, numbered_sizes))
    candidates = [tuple(tuple(s) for s in p) for p in found]
    return min(candidates, key=lambda p: path_cost(terms, result, sizes, p))


def pairwise_path(inputs: Sequence[str], output: str, sizes: dict[str, int], path: Path) -> Path:
    """``path`` with each step of more than two operands replaced by its own pairwise
    order (:func:`_subpath`); the same path when every step is pairwise already."""
    if all(len(step) <= 2 for step in path):
        return path
    terms = dict(enumerate(inputs))  # the operands left, by a name that never changes
    work, pairwise, names = list(terms), [], itertools.count(len(inputs))

    def contract(members: Sequence[int]) -> int:
        pairwise.append(tuple(work.index(m) for m in members))
        for m in members:
            work.remove(m)
        joined = "".join(terms.pop(m) for m in members)
        name = next(names)
        terms[name] = kept_letters(joined, set("".join(terms.values())) | set(output))
        work.append(name)
        return name

    for step in path:
        members = [work[i] for i in step]
        if len(members) <= 2:
            contract(members)
            continue
        picked = [terms[m] for m in members]
        rest = "".join(t for m, t in terms.items() if m not in members)
        left = list(members)
        for pair in _subpath(picked, kept_letters("".join(picked), set(rest) | set(output)), sizes):
            chosen = [left[i] for i in pair]
            for m in chosen:
                left.remove(m)
            left.append(contract(chosen))
    return tuple(pairwise)


def kept_letters(joined: str, needed: Container[str]) -> str:
    """The letters of ``joined`` (a step's operand terms, concatenated) that are still
    ``needed``, each once, in the order they first appear: the index order of an
    intermediate (opt_einsum's tensordot order)."""
    return "".join(sorted({c for c in joined if c in needed}, key=joined.find))


def contraction_steps(inputs: Sequence[str], output: str, path: Path) -> tuple[Step, ...]:
    """The equation of each step; intermediates keep the letters still needed, in the
    order they first appear in the step's operands (opt_einsum's tensordot order)."""
    terms = list(inputs)
    steps = []
    for k, inds in enumerate(path):
        order = tuple(sorted(inds, reverse=True))
        picked = [terms.pop(i) for i in order]
        if k == len(path) - 1:
            result = output
        else:
            result = kept_letters("".join(picked), set("".join(terms)) | set(output))
        terms.append(result)
        steps.append(Step(order, ",".join(picked) + "->" + result))
    return tuple(steps)


def step_cost(equation: str, sizes: dict[str, int]) -> int:
    """opt_einsum's FLOP count of one step: every combination of its indices costs one
    operation per extra operand, plus one for the addition when something is summed."""
    lhs, out = equation.split("->")
    terms = lhs.split(",")
    used = set(lhs.replace(",", ""))
    summed = bool(used - set(out))
    return _size("".join(used), sizes) * (max(1, len(terms) - 1) + (1 if summed else 0))
