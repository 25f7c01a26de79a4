"""The bad-input catalogue: every invalid call raises an AxisdotError that is also the
right builtin, and its message names what a person needs to fix it."""
from __future__ import annotations

import numpy as np
import opt_einsum
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import axisdot
from axisdot import AxesError, AxesTypeError, AxisdotError, AxisdotTypeError, EquationError, OperandError, ShapeError
from axisdot.errors import with_context
from axisdot.testing.reference import reference_dot

T = torch.ones


# (id, call, exception class, builtin, fragments the message must contain)
CASES = [
    ("contracted sizes differ", lambda: axisdot.dot(T(2, 3, 128), T(2, 127, 4), (2, 1)), ShapeError, ValueError,
     ["x axis 2 (size 128)", "y axis 1 (size 127)", "(2, 3, [128])", "(2, [127], 4)", "equal sizes", "axes=(2, 1)"]),
    ("contracted sizes differ, fix suggested", lambda: axisdot.dot(T(2, 5, 3), T(2, 4, 5), (1, 1)), ShapeError, ValueError,
     ["x axis 1 (size 5)", "y axis 1 (size 4)", "y axes of size 5: 2"]),
    ("batch sizes differ", lambda: axisdot.dot(T(2, 3), T(4, 3), 1), ShapeError, ValueError,
     ["x axis 0 (size 2)", "y axis 0 (size 4)", "batch axes", "([2], 3)", "([4], 3)"]),
    ("axis out of range", lambda: axisdot.dot(T(2, 3), T(2, 3, 4), (1, 5)), AxesError, ValueError,
     ["y axis 5 is out of range", "rank 3", "-3 to 2", "x: shape (2, 3)", "y: shape (2, 3, 4)"]),
    ("negative axis out of range", lambda: axisdot.dot(T(2, 3), T(2, 3), -3), AxesError, ValueError,
     ["x axis -3 is out of range", "rank 2", "x: shape (2, 3)", "y: shape (2, 3)"]),
    ("dot contracts axis 0", lambda: axisdot.dot(T(2, 3), T(2, 3), 0), AxesError, ValueError,
     ["x axis 0", "batch axis", "tensordot"]),
    ("dot contracts axis 0 written negative", lambda: axisdot.dot(T(2, 3), T(2, 3, 2), (1, -3)), AxesError, ValueError,
     ["y axis -3", "batch axis"]),
    ("batch_dot contracts axis 0", lambda: axisdot.batch_dot(T(2, 3), T(2, 3), (0, 1)), AxesError, ValueError,
     ["batch_dot", "batch axis"]),
    ("dot on rank 1", lambda: axisdot.dot(T(3), T(2, 3), -1), ShapeError, ValueError,
     ["rank >= 2", "x of rank 1"]),
    ("axes pair of wrong length", lambda: axisdot.dot(T(2, 3), T(2, 3), (1, 1, 1)), AxesError, ValueError,
     ["3 items", "pair"]),
    ("repeated axis", lambda: axisdot.dot(T(2, 3, 3), T(2, 3, 3), ((1, 1), (1, 2))), AxesError, ValueError,
     ["x axis 1 appears twice"]),
    ("unequal multi-axis lists", lambda: axisdot.dot(T(2, 3, 3), T(2, 3, 3), ((1, 2), (1,))), AxesError, ValueError,
     ["x has 2 axes", "y has 1 axes", "equal length"]),
    ("int and sequence mixed", lambda: axisdot.dot(T(2, 3, 3), T(2, 3, 3), (1, (1,))), AxesError, ValueError,
     ["two ints or two sequences"]),
    ("tensordot count above rank", lambda: axisdot.tensordot(T(2, 3), T(3, 4), 3), AxesError, ValueError,
     ["cannot contract 3 axes", "rank 2"]),
    ("tensordot negative count", lambda: axisdot.tensordot(T(2, 3), T(3, 4), -1), AxesError, ValueError,
     [">= 0", "-1"]),
    ("dot_general axis both batch and contracted", lambda: axisdot.dot_general(T(2, 3), T(2, 3), ((0,), (0,)), ((0,), (1,))),
     AxesError, ValueError, ["x axis 0 is both a batch and a contracted axis"]),
    ("dot_general batch=None", lambda: axisdot.dot_general(T(2, 3), T(2, 3), ((1,), (1,)), None), AxesError, ValueError,
     ["batch must be a pair"]),
    ("dot_general contract as an int", lambda: axisdot.dot_general(T(2, 3), T(2, 3), 1), AxesError, ValueError,
     ["contract must be a pair"]),
    ("bool axis", lambda: axisdot.dot(T(2, 3), T(2, 3), True), AxesTypeError, TypeError, ["bool", "True"]),
    ("float axis", lambda: axisdot.dot(T(2, 3), T(2, 3), 1.0), AxesTypeError, TypeError, ["float", "1.0"]),
    ("string axis", lambda: axisdot.dot(T(2, 3), T(2, 3), "1"), AxesTypeError, TypeError, ["str", "'1'"]),
    ("None axes in dot", lambda: axisdot.dot(T(2, 3), T(2, 3), None), AxesTypeError, TypeError, ["None"]),
    ("None inside a pair", lambda: axisdot.dot(T(2, 3), T(2, 3), (1, None)), AxesTypeError, TypeError, ["axes[1]", "None"]),
    ("non-tensor operand", lambda: axisdot.dot([[1.0]], T(2, 3), 1), OperandError, TypeError,
     ["x must be a torch.Tensor", "list", "torch.as_tensor"]),
    ("bool tensor", lambda: axisdot.dot(T(2, 3, dtype=torch.bool), T(2, 3), 1), OperandError, TypeError,
     ["torch.bool", "x.int()"]),
    ("operands on different devices", lambda: axisdot.dot(T(2, 3), T(2, 3, device="meta"), 1), OperandError, TypeError,
     ["cpu", "meta"]),
    ("normalize on integers", lambda: axisdot.dot(T(2, 3, dtype=torch.int64), T(2, 3, dtype=torch.int64), 1, normalize=True),
     OperandError, TypeError, ["floating-point", "torch.int64"]),
    ("einsum unknown output letter", lambda: axisdot.einsum("ij,jk->iz", T(2, 3), T(3, 4)), EquationError, ValueError,
     ["output letter 'z'"]),
    ("einsum wrong operand count", lambda: axisdot.einsum("ij,jk->ik", T(2, 3)), EquationError, ValueError,
     ["2 operand terms", "1 operands"]),
    ("einsum letter with two sizes", lambda: axisdot.einsum("ij,jk->ik", T(2, 3), T(4, 5)), ShapeError, ValueError,
     ["letter 'j'", "size 3 in operand 0 axis 1", "size 4 in operand 1 axis 0"]),
    ("einsum rank and subscripts clash", lambda: axisdot.einsum("ij,jk->ik", T(2, 3, 1), T(3, 4)), EquationError, ValueError,
     ["'ij' has 2 letters", "operand 0 has rank 3", "(2, 3, 1)"]),
    ("einsum repeated output letter", lambda: axisdot.einsum("ij->ii", T(2, 2)), EquationError, ValueError,
     ["'i' appears more than once"]),
    ("einsum two arrows", lambda: axisdot.einsum("i->i->i", T(2)), EquationError, ValueError, ["one '->'"]),
    ("einsum bad character", lambda: axisdot.einsum("i1->i", T(2, 2)), EquationError, ValueError, ["'1' is not a subscript"]),
    ("einsum equation not a str", lambda: axisdot.einsum(["ij"], T(2, 2)), AxisdotTypeError, TypeError, ["str", "list"]),
    ("more than 52 letters", lambda: axisdot.equation(30, 30, (29, 29)), EquationError, ValueError,
     ["58 distinct axes", "52 letters"]),
    ("equation validates shapes like dot", lambda: axisdot.equation((2, 3), (2, 4), 1), ShapeError, ValueError,
     ["x axis 1 (size 3)", "y axis 1 (size 4)"]),
    ("Dot refuses axis 0 at construction", lambda: axisdot.Dot(axes=0), AxesError, ValueError, ["batch axis"]),
    ("Dot refuses a triple at construction", lambda: axisdot.Dot(axes=(1, 2, 3)), AxesError, ValueError, ["3 items"]),
    ("Dot refuses a string at construction", lambda: axisdot.Dot(axes="1"), AxesTypeError, TypeError, ["str"]),
    ("Dot called on one input", lambda: axisdot.Dot(axes=1)(T(2, 3)), OperandError, TypeError, ["two inputs"]),
]


