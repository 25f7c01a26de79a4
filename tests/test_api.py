"""Every front end against the NumPy references, through axisdot's own testing kit
(axisdot.testing): drawn ranks, sizes (0 and 1 included), axis forms, dtypes and layouts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import axisdot
import axisdot.testing.reference
from axisdot.testing import assert_matches, strategies as ads
from axisdot.testing.reference import reference_dot, reference_einsum

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64, torch.int64, torch.int32]


def draw_operand(data: st.DataObject, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A tensor of ``shape`` with values in [-2, 2], sometimes as a non-contiguous view
    (reversed axes) or an expanded (stride-0) view, so every layout reaches the lowerings."""
    t = data.draw(ads.tensors(shape, dtype=dtype))
    layout = data.draw(st.sampled_from(["contiguous", "transposed", "expanded"]), label="layout")
    if layout == "transposed" and t.ndim > 1:
        return t.permute(*reversed(range(t.ndim))).contiguous().permute(*reversed(range(t.ndim)))
    if layout == "expanded" and t.ndim > 0 and t.shape[0] > 0:
        return t[:1].expand(t.shape)
    return t


def check(fn, problem, data, dtype, bound=2.0):
    x, y = draw_operand(data, problem.x_shape, dtype), draw_operand(data, problem.y_shape, dtype)
    got = problem.call(fn, x, y)
    assert got.dtype == dtype
    assert tuple(got.shape) == problem.expected_shape
    assert_matches(fn, problem, operands=[x, y], bound=bound)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@given(problem=ads.dot_problems(max_rank=6, max_side=3), data=st.data())
def test_dot_matches_the_reference(dtype, problem, data):
    check(axisdot.dot, problem, data, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@given(problem=ads.dot_problems(normalize=True, min_side=1), data=st.data())
def test_dot_normalize_matches_the_keras_formula(dtype, problem, data):
    check(axisdot.dot, problem, data, dtype, bound=1.0)  # normalized: each product within 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64], ids=str)
@given(problem=ads.batch_dot_problems(max_rank=6, max_side=3), data=st.data())
def test_batch_dot_matches_the_reference(dtype, problem, data):
    check(axisdot.batch_dot, problem, data, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.complex128, torch.int32], ids=str)
@given(problem=ads.tensordot_problems(max_rank=5, max_side=3), data=st.data())
def test_tensordot_matches_numpy(dtype, problem, data):
    check(axisdot.tensordot, problem, data, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.int64], ids=str)
@given(problem=ads.dot_general_problems(max_rank=6, max_side=3), data=st.data())
def test_dot_general_matches_the_reference(dtype, problem, data):
    check(axisdot.dot_general, problem, data, dtype)


@given(batch=st.lists(st.integers(1, 3), min_size=2, max_size=3), m=st.integers(0, 3), k=st.integers(0, 3),
       n=st.integers(0, 3), x_cf=st.booleans(), y_cf=st.booleans(), data=st.data())
def test_several_leading_batch_axes_never_broadcast_a_size_one(batch, m, k, n, x_cf, y_cf, data):
    """Leading batch axes then one free and one contracted axis each (attention scores):
    torch.matmul on views, which would broadcast a batch axis of size 1 against a larger
    one; axisdot pairs batch sizes exactly, as the reference does, warm or cold."""
    nb = len(batch)
    x_shape, y_shape = tuple(batch) + ((k, m) if x_cf else (m, k)), tuple(batch) + ((k, n) if y_cf else (n, k))
    contract = ((nb if x_cf else nb + 1,), (nb if y_cf else nb + 1,))
    axes = tuple(range(nb))
    x = data.draw(ads.tensors(x_shape, dtype=torch.float64))
    y = data.draw(ads.tensors(y_shape, dtype=torch.float64))
    axisdot.cache_clear()
    for _ in range(2):  # the first call builds, the second runs from the fast table
        got = axisdot.dot_general(x, y, contract, (axes, axes))
        np.testing.assert_allclose(got.numpy(), axisdot.testing.reference.reference_dot_general(
            x, y, contract, (axes, axes)), atol=1e-12)
    where = data.draw(st.integers(0, nb - 1), label="batch axis of size 1 in y")
    if batch[where] == 1:
        return
    y1 = y.narrow(where, 0, 1)
    for _ in range(2):
        with pytest.raises(axisdot.ShapeError, match="batch axes must have equal sizes"):
            axisdot.dot_general(x, y1, contract, (axes, axes))


@pytest.mark.parametrize("n_operands", [1, 2, 3, 4])
@given(data=st.data())
def test_einsum_matches_numpy(n_operands, data):
    problem = data.draw(ads.einsum_problems(n_operands=n_operands))
    operands = [data.draw(ads.tensors(s, dtype=torch.float64)) for s in problem.shapes]
    assert_matches(axisdot.einsum, problem, operands=operands, bound=2.0)


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
    # small integers: every product and sum is exact in each of these dtypes
    assert (axisdot.testing.reference.to_numpy(got) == reference_dot(x, y, (2, 1))).all()


