"""The one-time path search for dear networks. Torch-free.

Plans are cached, so the first call of a large einsum may search harder than opt_einsum's
greedy default. :func:`search` takes opt_einsum's greedy path and seeded random-greedy
trials (opt_einsum's greedy under cotengra's ``costmod`` / ``temperature`` score, trial
``r`` drawn with seed ``r``) and improves each trial's tree by *subtree reconfiguration*,
the step cotengra's hyper-optimizer relies on: every subtree of up to
:data:`SUBTREE_LEAVES` leaves, grown breadth first, is re-contracted in its cheapest order
(dynamic programming over subsets of its leaves), dearest subtrees first, until a sweep
gains nothing. The cheapest tree wins.

Measured (`benchmarks/einsum_networks.py`, `benchmarks/RESULTS.md`): on random 3- and
4-regular graphs, lattices and 20-qubit circuit amplitudes of 30-297 tensors, 16 trials
come within 0.39-1.13x of the FLOPs of cotengra's 10-second ``HyperOptimizer`` (the best of
three runs), where opt_einsum's random-greedy trials alone stayed 4.5-38x above it.

Costs are opt_einsum's FLOP count (``opt_einsum.contract_path``'s ``opt_cost``): a
subtree is replaced only by a cheaper one, so a reconfigured tree is never dearer than
the path it started from, as opt_einsum counts it.
"""
from __future__ import annotations

import math
import random
import time
from typing import Any, Callable, Optional, Sequence

from opt_einsum.paths import ssa_greedy_optimize, ssa_to_linear

__all__ = ["Tree", "search", "numbered", "SUBTREE_LEAVES"]

Path = tuple[tuple[int, ...], ...]

#: Leaves of the subtrees re-contracted exactly: 3^8 / 2 splits each (a few ms in Python);
#: 6 finds less, 10 costs ~10x the time for little more on the networks above.
SUBTREE_LEAVES = 8
#: A subtree whose contractions cost less than this share of the whole tree's is left as
#: it is: improving it could not change the total by more.
NEGLIGIBLE = 1e-4


