"""Default paths for large networks (issue 21): where opt_einsum's default path is dear,
``"auto"`` searches once (plans are cached): seeded random-greedy trials, each improved
by subtree reconfiguration (``axisdot/einsum_search.py``). Path quality is asserted as
FLOPs from ``opt_einsum.contract_path`` (deterministic), never as time, against
opt_einsum's own paths and cotengra's. A ``PathOptimizer`` passed as ``optimize=``
searches once per equation and shapes."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import opt_einsum
import pytest
import torch

import axisdot
import axisdot.einsum_path
import axisdot.einsum_search
from axisdot.einsum_path import SEARCH_FLOPS, path_cost, rival_paths

from test_einsum_networks import circuit, lattice, opt_einsum_cost, regular_graph


@pytest.fixture(autouse=True)
def every_trial_runs(monkeypatch):
    """The search's time bound (a safety net on a slow machine) lifted, and no path kept
    from another test: the number of trials, so the path, must not depend on the load."""
    monkeypatch.setattr(axisdot.einsum_path, "SEARCH_SECONDS", 10**6)
    monkeypatch.setattr(axisdot.einsum_path, "SEARCH_RATE", 1)
    axisdot.cache_clear()
    yield
    axisdot.cache_clear()


def _meta(shapes):
    return [torch.empty(s, device="meta") for s in shapes]


def _axisdot_path(equation, shapes):
    return [s.operands for s in axisdot.explain(equation, *_meta(shapes)).path]


#: Networks, and the FLOPs (as opt_einsum counts them) of the path cotengra 0.8.3's
#: ``HyperOptimizer(max_repeats=128, max_time=10)`` found for each on this project's
#: machine (no kahypar or optuna; `python benchmarks/einsum_networks.py`, 2026-12-07; the
#: least of three runs, as cotengra's own runs differ by up to 30x).
#: An independent reference, recorded because cotengra is an optional extra and takes
#: 10 s a network; ``test_the_default_path_against_cotengra_live`` reruns it where installed.
DEAR = {
    "regular-3-of-50-bond-6": (regular_graph(50, 3, 6, seed=5), 617_787_648),
    "regular-3-of-80-bond-4": (regular_graph(80, 3, 4, seed=12), 11_655_727_232),
    "regular-4-of-30-bond-3": (regular_graph(30, 4, 3, seed=8), 19_000_818),
    "regular-3-of-200-bond-2": (regular_graph(200, 3, 2, seed=3), 386_497_900_928),
    "lattice-6x6-bond-4": (lattice(6, 6, 4), 2_337_280),
    "lattice-8x8-bond-4": (lattice(8, 8, 4), 98_101_248),
    "circuit-204": (circuit(20, 164), 764_765_248),
    "circuit-297": (circuit(20, 257), 1_540_640_512),
}
SLOW = {"regular-3-of-200-bond-2", "circuit-204", "circuit-297"}  # 15-25 s each


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else [])
                                  for n in DEAR])
def test_the_default_path_is_within_2x_of_cotengras(name):
    (equation, shapes), cotengra = DEAR[name]
    default = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="auto")[0]
    greedy = opt_einsum_cost(equation, shapes, default)
    assert greedy > SEARCH_FLOPS  # a network the default searches harder on
    got = opt_einsum_cost(equation, shapes, _axisdot_path(equation, shapes))
    assert got <= 2 * cotengra
    assert got <= greedy


@pytest.mark.slow
@pytest.mark.parametrize("name", ["regular-3-of-50-bond-6", "regular-4-of-30-bond-3", "lattice-8x8-bond-4"])
def test_the_default_path_against_cotengra_live(name):
    cotengra = pytest.importorskip("cotengra", reason="cotengra is an optional extra (pip install axisdot[cotengra])")
    (equation, shapes), _ = DEAR[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kahypar is missing
        optimizer = cotengra.HyperOptimizer(max_repeats=32, max_time=5, progbar=False)
        reference = opt_einsum_cost(equation, shapes, opt_einsum.contract_path(equation, *shapes, shapes=True,
                                                                     optimize=optimizer)[0])
    assert opt_einsum_cost(equation, shapes, _axisdot_path(equation, shapes)) <= 2 * reference


def test_the_searched_paths_are_much_cheaper_than_greedy_on_the_issues_graph():
    """issue 21's 50-tensor 3-regular graph with bond 6: greedy needs ~2e14 FLOPs."""
    (equation, shapes), _ = DEAR["regular-3-of-50-bond-6"]
    greedy = int(opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="greedy")[1].opt_cost)
    assert opt_einsum_cost(equation, shapes, _axisdot_path(equation, shapes)) * 10**5 < greedy


