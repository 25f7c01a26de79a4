"""Large einsum networks (random regular graphs, lattices) under ``memory_limit=``: every
step pairwise, and ``explain``'s largest intermediate is the largest tensor the run
creates, counted from what the aten ops return on meta tensors (no memory, no FLOPs)."""
from __future__ import annotations

import math
import random

import opt_einsum
import pytest
import torch
from opt_einsum.testing import rand_equation
from torch.utils._python_dispatch import TorchDispatchMode

import axisdot
from axisdot.einsum_path import pairwise_path, path_cost


class LargestCreated(TorchDispatchMode):
    """The most elements of any tensor an aten op creates inside it (views, which
    create no storage, are skipped)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    self.largest = max(self.largest, t.numel())
        return out


def _letters(n: int) -> list[str]:
    return [opt_einsum.get_symbol(i) for i in range(n)]


def opt_einsum_cost(equation: str, shapes, path) -> int:
    """opt_einsum's own FLOP count of ``path`` (``contract_path``'s ``opt_cost``)."""
    return int(opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=[tuple(s) for s in path])[1].opt_cost)


def lattice(rows: int, cols: int, bond: int) -> tuple[str, list[tuple[int, ...]]]:
    """A closed rows x cols square lattice (a scalar): one tensor per site, one letter per bond."""
    edges: dict[tuple[int, int], list[int]] = {}
    sites = [(r, c) for r in range(rows) for c in range(cols)]
    bonds = [(s, (s[0], s[1] + 1)) for s in sites if s[1] + 1 < cols] + \
            [(s, (s[0] + 1, s[1])) for s in sites if s[0] + 1 < rows]
    names = _letters(len(bonds))
    for k, (a, b) in enumerate(bonds):
        edges.setdefault(a, []).append(k)
        edges.setdefault(b, []).append(k)
    terms = ["".join(names[k] for k in edges[s]) for s in sites]
    return ",".join(terms) + "->", [(bond,) * len(t) for t in terms]


def regular_graph(n: int, degree: int, bond: int, seed: int) -> tuple[str, list[tuple[int, ...]]]:
    """A closed random ``degree``-regular graph of ``n`` tensors (configuration model,
    redrawn until simple): one tensor per node, one letter per edge."""
    rng = random.Random(seed)
    while True:
        stubs = [v for v in range(n) for _ in range(degree)]
        rng.shuffle(stubs)
        pairs = list(zip(stubs[::2], stubs[1::2]))
        if all(a != b for a, b in pairs) and len({frozenset(p) for p in pairs}) == len(pairs):
            break
    names = _letters(len(pairs))
    terms = ["".join(names[k] for k, p in enumerate(pairs) if v in p) for v in range(n)]
    return ",".join(terms) + "->", [(bond,) * len(t) for t in terms]


def circuit(qubits: int, gates: int, rows: int = 4) -> tuple[str, list[tuple[int, ...]]]:
    """The amplitude <0...0|C|0...0> of a random-circuit-like network on a ``rows`` x
    ``qubits / rows`` grid of qubits: ``gates`` two-qubit gates (2, 2, 2, 2), one-qubit
    gates absorbed into them, placed in the four coupling layers of Google's random
    circuits (horizontal even/odd, vertical even/odd) in the order A, C, B, D; a vector
    (2,) opens and closes each qubit's wire. 20 qubits with 164 and 257 gates give
    issue 21's circuits of 204 and 297 tensors."""
    cols = qubits // rows
    layers = []
    for down, right in ((0, 1), (1, 0)):
        for parity in (0, 1):
            layers.append([(r * cols + c, (r + down) * cols + c + right)
                           for r in range(rows - down) for c in range(cols - right)
                           if (c if right else r) % 2 == parity])
    wire = list(range(qubits))  # the bond each qubit's wire is on now
    bonds = qubits
    terms = [[w] for w in wire]
    placed, cycle = 0, 0
    while placed < gates:
        for a, b in layers[(0, 2, 1, 3)[cycle % 4]][:gates - placed]:
            terms.append([wire[a], wire[b], bonds, bonds + 1])
            wire[a], wire[b], bonds, placed = bonds, bonds + 1, bonds + 2, placed + 1
        cycle += 1
    terms += [[w] for w in wire]
    names = _letters(bonds)
    return ",".join("".join(names[k] for k in t) for t in terms) + "->", [(2,) * len(t) for t in terms]