class Tree:
    """A pairwise contraction tree over ``inputs``: leaves ``0..n-1``, each internal node
    a pair of children. Letters and leaf sets are bitsets (Python ints); ``legs[v]`` are
    the letters node ``v``'s tensor keeps (those met outside its leaves, or in the output)."""

    def __init__(self, inputs: Sequence[str], output: str, sizes: dict[str, int], path: Path) -> None:
        letters = sorted(set("".join(inputs)) | set(output))
        bit = {c: 1 << k for k, c in enumerate(letters)}
        self.n = len(inputs)
        self.size = [sizes[c] for c in letters]
        self.output = sum(bit[c] for c in set(output))
        #: for each letter, the bitset of the leaves that hold it
        self.holders = [0] * len(letters)
        for i, t in enumerate(inputs):
            for c in set(t):
                self.holders[bit[c].bit_length() - 1] |= 1 << i
        self.legs: dict[int, int] = {i: sum(bit[c] for c in set(t)) for i, t in enumerate(inputs)}
        self.leaves: dict[int, int] = {i: 1 << i for i in range(self.n)}
        self.children: dict[int, tuple[int, int]] = {}
        self._sizes: dict[int, int] = {}
        self._cheapest: set[frozenset[int]] = set()  # subtrees (by their frontier) made cheapest
        work, fresh = list(range(self.n)), self.n
        for step in path:
            ids = [work[i] for i in step]
            for i in sorted(step, reverse=True):
                work.pop(i)
            node = ids[0]
            for other in ids[1:]:  # a step of several operands, as a chain of pairs
                self._join(fresh, node, other)
                node, fresh = fresh, fresh + 1
            work.append(node)
        self.root = work[0]

    def _join(self, node: int, a: int, b: int) -> None:
        leaves = self.leaves[a] | self.leaves[b]
        kept, both = self.output, self.legs[a] | self.legs[b]
        rest = both
        while rest:  # a letter is kept when a leaf outside holds it, or the output does
            low = rest & -rest
            if self.holders[low.bit_length() - 1] & ~leaves:
                kept |= low
            rest ^= low
        self.children[node] = (a, b)
        self.leaves[node] = leaves
        self.legs[node] = both & kept

    def elements(self, letters: int) -> int:
        """The product of the sizes of a bitset of letters."""
        known = self._sizes.get(letters)
        if known is None:
            known, rest = 1, letters
            while rest:
                low = rest & -rest
                known *= self.size[low.bit_length() - 1]
                rest ^= low
            self._sizes[letters] = known
        return known

    def flops(self, a_legs: int, b_legs: int, kept: int) -> int:
        """opt_einsum's count for one pairwise step: one operation per combination of
        its letters, two when a letter is summed."""
        both = a_legs | b_legs
        return self.elements(both) * (2 if both & ~kept else 1)

    def cost(self, node: int) -> int:
        a, b = self.children[node]
        return self.flops(self.legs[a], self.legs[b], self.legs[node])

    def total(self) -> int:
        return sum(self.cost(v) for v in self.children)

    def path(self) -> Path:
        """The tree as an opt_einsum path, children before parents, deepest first."""
        order, stack = [], [(self.root, False)]
        while stack:
            node, ready = stack.pop()
            if node not in self.children:
                continue
            if ready:
                order.append(node)
                continue
            a, b = self.children[node]
            stack.extend(((node, True), (b, False), (a, False)))
        work, path = list(range(self.n)), []
        for node in order:
            i, j = sorted(work.index(c) for c in self.children[node])
            path.append((i, j))
            del work[j], work[i]
            work.append(node)
        return tuple(path) if path else ((0,),)

    def reconfigure(self, deadline: float = float("inf")) -> int:
        """One sweep: each subtree of up to :data:`SUBTREE_LEAVES` leaves, dearest root
        first, re-contracted in its cheapest order (one already made cheapest is skipped).
        Returns the FLOPs saved."""
        saved, total = 0, self.total()
        for node in sorted(self.children, key=self.cost, reverse=True):
            if time.monotonic() > deadline:
                break
            if node not in self.children:  # rebuilt away by an earlier subtree
                continue
            frontier, inner = self._subtree(node)
            key = frozenset(self.leaves[f] for f in frontier)
            old = sum(self.cost(v) for v in inner)
            if len(inner) < 2 or key in self._cheapest or old < (total - saved) * NEGLIGIBLE:
                continue
            new, split = self._cheapest_order([self.legs[f] for f in frontier], self.legs[node])
            self._cheapest.add(key)
            if new < old:
                saved += old - new
                self._rebuild(node, frontier, inner, split)
        return saved

    def _subtree(self, node: int) -> tuple[list[int], list[int]]:
        """The subtree under ``node`` grown breadth first (a balanced subtree: cotengra's
        ``subtree_search="bfs"``, which found 4-6x cheaper trees here than growing the
        dearest node first) until it has :data:`SUBTREE_LEAVES` leaves: its leaves (the
        frontier) and inner nodes."""
        frontier, inner = [node], []
        while len(frontier) < SUBTREE_LEAVES:
            opened = next((v for v in frontier if v in self.children), None)
            if opened is None:
                break
            frontier.remove(opened)
            inner.append(opened)
            frontier.extend(self.children[opened])
        return frontier, inner

    def _cheapest_order(self, legs: list[int], kept: int) -> tuple[int, list[int]]:
        """Dynamic programming over the subsets of ``legs`` (the frontier's tensors), whose
        whole keeps ``kept``: the least FLOPs, and for each subset its first part. Letters
        are renumbered locally and sizes read from tables of 8-letter chunks (3x faster
        than a cached product over the bits)."""
        m = len(legs)
        full = (1 << m) - 1
        local, rest = [], kept
        for leg in legs:
            rest |= leg
        while rest:
            low = rest & -rest
            local.append(low)
            rest ^= low
        chunks = [local[k:k + 8] for k in range(0, len(local), 8)]
        tables = []
        for chunk in chunks:
            table = [1] * (1 << len(chunk))
            for v in range(1, len(table)):
                low = v & -v
                table[v] = table[v ^ low] * self.size[chunk[low.bit_length() - 1].bit_length() - 1]
            tables.append(table)

        def renumber(letters: int) -> int:
            return sum(1 << j for j, bit in enumerate(local) if letters & bit)

        def elements(mask: int) -> int:
            product = 1
            for table in tables:
                product *= table[mask & 255]
                mask >>= 8
            return product

        legs, kept = [renumber(leg) for leg in legs], renumber(kept)
        held = [0] * (1 << m)
        for s in range(1, full + 1):
            low = s & -s
            held[s] = held[s ^ low] | legs[low.bit_length() - 1]
        keeps = [held[s] & (held[full ^ s] | kept) for s in range(full + 1)]
        cost, split = [0] * (full + 1), [0] * (full + 1)
        for s in range(1, full + 1):
            low = s & -s
            if s == low:
                continue
            best, part, result = -1, 0, keeps[s]
            a = (s - 1) & s
            while a:
                if a & low:  # each split once: the part holding the lowest leaf
                    both = keeps[a] | keeps[s ^ a]
                    c = cost[a] + cost[s ^ a] + elements(both) * (2 if both & ~result else 1)
                    if best < 0 or c < best:
                        best, part = c, a
                a = (a - 1) & s
            cost[s], split[s] = best, part
        return cost[full], split

    def _rebuild(self, node: int, frontier: list[int], inner: list[int], split: list[int]) -> None:
        for v in inner:
            del self.children[v]
        spare = [v for v in inner if v != node]
        full = (1 << len(frontier)) - 1

        def build(s: int) -> int:
            if s & (s - 1) == 0:
                return frontier[s.bit_length() - 1]
            a = build(split[s])
            b = build(s ^ split[s])
            made = node if s == full else spare.pop()
            self._join(made, a, b)
            return made

        build(full)