def test_the_default_path_is_at_least_as_cheap_as_opt_einsums_auto_hq():
    (equation, shapes), _ = DEAR["regular-4-of-30-bond-3"]
    hq = int(opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="auto-hq")[1].opt_cost)
    assert opt_einsum_cost(equation, shapes, _axisdot_path(equation, shapes)) <= hq


def test_the_search_runs_once_per_equation_and_shapes(monkeypatch):
    calls = []
    real = axisdot.einsum_search.search
    monkeypatch.setattr(axisdot.einsum_search, "search", lambda *a, **k: calls.append(1) or real(*a, **k))
    (equation, shapes), _ = DEAR["regular-4-of-30-bond-3"]
    for _ in range(3):
        axisdot.einsum(equation, *_meta(shapes))
    assert len(calls) == 1


_IN_A_FRESH_PROCESS = """
import sys, torch, axisdot, axisdot.einsum_path as p
sys.path.insert(0, "tests")
from test_einsum_networks import regular_graph
p.SEARCH_SECONDS, p.SEARCH_RATE = 10**6, 1
eq, shapes = regular_graph(30, 4, 3, seed=8)
print([s.operands for s in axisdot.explain(eq, *[torch.empty(s, device="meta") for s in shapes]).path])
"""


def test_the_same_network_gets_the_same_path_in_every_process():
    """opt_einsum's paths depend on the order Python walks sets of letters, which
    ``PYTHONHASHSEED`` changes; the search numbers letters and seeds every draw."""
    paths = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        paths.add(subprocess.run([sys.executable, "-c", _IN_A_FRESH_PROCESS], env=env, capture_output=True,
                                 text=True, check=True, cwd=os.path.dirname(os.path.dirname(__file__))).stdout)
    assert len(paths) == 1


def test_a_searched_path_gives_the_same_result(monkeypatch):
    """A network small enough to run, searched (the threshold lowered): float64 against
    opt_einsum.contract and torch.einsum, with hyper letters and output letters."""
    from opt_einsum.testing import rand_equation

    monkeypatch.setattr(axisdot.einsum_path, "SEARCH_FLOPS", 0)
    equation, shapes = rand_equation(12, 3, n_out=2, d_min=1, d_max=3, seed=4)
    operands = [torch.randn(s, dtype=torch.float64) for s in shapes]
    inputs, output = equation.split("->")
    sizes = {c: n for t, s in zip(inputs.split(","), shapes) for c, n in zip(t, s)}
    default = tuple(map(tuple, opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="auto")[0]))
    searched = _axisdot_path(equation, shapes)
    assert path_cost(inputs.split(","), output, sizes, tuple(searched))[1] <= path_cost(
        inputs.split(","), output, sizes, default)[1]
    got = axisdot.einsum(equation, *operands)
    torch.testing.assert_close(got, torch.einsum(equation, *operands))
    torch.testing.assert_close(got, torch.as_tensor(opt_einsum.contract(equation, *operands)))


CHEAP = {
    "regular-3-of-20-bond-2": regular_graph(20, 3, 2, seed=1),
    "lattice-5x5-bond-2": lattice(5, 5, 2),
    "chain-of-3": ("ab,bc,cd->ad", [(30, 40), (40, 50), (50, 60)]),
}