NETWORKS = {
    "regular-3-of-20": regular_graph(20, 3, 2, seed=1),
    "regular-3-of-50": regular_graph(50, 3, 2, seed=2),
    "regular-4-of-16": regular_graph(16, 4, 2, seed=3),
    "lattice-4x4": lattice(4, 4, 3),
    "lattice-6x6": lattice(6, 6, 2),
    "rand-equation-12": rand_equation(12, 3, n_out=2, d_min=2, d_max=4, seed=7),
    "rand-equation-24": rand_equation(24, 3, n_out=1, d_min=2, d_max=3, seed=11),
}
LIMITS = [8, 64, 256]


def _meta(shapes):
    return [torch.empty(s, device="meta") for s in shapes]


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("name", list(NETWORKS))
def test_memory_limit_creates_nothing_larger_than_explain_reports(name, limit):
    eq, shapes = NETWORKS[name]
    report = axisdot.explain(eq, *_meta(shapes), memory_limit=limit)
    assert all(len(step.operands) <= 2 for step in report.path)
    with LargestCreated() as seen:
        axisdot.einsum(eq, *_meta(shapes), memory_limit=limit)
    largest_input = max(math.prod(s) for s in shapes)
    # every tensor the run creates is at most an input's size (a copy of one) or the reported largest,
    # and the reported largest is created
    assert seen.largest <= max(report.largest_intermediate, largest_input)
    assert report.largest_intermediate <= max(seen.largest, 1)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_the_default_path_creates_what_explain_reports(name):
    eq, shapes = NETWORKS[name]
    report = axisdot.explain(eq, *_meta(shapes))
    with LargestCreated() as seen:
        axisdot.einsum(eq, *_meta(shapes))
    assert seen.largest <= max(report.largest_intermediate, max(math.prod(s) for s in shapes))
    assert report.largest_intermediate <= max(seen.largest, 1)


def _left_to_right_largest(inputs, sizes, path):
    """The largest intermediate of ``path`` with each step of k > 2 operands run as
    axisdot ran it before issue 21: pairwise, left to right, keeping what is still needed."""
    terms, largest = list(inputs), 1
    for step in path:
        picked = [terms.pop(i) for i in sorted(step, reverse=True)]
        acc = set(picked[0])
        for k in range(1, len(picked)):
            needed = set("".join(terms + picked[k + 1:]))
            acc = (acc | set(picked[k])) & needed
            largest = max(largest, math.prod(sizes[c] for c in acc))
        terms.append("".join(sorted(acc)))
    return largest


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("name", list(NETWORKS))
def test_a_step_left_whole_gets_an_order_no_larger_than_left_to_right(name, limit):
    eq, shapes = NETWORKS[name]
    inputs = eq.split("->")[0].split(",")
    sizes = {c: n for t, s in zip(inputs, shapes) for c, n in zip(t, s)}
    path = tuple(tuple(p) for p in opt_einsum.contract_path(eq, *shapes, shapes=True, memory_limit=limit)[0])
    chosen = pairwise_path(inputs, "", sizes, path)
    assert all(len(s) <= 2 for s in chosen)
    assert path_cost(inputs, "", sizes, chosen)[0] <= _left_to_right_largest(inputs, sizes, path)


@pytest.mark.parametrize("name", ["regular-3-of-20", "lattice-4x4", "rand-equation-12"])
def test_memory_limit_results_match_opt_einsum(name):
    eq, shapes = NETWORKS[name]
    gen = torch.Generator().manual_seed(0)
    ops = [torch.rand(s, generator=gen, dtype=torch.float64) for s in shapes]
    expected = opt_einsum.contract(eq, *[t.numpy() for t in ops], optimize="greedy")
    got = axisdot.einsum(eq, *ops, memory_limit=16)
    torch.testing.assert_close(got, torch.as_tensor(expected), rtol=1e-9, atol=0)