@pytest.mark.parametrize("call, error, builtin, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(call, error, builtin, fragments):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, AxisdotError) and isinstance(info.value, builtin)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_errors_raised_from_the_cache_keep_a_short_traceback():
    with pytest.raises(AxesError) as info:
        axisdot.dot(T(2, 3), T(2, 3), 5)
    assert info.value.__suppress_context__ is True


def test_a_bad_call_is_not_cached_and_does_not_poison_the_cache():
    axisdot.cache_clear()
    for _ in range(2):
        with pytest.raises(AxesError):
            axisdot.dot(T(2, 3), T(2, 3), 7)
    assert axisdot.cache_info().currsize == 0
    assert tuple(axisdot.dot(T(2, 3), T(2, 3), 1).shape) == (2, 1)


def test_context_added_to_an_error_keeps_its_cause():
    cause = KeyError("the reason")
    try:
        try:
            raise cause
        except KeyError as err:
            raise ShapeError("a refusal") from err
    except ShapeError as err:
        extended = with_context(err, ["  more context"])
    assert type(extended) is ShapeError and extended.__cause__ is cause
    assert str(extended) == "a refusal\n  more context"
    # through the public API: a dtype torch cannot multiply keeps torch's own error as the cause
    u = torch.ones(3, dtype=torch.uint16)
    with pytest.raises(axisdot.OperandError) as info:
        axisdot.einsum("i,i->", u, u)
    assert isinstance(info.value.__cause__, (RuntimeError, NotImplementedError))


@pytest.mark.parametrize("call, cls, builtin", [
    (lambda: axisdot.dot(torch.ones(2, 3), torch.ones(2, 3), 1, normalize="cosine"), axisdot.ArgumentError, ValueError),
    (lambda: axisdot.dot(torch.ones(2, 3), torch.ones(2, 3), 1, normalize=2), axisdot.AxisdotTypeError, TypeError),
    (lambda: axisdot.batch_dot(torch.ones(2, 3), torch.ones(2, 3), 1, semantics="keras2"), axisdot.ArgumentError,
     ValueError),
    (lambda: axisdot.batch_dot(torch.ones(2, 3), torch.ones(2, 3), 1, semantics=3), axisdot.AxisdotTypeError, TypeError),
    (lambda: axisdot.explain((2, 3), (2, 3), 1, mode="matmul"), axisdot.ArgumentError, ValueError),
    (lambda: axisdot.explain((2, 3), (2, 3), 1, mode=3), axisdot.AxisdotTypeError, TypeError),
    (lambda: axisdot.einsum("ij,jk", torch.ones(2, 3), torch.ones(3, 4), optimize="fastest"), axisdot.ArgumentError,
     ValueError),
    (lambda: axisdot.einsum("ij,jk", torch.ones(2, 3), torch.ones(3, 4), optimize=2.5), axisdot.AxisdotTypeError,
     TypeError),
    (lambda: axisdot.einsum("i,i->", torch.ones(3, dtype=torch.uint16), torch.ones(3, dtype=torch.uint16)),
     axisdot.OperandError, TypeError),
], ids=["normalize-value", "normalize-type", "semantics-value", "semantics-type", "mode-value", "mode-type",
        "optimize-value", "optimize-type", "uint16"])
def test_a_value_not_allowed_is_a_value_error_and_a_wrong_type_a_type_error(call, cls, builtin):
    with pytest.raises(cls) as info:
        call()
    assert isinstance(info.value, axisdot.AxisdotError) and isinstance(info.value, builtin)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-10, 10), st.integers(min_value=2**62, max_value=2**200),
    # no subnormals: a library loaded earlier (compiled kernels on some torch builds) can set
    # flush-to-zero, and hypothesis then refuses to draw them
    st.floats(allow_nan=True, allow_subnormal=False), st.text(max_size=4), st.binary(max_size=3),
    st.complex_numbers(allow_subnormal=False),
    st.integers(-5, 5).map(np.int64), st.integers(-5, 5).map(np.int8), st.booleans().map(np.bool_),
    st.integers(-3, 3).map(np.array), st.lists(st.integers(-3, 3), max_size=3).map(np.array),
    st.integers(-3, 3).map(torch.tensor), st.just(Ellipsis), st.just(slice(1, 2)),
)