def _improved(tree: Tree, deadline: float) -> Tree:
    while time.monotonic() < deadline and tree.reconfigure(deadline):
        pass
    return tree


def numbered(inputs: Sequence[str], output: str, sizes: dict[str, int]
             ) -> tuple[list[frozenset[int]], frozenset[int], dict[int, int]]:
    """The subscripts with letters numbered in sorted order, as opt_einsum's path
    functions take them: an int hashes the same in every process where a str does not,
    so the order in which opt_einsum walks its sets, and the path it breaks ties with,
    no longer depends on ``PYTHONHASHSEED``."""
    number = {c: k for k, c in enumerate(sorted(set("".join(inputs)) | set(output)))}
    return ([frozenset(number[c] for c in t) for t in inputs], frozenset(number[c] for c in output),
            {number[c]: n for c, n in sizes.items() if c in number})


def _score(costmod: float, temperature: float, rng: random.Random) -> Callable[..., float]:
    """A greedy trial's score of merging two tensors (lower merges first): the result's
    size against the inputs' (``costmod`` weighs them), on a log scale, with Gumbel noise
    of weight ``temperature``; cotengra's greedy hyper-parameters."""
    def score(size12: int, size1: int, size2: int, *_: Any) -> float:
        plain = size12 / costmod - (size1 + size2) * costmod
        logged = math.copysign(math.log(abs(plain)), plain) if plain else 0.0
        return logged + temperature * math.log(-math.log(rng.random() or 1e-300))
    return score


def _trial(r: int, network: tuple[list[frozenset[int]], frozenset[int], dict[int, int]]) -> Path:
    """Trial 0: opt_einsum's greedy path. Trial ``r``: opt_einsum's greedy under
    :func:`_score` with hyper-parameters drawn with seed ``r``: ``costmod`` in 0.1-4,
    ``temperature`` in 0.001-1 (log-uniform). ``network``: :func:`numbered`'s."""
    if r == 0:
        ssa = ssa_greedy_optimize(*network)
    else:
        rng = random.Random(r)
        score = _score(rng.uniform(0.1, 4.0), 10 ** rng.uniform(-3, 0), rng)
        ssa = ssa_greedy_optimize(*network, None, score)
    return tuple(tuple(step) for step in ssa_to_linear(ssa))


def search(inputs: Sequence[str], output: str, sizes: dict[str, int], *, trials: int, seconds: float) -> Path:
    """The cheapest of opt_einsum's greedy path and ``trials`` seeded random-greedy
    trials, each reconfigured (:meth:`Tree.reconfigure`) until a sweep gains nothing, all
    within ``seconds`` (checked between subtrees, so a slow machine gets a worse path,
    never a late one). Deterministic when the time suffices: letters are numbered
    (:func:`numbered`) and every draw is seeded."""
    deadline = time.monotonic() + seconds
    network = numbered(inputs, output, sizes)
    best: Optional[Tree] = None
    for r in range(trials + 1):
        if r and time.monotonic() >= deadline:
            break
        tree = _improved(Tree(inputs, output, sizes, _trial(r, network)), deadline)
        if best is None or tree.total() < best.total():
            best = tree
    assert best is not None
    return best.path()
