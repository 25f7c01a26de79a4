"""axisdot.einsum against independent references on drawn equations: every form
torch.einsum accepts (diagonals, size-1 and size-0 axes, ellipses, implicit outputs, the
sublist form, non-ASCII letters, spaces), over one to five operands."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

import axisdot
from axisdot.testing import assert_matches
from axisdot.testing import strategies as ads

EVERYTHING = dict(repeated=True, broadcast=True, ellipsis=True, implicit=True, sublist=True, unicode=True, spaces=True)


@pytest.mark.slow
@pytest.mark.parametrize("n_operands", [1, 2, 3, 4, 5])
@given(data=st.data())
def test_einsum_matches_numpy_on_every_form(n_operands, data):
    problem = data.draw(ads.einsum_problems(n_operands=n_operands, max_rank=3, max_side=3, **EVERYTHING))
    operands = [data.draw(ads.tensors(s, dtype=torch.float64)) for s in problem.shapes]
    assert_matches(axisdot.einsum, problem, operands=operands, bound=2.0)


_TORCH_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # in code-point order


def _as_torch(problem: ads.EinsumProblem, operands):
    """The same call in a form torch.einsum takes: letters renamed into a-zA-Z in
    code-point order (an implicit output keeps its order), '...' and '->' kept."""
    if problem.sublists is not None:
        return problem.args(operands)
    equation = problem.equation.replace(" ", "")
    letters = sorted(set(equation) - set(",.->"))
    table = {c: _TORCH_LETTERS[i] for i, c in enumerate(letters)}
    return ["".join(table.get(c, c) for c in equation), *operands]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.complex128,
                                   torch.int64, torch.int32, torch.int8, torch.uint8, torch.bool], ids=str)
@given(data=st.data())
def test_einsum_gives_torch_einsums_values_shape_and_dtype(dtype, data):
    # integer sums of empty tensors: torch's bmm skips its dtype check on zero-size inputs,
    # so its result dtype there follows no rule; sizes >= 1 for those dtypes
    exact = dtype.is_floating_point or dtype.is_complex
    problem = data.draw(ads.einsum_problems(n_operands=(1, 3), max_rank=3, min_side=0 if exact else 1, max_side=3,
                                            **EVERYTHING))
    operands = [data.draw(ads.tensors(s, dtype=dtype, bound=2.0)) for s in problem.shapes]
    if problem.sublists is not None and any(lab is not Ellipsis and lab >= 52 for t in problem.sublists[0]
                                            for lab in t):
        return  # torch takes sublist labels below 52 only; the NumPy test covers these
    try:
        expected = torch.einsum(*_as_torch(problem, operands))
    except (RuntimeError, NotImplementedError):  # torch refuses (e.g. a bool matrix product)
        try:
            got = axisdot.einsum(*problem.args(operands))
        except axisdot.AxisdotError:
            return  # refused too, clearly
        # computed where torch refuses: an integer sum torch runs in int64 on one side
        # and in the operands' width on the other; axisdot runs it all in int64
        assert got.dtype == torch.int64, got.dtype
        assert torch.equal(got, torch.einsum(*_as_torch(problem, [t.long() for t in operands])))
        return
    got = axisdot.einsum(*problem.args(operands))
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if dtype.is_floating_point or dtype.is_complex:
        tol = {torch.float16: 2e-2, torch.bfloat16: 1e-1}.get(dtype, 1e-6)
        torch.testing.assert_close(got, expected, atol=tol * 10, rtol=tol)
    else:
        assert torch.equal(got, expected)
