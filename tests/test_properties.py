"""Every front end against the NumPy references of axisdot.testing.reference, over drawn
ranks, sizes (0 and 1 included), axis forms, dtypes and memory layouts."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, strategies as st

import axisdot
from axisdot.testing import strategies as ads
from axisdot.testing.reference import (
    reference_batch_dot,
    reference_dot,
    reference_dot_general,
    reference_einsum,
    reference_tensordot,
)
from helpers import assert_close_to_reference

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64, torch.int64, torch.int32]


def draw_operand(data: st.DataObject, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A tensor of ``shape``, sometimes as a non-contiguous view (reversed axes) or an
    expanded (stride-0) view, so every layout reaches the lowerings."""
    t = data.draw(ads.tensors(shape, dtype=dtype))
    layout = data.draw(st.sampled_from(["contiguous", "transposed", "expanded"]), label="layout")
    if layout == "transposed" and t.ndim > 1:
        return t.permute(*reversed(range(t.ndim))).contiguous().permute(*reversed(range(t.ndim)))
    if layout == "expanded" and t.ndim > 0 and t.shape[0] > 0:
        return t[:1].expand(t.shape)
    return t


def n_terms(problem: ads.Problem) -> int:
    """How many products one output element sums (an upper bound, for tolerances)."""
    return max(1, math.prod(problem.x_shape)) if problem.x_shape else 1


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@given(problem=ads.dot_problems(), data=st.data())
def test_dot_matches_the_reference(dtype, problem, data):
    x, y = draw_operand(data, problem.x_shape, dtype), draw_operand(data, problem.y_shape, dtype)
    got = problem.call(axisdot.dot, x, y)
    assert got.dtype == dtype
    assert tuple(got.shape) == problem.expected_shape
    assert_close_to_reference(got, reference_dot(x, y, problem.axes), dtype, n_terms(problem))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@given(problem=ads.dot_problems(normalize=True, min_side=1), data=st.data())
def test_dot_normalize_matches_the_keras_formula(dtype, problem, data):
    x, y = draw_operand(data, problem.x_shape, dtype), draw_operand(data, problem.y_shape, dtype)
    got = problem.call(axisdot.dot, x, y)
    # normalized inputs: every product is within 1 and their sum within 1 (Cauchy-Schwarz)
    assert_close_to_reference(got, reference_dot(x, y, problem.axes, normalize=True), dtype, n_terms(problem), 1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64], ids=str)
@given(problem=ads.batch_dot_problems(), data=st.data())
def test_batch_dot_matches_the_reference(dtype, problem, data):
    x, y = draw_operand(data, problem.x_shape, dtype), draw_operand(data, problem.y_shape, dtype)
    got = problem.call(axisdot.batch_dot, x, y)
    assert tuple(got.shape) == problem.expected_shape
    assert_close_to_reference(got, reference_batch_dot(x, y, problem.axes), dtype, n_terms(problem))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.complex128, torch.int32], ids=str)
@given(problem=ads.tensordot_problems(), data=st.data())
def test_tensordot_matches_numpy(dtype, problem, data):
    x, y = draw_operand(data, problem.x_shape, dtype), draw_operand(data, problem.y_shape, dtype)
    got = problem.call(axisdot.tensordot, x, y)
    assert tuple(got.shape) == problem.expected_shape
    assert_close_to_reference(got, reference_tensordot(x, y, problem.axes), dtype, n_terms(problem))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.int64], ids=str)
@given(problem=ads.dot_general_problems(), data=st.data())
def test_dot_general_matches_the_reference(dtype, problem, data):
    x, y = draw_operand(data, problem.x_shape, dtype), draw_operand(data, problem.y_shape, dtype)
    got = problem.call(axisdot.dot_general, x, y)
    assert tuple(got.shape) == problem.expected_shape
    assert_close_to_reference(got, reference_dot_general(x, y, problem.axes, problem.batch), dtype, n_terms(problem))


@pytest.mark.parametrize("n_operands", [1, 2, 3, 4])
@given(data=st.data())
def test_einsum_matches_numpy(n_operands, data):
    problem = data.draw(ads.einsum_problems(n_operands=n_operands))
    operands = [data.draw(ads.tensors(s, dtype=torch.float64)) for s in problem.shapes]
    got = axisdot.einsum(problem.equation, *operands)
    bound_terms = math.prod(max(1, math.prod(s)) for s in problem.shapes)
    assert_close_to_reference(got, reference_einsum(problem.equation, *operands), torch.float64, bound_terms)


@pytest.mark.parametrize(
    "x_dtype, y_dtype",
    [(torch.float32, torch.float64), (torch.int32, torch.float32), (torch.int64, torch.int32),
     (torch.float16, torch.bfloat16), (torch.float32, torch.complex64)],
    ids=str,
)
def test_mixed_dtypes_follow_torch_type_promotion(x_dtype, y_dtype):
    x = (torch.arange(24) % 5 - 2).reshape(2, 3, 4).to(x_dtype)
    y = (torch.arange(40) % 3 - 1).reshape(2, 4, 5).to(y_dtype)
    got = axisdot.dot(x, y, axes=(2, 1))
    assert got.dtype == torch.result_type(x, y)
    assert_close_to_reference(got, reference_dot(x, y, (2, 1)), got.dtype, 4)


def test_einsum_handles_diagonals_traces_and_single_operand_sums():
    a = torch.randn(4, 4, 3, dtype=torch.float64)
    b = torch.randn(3, 5, dtype=torch.float64)
    for eq, ops in [("iij->j", [a]), ("iik,kl->l", [a, b]), ("ijk->", [a]), ("ijk,kl->i", [a, b]),
                    ("ijk->kji", [a])]:
        assert_close_to_reference(axisdot.einsum(eq, *ops), reference_einsum(eq, *ops), torch.float64, 100)


def test_einsum_implicit_output_is_the_sorted_letters_used_once():
    a, b = torch.randn(2, 3, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    got = axisdot.einsum("ba,ac", a, b)  # implicit output "bc"
    assert_close_to_reference(got, reference_einsum("ba,ac", a, b), torch.float64, 3)
    assert_close_to_reference(axisdot.einsum("ij,jk", [a, b]), reference_einsum("ij,jk", a, b), torch.float64, 3)