@pytest.mark.parametrize("equation, shapes", [
    ("iij->j", [(4, 4, 3)]), ("iik,kl->l", [(4, 4, 3), (3, 5)]), ("ijk->", [(4, 4, 3)]),
    ("ijk,kl->i", [(4, 4, 3), (3, 5)]), ("ijk->kji", [(4, 4, 3)]), ("ba,ac", [(2, 3), (3, 4)]),
], ids=["diagonal", "diagonal-then-contract", "total-sum", "sum-out-one-operand", "permute", "implicit-output"])
def test_einsum_handles_diagonals_traces_sums_and_implicit_output(equation, shapes):
    gen = torch.Generator().manual_seed(0)
    ops = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    got = axisdot.einsum(equation, *ops)
    expected = reference_einsum(equation, *ops)
    assert tuple(got.shape) == expected.shape
    torch.testing.assert_close(got, torch.from_numpy(expected))


def test_einsum_takes_its_operands_as_one_list():
    a, b = torch.randn(2, 3, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(axisdot.einsum("ij,jk", [a, b]), torch.from_numpy(reference_einsum("ij,jk", a, b)))


def test_no_public_name_is_shadowed_by_a_module():
    import importlib
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(axisdot.__path__)}
    for info in pkgutil.walk_packages(axisdot.__path__, "axisdot."):  # import every module, as doctests do
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    for name in axisdot.__all__:
        value = getattr(axisdot, name)
        assert name not in modules or isinstance(value, type(axisdot)), f"axisdot.{name} is also a module"
        assert not isinstance(value, type(axisdot)), f"axisdot.{name} is a module, not the public function"
    import axisdot.explanation as m  # the implementation modules have their own names

    assert m.explain is axisdot.explain


@pytest.mark.parametrize("call", [
    lambda x, y: axisdot.dot([x, y], axes=(2, 1)),
    lambda x, y: axisdot.dot([x, y], (2, 1)),
    lambda x, y: axisdot.dot((x, y), axes=(2, 1)),
    lambda x, y: axisdot.batch_dot([x, y], (2, 1)),
    lambda x, y: axisdot.batch_dot([x, y], axes=(2, 1)),
], ids=["dot-list-keyword", "dot-list-positional", "dot-tuple", "batch_dot-positional", "batch_dot-keyword"])
def test_keras_s_functional_form_takes_a_pair_of_inputs(call):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 4, 5, generator=gen)
    torch.testing.assert_close(call(x, y), axisdot.dot(x, y, (2, 1)))


def test_keras_s_functional_form_with_normalize():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 5, 4, generator=gen)
    expected = axisdot.dot(x, y, -1, normalize=True)
    torch.testing.assert_close(axisdot.dot([x, y], -1, True), expected)  # keras.layers.dot(inputs, axes, normalize)
    torch.testing.assert_close(axisdot.dot([x, y], axes=-1, normalize=True), expected)
    with pytest.raises(axisdot.OperandError, match=r"dot\(\[x, y\]"):
        axisdot.dot(x, axes=-1)  # one tensor, no y: say how to call it
    with pytest.raises(axisdot.OperandError, match="torch.Tensor"):
        axisdot.dot([[1.0, 2.0]], x, -1)  # data in a list is still not a tensor


def test_normalize_and_semantics_may_be_given_in_their_place():
    """``dot(x, y, axes, normalize)`` in the order of ``keras.layers.Dot(axes, normalize)``,
    and ``batch_dot(x, y, axes, semantics)``: the same as the keywords (plain parameters, so
    that CPython specializes the call)."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 5, 4, generator=gen)
    unit = lambda t: t / t.square().sum(-1, keepdim=True).sqrt()  # noqa: E731
    torch.testing.assert_close(axisdot.dot(x, y, -1, True), torch.bmm(unit(x), unit(y).mT))
    torch.testing.assert_close(axisdot.dot(x, y, -1, False), torch.bmm(x, y.mT))
    with pytest.raises(axisdot.AxisdotTypeError, match="normalize given twice"):
        axisdot.dot([x, y], -1, True, True)
    u, w = torch.randn(2, 3, 5, generator=gen), torch.randn(2, 3, 5, 4, generator=gen)  # CapsNet's shapes
    assert axisdot.batch_dot(u, w, (2, 2)).shape == (2, 3, 3, 4)
    torch.testing.assert_close(axisdot.batch_dot(u, w, (2, 2), "legacy"), torch.einsum("bik,bikj->bij", u, w))
    with pytest.raises(axisdot.ArgumentError, match="keras2"):
        axisdot.batch_dot(u, w, (2, 2), "keras2")


def test_a_dtype_torch_can_sum_alone_gives_torch_s_result():
    u = torch.arange(4).to(torch.uint16)
    assert torch.equal(axisdot.einsum("i->", u), torch.einsum("i->", u))  # int64, as torch sums it
