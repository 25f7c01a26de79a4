"""Default paths for large networks (issue 21): where opt_einsum's default path is dear,
``"auto"`` searches once (plans are cached) with opt_einsum's random-greedy trials; path
quality is asserted as FLOPs from ``opt_einsum.contract_path`` (deterministic), never as
time. A ``PathOptimizer`` passed as ``optimize=`` searches once per equation and shapes."""
from __future__ import annotations

import opt_einsum
import pytest
import torch
from opt_einsum.path_random import RandomGreedy

import axisdot
import axisdot.einsum_path
from axisdot.einsum_path import SEARCH_FLOPS, path_cost, search_repeats

from test_einsum_networks import lattice, regular_graph


@pytest.fixture(autouse=True)
def every_trial_runs(monkeypatch):
    """The search's time bound (a safety net on a slow machine) lifted, and no path kept
    from another test: the number of trials, so the path, must not depend on the load."""
    monkeypatch.setattr(axisdot.einsum_path, "SEARCH_SECONDS", 10**6)
    axisdot.cache_clear()
    yield
    axisdot.cache_clear()


def _meta(shapes):
    return [torch.empty(s, device="meta") for s in shapes]


def _cost(equation, shapes, path) -> int:
    """opt_einsum's own FLOP count of ``path``."""
    return int(opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=list(path))[1].opt_cost)


def _axisdot_path(equation, shapes):
    return [s.operands for s in axisdot.explain(equation, *_meta(shapes)).path]


DEAR = {
    "regular-3-of-50-bond-4": regular_graph(50, 3, 4, seed=2),
    "regular-3-of-50-bond-6": regular_graph(50, 3, 6, seed=5),
    "regular-4-of-30-bond-3": regular_graph(30, 4, 3, seed=8),
    "lattice-8x8-bond-4": lattice(8, 8, 4),
}


@pytest.mark.parametrize("name", list(DEAR))
def test_a_dear_network_gets_the_best_of_opt_einsums_random_greedy_trials(name):
    equation, shapes = DEAR[name]
    inputs = equation.split("->")[0].split(",")
    sizes = {c: n for t, s in zip(inputs, shapes) for c, n in zip(t, s)}
    greedy_path, greedy = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="auto")
    flops = path_cost(inputs, "", sizes, tuple(map(tuple, greedy_path)))[1]
    assert flops > SEARCH_FLOPS  # a network the default searches harder on
    reference = opt_einsum.contract_path(equation, *shapes, shapes=True,
                                         optimize=RandomGreedy(max_repeats=search_repeats(flops)))[1]
    got = _cost(equation, shapes, _axisdot_path(equation, shapes))
    # as good as opt_einsum's own trials (the same number): equal when run alone, and
    # within 5 % where other tests ran first (seen in the full suite: 0.99x on the 8x8
    # lattice; opt_einsum seeds the global random module per trial)
    assert got <= 1.05 * int(reference.opt_cost)
    assert got <= int(greedy.opt_cost)


def test_the_searched_paths_are_much_cheaper_than_greedy_on_the_issues_graph():
    """issue 21's 50-tensor 3-regular graph with bond 6: greedy needs ~2e14 FLOPs."""
    equation, shapes = DEAR["regular-3-of-50-bond-6"]
    greedy = int(opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="greedy")[1].opt_cost)
    assert _cost(equation, shapes, _axisdot_path(equation, shapes)) * 100 < greedy


CHEAP = {
    "regular-3-of-20-bond-2": regular_graph(20, 3, 2, seed=1),
    "lattice-5x5-bond-2": lattice(5, 5, 2),
    "chain-of-3": ("ab,bc,cd->ad", [(30, 40), (40, 50), (50, 60)]),
}


@pytest.mark.parametrize("name", list(CHEAP))
def test_a_cheap_network_keeps_opt_einsums_default_path(name):
    equation, shapes = CHEAP[name]
    default = int(opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="auto")[1].opt_cost)
    assert _cost(equation, shapes, _axisdot_path(equation, shapes)) == default


class CountingOptimizer(opt_einsum.paths.PathOptimizer):
    """opt_einsum's greedy path, counting its searches."""

    def __init__(self) -> None:
        self.searches = 0

    def __call__(self, inputs, output, size_dict, memory_limit=None):
        self.searches += 1
        return opt_einsum.paths.greedy(inputs, output, size_dict, memory_limit)


def test_a_path_optimizer_searches_once_per_equation_and_shapes():
    optimizer = CountingOptimizer()
    a, b, c = torch.rand(3, 4), torch.rand(4, 5), torch.rand(5, 6)
    for _ in range(3):
        torch.testing.assert_close(axisdot.einsum("ij,jk,kl->il", a, b, c, optimize=optimizer), a @ b @ c)
    assert optimizer.searches == 1
    axisdot.einsum("ij,jk,kl->il", torch.rand(2, 4), b, c, optimize=optimizer)
    assert optimizer.searches == 2
