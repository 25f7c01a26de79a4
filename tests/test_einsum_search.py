"""The one-time path search (``axisdot/einsum_search.py``): its FLOP count is
opt_einsum's, a reconfigured tree is a valid path never dearer than before, and a
subtree re-contracted whole is as cheap as opt_einsum's exhaustive ``"optimal"``."""
from __future__ import annotations

import opt_einsum
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opt_einsum.testing import rand_equation

import axisdot.einsum_search
from axisdot.einsum_search import Tree, search

from test_einsum_networks import opt_einsum_cost


def _problem(n: int, seed: int, n_out: int):
    """opt_einsum's random equation generator: repeated letters across terms, hyper
    letters (in three terms or more) and output letters."""
    equation, shapes = rand_equation(n, 3, n_out=n_out, d_min=1, d_max=4, seed=seed)
    inputs, output = equation.split("->")
    inputs = inputs.split(",")
    sizes = {c: d for t, s in zip(inputs, shapes) for c, d in zip(t, s)}
    return equation, shapes, inputs, output, sizes


problems = st.builds(_problem, st.integers(2, 12), st.integers(0, 10**6), st.integers(0, 2))


@given(problems)
def test_the_trees_flop_count_is_opt_einsums(problem):
    equation, shapes, inputs, output, sizes = problem
    path = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="greedy")[0]
    tree = Tree(inputs, output, sizes, tuple(map(tuple, path)))
    assert tree.total() == opt_einsum_cost(equation, shapes, path)
    # and the tree, written back as a path, is the same contraction
    assert opt_einsum_cost(equation, shapes, tree.path()) == tree.total()


@given(problems)
def test_reconfiguring_keeps_a_valid_path_never_dearer(problem):
    equation, shapes, inputs, output, sizes = problem
    path = tuple(map(tuple, opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="greedy")[0]))
    tree = Tree(inputs, output, sizes, path)
    before = tree.total()
    while tree.reconfigure():
        pass
    found = tree.path()
    assert [len(step) for step in found] == [2] * (len(inputs) - 1)
    assert opt_einsum_cost(equation, shapes, found) == tree.total() <= before


@given(st.builds(_problem, st.integers(2, 7), st.integers(0, 10**6), st.integers(0, 2)))
def test_a_whole_small_network_reconfigured_is_as_cheap_as_optimal(problem):
    """One subtree holding every tensor: the dynamic programming over subsets is exact."""
    equation, shapes, inputs, output, sizes = problem
    optimal = int(opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="optimal")[1].opt_cost)
    start = tuple((0, 1) for _ in range(len(inputs) - 1))  # left to right
    tree = Tree(inputs, output, sizes, start)
    tree.reconfigure()
    assert tree.total() == opt_einsum_cost(equation, shapes, tree.path()) == optimal


def test_no_time_leaves_opt_einsums_greedy_path():
    equation, shapes, inputs, output, sizes = _problem(30, 3, 1)
    greedy = opt_einsum_cost(equation, shapes, opt_einsum.paths.greedy(*axisdot.einsum_search.numbered(
        inputs, output, sizes)))
    assert opt_einsum_cost(equation, shapes, search(inputs, output, sizes, trials=8, seconds=0)) == greedy


def test_the_search_leaves_the_global_random_state_alone():
    import random

    equation, shapes, inputs, output, sizes = _problem(20, 5, 1)
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    search(inputs, output, sizes, trials=4, seconds=60)
    assert random.random() == expected


@pytest.mark.parametrize("leaves", [2, 3])
def test_tiny_subtrees_still_give_valid_paths(monkeypatch, leaves):
    monkeypatch.setattr(axisdot.einsum_search, "SUBTREE_LEAVES", leaves)
    equation, shapes, inputs, output, sizes = _problem(15, 9, 2)
    found = search(inputs, output, sizes, trials=2, seconds=60)
    assert opt_einsum_cost(equation, shapes, found) <= opt_einsum_cost(
        equation, shapes, opt_einsum.paths.greedy(*axisdot.einsum_search.numbered(inputs, output, sizes)))


@pytest.mark.parametrize("options", [{"memory_limit": 64}, {"optimize": "auto-hq"}])
def test_planning_leaves_the_global_random_state_alone(options):
    """opt_einsum's random-greedy trials seed Python's global random module: those of
    ``"auto-hq"``, and those that order a step opt_einsum leaves whole under ``memory_limit``."""
    import random

    import torch

    from test_einsum_networks import lattice

    import axisdot

    equation, shapes = lattice(4, 4, 3)
    random.seed(99)
    expected = random.random()
    random.seed(99)
    axisdot.explain(equation, *[torch.empty(s, device="meta") for s in shapes], **options)
    assert random.random() == expected