@pytest.mark.parametrize("name", list(CHEAP))
def test_a_cheap_network_keeps_opt_einsums_default_path(name):
    equation, shapes = CHEAP[name]
    default = int(opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="auto")[1].opt_cost)
    assert opt_einsum_cost(equation, shapes, _axisdot_path(equation, shapes)) == default


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


def test_explain_says_who_chose_the_path():
    (equation, shapes), _ = DEAR["regular-4-of-30-bond-3"]
    meta = _meta(shapes)
    searched = axisdot.explain(equation, *meta)
    assert searched.path_origin == axisdot.einsum_path.SEARCHED
    assert f"path      (chosen by {axisdot.einsum_path.SEARCHED})" in str(searched)
    assert axisdot.explain(equation, *meta, optimize="greedy").path_origin == "opt_einsum's 'greedy'"
    assert axisdot.explain(equation, *meta, optimize=False).path_origin == "left to right (optimize=False)"
    given = [list(step) for step in opt_einsum.contract_path(equation, *shapes, shapes=True)[0]]
    assert axisdot.explain(equation, *meta, optimize=given).path_origin == "the path given"
    assert axisdot.explain(equation, *meta, memory_limit=64).path_origin == \
        "opt_einsum under memory_limit=64, its steps of several operands ordered pairwise"
    cheap_equation, cheap_shapes = CHEAP["lattice-5x5-bond-2"]
    assert axisdot.explain(cheap_equation, *_meta(cheap_shapes)).path_origin == "opt_einsum"
    assert axisdot.explain("ab,bc->ac", (2, 3), (3, 4)).path_origin == "opt_einsum"


# -- rivals: the paths a compiled plan is guarded against (symbolic sizes) -------------------

CHAIN = ["ab", "bc", "cd", "de"]


def _opt_einsum_path(inputs, output, sizes):
    shapes = [tuple(sizes[c] for c in term) for term in inputs]
    path, _ = opt_einsum.contract_path(",".join(inputs) + "->" + output, *shapes, shapes=True)
    return tuple(tuple(step) for step in path)


def test_rival_paths_are_what_other_sizes_choose_and_cost_no_less_at_these():
    sizes = dict(a=64, b=64, c=64, d=64, e=16)  # narrow at the right end
    chosen = axisdot.einsum_path.choose_path(CHAIN, "ae", sizes, "auto", None, "q").path
    assert chosen == _opt_einsum_path(CHAIN, "ae", sizes)
    rivals = rival_paths(CHAIN, "ae", sizes, chosen, "auto", None, "q", [["a"], ["b", "c", "d"], ["e"]])
    narrow_left = _opt_einsum_path(CHAIN, "ae", dict(sizes, a=4))  # a 16 times smaller: narrower than e
    assert narrow_left != chosen and narrow_left in rivals
    assert len(set(rivals)) == len(rivals) and chosen not in rivals
    for rival in rivals:
        here = [tuple(sizes[c] for c in term) for term in CHAIN]
        assert opt_einsum_cost("ab,bc,cd,de->ae", here, rival) >= opt_einsum_cost("ab,bc,cd,de->ae", here, chosen)


@pytest.mark.parametrize("optimize", [((0, 1), (0, 1), (0, 1)), False, opt_einsum.paths.DynamicProgramming()])
def test_a_path_given_or_searched_by_its_own_optimizer_has_no_rivals(optimize):
    sizes = dict(a=64, b=64, c=64, d=64, e=2)
    assert rival_paths(CHAIN, "ae", sizes, ((0, 1), (0, 1), (0, 1)), optimize, None, "q", [["a"], ["e"]]) == ()


def test_sizes_that_choose_the_same_path_give_no_rival():
    sizes = dict(a=64, b=64, c=64, d=64, e=64)  # a chain of squares: every size scaled alike ties
    chosen = axisdot.einsum_path.choose_path(CHAIN, "ae", sizes, "auto", None, "q").path
    assert rival_paths(CHAIN, "ae", sizes, chosen, "auto", None, "q", [list("abcde")]) == ()
