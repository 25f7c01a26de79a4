"""axisdot.testing itself: the strategies against real Keras, their coverage and
argument checks, assert_matches, the pytest plugin, and the downstream example."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import find, given, settings

import axisdot
from axisdot.testing import assert_matches, strategies as ads, tolerance
from axisdot.testing.strategies import EinsumProblem

keras = pytest.importorskip("keras", reason="keras (a test dependency) judges the strategies")
from keras.src.layers.merging.dot import batch_dot as keras_batch_dot  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


FIND = settings(derandomize=True, database=None, max_examples=2000)


def keras_call(problem, x, y):
    if problem.func == "dot":
        return keras.layers.Dot(axes=problem.axes, normalize=problem.normalize)([x, y])
    if problem.func == "batch_dot":
        return keras_batch_dot(x, y, problem.axes)
    return keras.ops.tensordot(x, y, axes=problem.axes)


# min_side=1: Keras's own batch_dot fails on some zero-size inputs ("cannot reshape tensor
# of 0 elements into shape [0, 0, -1]"); axisdot's tests cover size 0 against NumPy.
@pytest.mark.parametrize("strategy", [
    ads.dot_problems(multi_axis=False, normalize=None, min_side=1), ads.batch_dot_problems(multi_axis=False, min_side=1),
    ads.tensordot_problems(), ads.dot_problems(axes=(2, 1), min_side=1), ads.dot_problems(axes=-1, min_rank=3, min_side=1),
], ids=["dot", "batch_dot", "tensordot", "dot-fixed-pair", "dot-fixed-negative"])
@given(data=__import__("hypothesis").strategies.data())
def test_every_drawn_valid_problem_is_accepted_by_keras_with_the_expected_shape(strategy, data):
    problem = data.draw(strategy)
    x, y = torch.ones(problem.x_shape), torch.ones(problem.y_shape)
    assert tuple(keras_call(problem, x, y).shape) == problem.expected_shape


def keras_accepts_by_design(problem) -> bool:
    """The documented differences, where Keras runs a call axisdot refuses: True taken as
    axis 1; a negative axis beyond the rank wrapped around (Dot: -4 % 3 == 2; batch_dot
    adds the rank once and lets Python index from the end); and, on the torch backend,
    keras.ops.tensordot broadcasting a contracted axis of size 1 against any size."""
    axes = problem.axes
    flat = [a for side in (axes if isinstance(axes, (tuple, list)) else (axes,))
            for a in (side if isinstance(side, (tuple, list)) else (side,))]
    if problem.rule == "axes type" and any(a is True for a in flat):
        return True
    if problem.func == "tensordot" and problem.rule == "size mismatch":
        return 1 in problem.x_shape + problem.y_shape
    return problem.rule == "axis out of range" and min(flat) < 0


@pytest.mark.parametrize("strategy", [ads.invalid_dot_problems(), ads.invalid_batch_dot_problems(),
                                      ads.invalid_tensordot_problems()], ids=["dot", "batch_dot", "tensordot"])
@given(data=__import__("hypothesis").strategies.data())
def test_every_drawn_invalid_problem_is_refused_by_keras_and_by_axisdot(strategy, data):
    problem = data.draw(strategy)
    x, y = torch.ones(problem.x_shape), torch.ones(problem.y_shape)
    with pytest.raises(problem.expected_error):
        problem.call(getattr(axisdot, problem.func), x, y)
    if keras_accepts_by_design(problem):
        return
    with pytest.raises(Exception):
        keras_call(problem, x, y)


@given(problem=ads.invalid_dot_general_problems())
def test_invalid_dot_general_problems_are_refused(problem):
    with pytest.raises(axisdot.AxisdotError):
        problem.call(axisdot.dot_general, torch.ones(problem.x_shape), torch.ones(problem.y_shape))


@given(problem=ads.invalid_einsum_problems(n_operands=2))
def test_invalid_einsum_problems_are_refused(problem):
    with pytest.raises(problem.expected_error):
        axisdot.einsum(problem.equation, *[torch.ones(s) for s in problem.shapes])
    with pytest.raises(Exception):
        torch.einsum(problem.equation, *[torch.ones(s) for s in problem.shapes])


@pytest.mark.parametrize("strategy, forms", [
    (ads.dot_problems(), {"int", "negative", "pair", "multi"}),
    (ads.batch_dot_problems(), {"int", "negative", "pair", "multi", "none"}),
    (ads.tensordot_problems(), {"count", "pair", "multi"}),
], ids=["dot", "batch_dot", "tensordot"])
def test_drawing_covers_every_axis_form(strategy, forms):
    for form in forms:
        assert find(strategy, lambda p, f=form: p.form == f, settings=FIND).form == form


@pytest.mark.slow
@pytest.mark.parametrize("strategy, rules", [
    (ads.invalid_dot_problems(), ads._KERAS_RULES), (ads.invalid_tensordot_problems(), ads._TENSORDOT_RULES),
    (ads.invalid_dot_general_problems(), ads._GENERAL_RULES), (ads.invalid_einsum_problems(), ads._EINSUM_RULES),
], ids=["dot", "tensordot", "dot_general", "einsum"])
def test_drawing_covers_every_rule(strategy, rules):
    for rule in rules:
        assert find(strategy, lambda p, r=rule: p.rule == r, settings=FIND).rule == rule


def test_kind_narrows_the_axes_forms():
    assert find(ads.dot_problems(kind="negative"), lambda p: True, settings=FIND).form == "negative"
    assert find(ads.dot_problems(kind=["multi"]), lambda p: len(p.x_shape) == 4, settings=FIND).form == "multi"


def test_problems_shrink_to_small_ranks_and_sizes():
    p = find(ads.dot_problems(), lambda p: True, settings=FIND)
    assert (p.x_shape, p.y_shape, p.axes) == ((0, 0), (0, 0), 1)


@pytest.mark.parametrize("call, fragment", [
    (lambda: ads.dot_problems(min_rank=1), "min_rank=1"),
    (lambda: ads.dot_problems(min_rank=4, max_rank=3), "min_rank=4 > max_rank=3"),
    (lambda: ads.dot_problems(min_side=-1), "min_side must be an int >= 0, got -1"),
    (lambda: ads.dot_problems(kind="diagonal"), "'diagonal'"),
    (lambda: ads.dot_problems(axes=0), "batch axis"),
    (lambda: ads.invalid_dot_problems(rules="no such rule"), "'no such rule'"),
    (lambda: ads.einsum_problems(n_operands=0), "n_operands must be >= 1, got 0"),
])
def test_bad_strategy_arguments_name_the_offending_value(call, fragment):
    with pytest.raises(ValueError, match=__import__("re").escape(fragment)):
        call()


def test_problems_print_as_the_call_they_stand_for():
    p = ads.Problem("dot", (2, 3), (2, 3), 1, normalize=True)
    assert repr(p) == "dot(x: (2, 3), y: (2, 3), axes=1, normalize=True)"
    assert "breaks: size mismatch" in repr(ads.InvalidProblem("dot", (2, 3), (2, 4), 1, "size mismatch"))


def test_assert_matches_passes_a_correct_port_and_reports_a_wrong_one():
    problem = ads.Problem("dot", (2, 3, 4), (2, 5, 4), -1, expected_shape=(2, 3, 5))
    assert_matches(lambda x, y, axes: torch.einsum("bij,bkj->bik", x, y), problem)
    with pytest.raises(AssertionError) as info:
        assert_matches(lambda x, y, axes: torch.einsum("bij,bkj->bik", x, y) * 1.001, problem)
    report = str(info.value)
    for fragment in ["dot(x: (2, 3, 4), y: (2, 5, 4), axes=-1)", "bij,bkj->bik", "worst at", "tolerance"]:
        assert fragment in report


def test_tolerances_are_dtype_aware():
    assert tolerance(torch.int64, 100) == 0.0
    assert tolerance(torch.float16, 10) > tolerance(torch.float32, 10) > tolerance(torch.float64, 10) > 0


def test_the_plugin_offers_fixtures_and_a_profile(axisdot_strategies, axisdot_reference, assert_matches):
    assert axisdot_strategies is ads
    assert callable(axisdot_reference.reference_dot) and callable(assert_matches)
    assert settings.get_profile("axisdot-ci").derandomize is True


@pytest.mark.slow
def test_the_downstream_example_project_passes_and_catches_the_planted_bug():
    folder = ROOT / "examples" / "downstream"
    env = {**os.environ, "PYTHONPATH": str(folder)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=folder,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_plugin_is_registered_through_the_pytest11_entry_point():
    from importlib.metadata import entry_points

    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("axisdot") == "axisdot.testing.plugin"


def test_assert_matches_takes_the_widest_tolerance_the_operands_need():
    problem = EinsumProblem("ij,jk->ik", ((3, 64), (64, 2)))
    gen = torch.Generator().manual_seed(1)
    operands = [torch.rand(3, 64, generator=gen, dtype=torch.float64),
                torch.rand(64, 2, generator=gen).half()]

    def in_half(equation, a, b):  # a port that computes in the narrower operand's dtype
        return torch.einsum(equation, a.half(), b).double()

    assert_matches(in_half, problem, operands=operands)  # float16's tolerance, not float64's
    with pytest.raises(AssertionError, match="does not match"):
        assert_matches(lambda eq, a, b: torch.einsum(eq, a, b.double()) + 0.5, problem, operands=operands)