AXES = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
                                                     st.dictionaries(st.integers(0, 3), inner, max_size=2)),
                    max_leaves=8)


X, Y = torch.randn(3, 4, 5, dtype=torch.float64), torch.randn(3, 5, 4, dtype=torch.float64)


@pytest.mark.slow
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(axes=AXES)
def test_any_object_as_axes_gives_a_result_or_an_axisdot_error(axes):
    for call in (lambda: axisdot.dot(X, Y, axes), lambda: axisdot.batch_dot(X, Y, axes),
                 lambda: axisdot.tensordot(X, Y, axes), lambda: axisdot.dot_general(X, Y, axes),
                 lambda: axisdot.dot_general(X, Y, ((2,), (1,)), axes), lambda: axisdot.batch_dot(X, Y, axes, semantics="legacy"),
                 lambda: axisdot.explain(X, Y, axes, mode="tensordot"), lambda: axisdot.Dot((2, 1), normalize=axes)(X, Y),
                 lambda: axisdot.Dot(axes)(X, Y), lambda: axisdot.explain(X, Y, axes),
                 lambda: axisdot.equation(X, Y, axes), lambda: axisdot.dot(X, Y, 2, normalize=axes)):
        try:
            out = call()
        except axisdot.AxisdotError:
            continue
        assert isinstance(out, (torch.Tensor, str, axisdot.Explanation))
    try:
        out = axisdot.dot(X, Y, axes)
    except axisdot.AxisdotError:
        return
    np.testing.assert_allclose(out.numpy(), reference_dot(X, Y, axes), atol=1e-12)  # accepted means right


EQUATIONS = st.one_of(st.text(max_size=12), st.text(alphabet="ijk.-> ,", max_size=14),
                      st.text(alphabet="ijkIJ...->,", max_size=16))


OPERANDS = [torch.randn(2, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)]


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(equation=EQUATIONS, n=st.integers(0, 2))
def test_any_string_as_an_einsum_equation_gives_a_result_or_an_axisdot_error(equation, n):
    operands = OPERANDS[:n]
    try:
        out = axisdot.einsum(equation, *operands)
    except axisdot.AxisdotError:
        return
    # accepted means right; opt_einsum is the reference (it takes any letter, as axisdot does)
    expected = opt_einsum.contract(equation, *[t.numpy() for t in operands])
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)
