"""axisdot against real Keras 3 (torch backend): same shapes and values where Keras
accepts a call, an axisdot error where Keras refuses it (documented extensions aside)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import axisdot
from axisdot.testing import strategies as ads

keras = pytest.importorskip("keras", reason="keras (a test dependency) is not installed")
from keras.src.layers.merging.dot import batch_dot as keras_batch_dot  # noqa: E402

pytestmark = pytest.mark.skipif(keras.backend.backend() != "torch", reason="needs KERAS_BACKEND=torch")


def as_numpy(t) -> np.ndarray:
    return keras.ops.convert_to_numpy(t) if not isinstance(t, torch.Tensor) else t.detach().numpy()


def keras_dot(x, y, axes, normalize=False):
    return keras.layers.Dot(axes=axes, normalize=normalize)([x, y])


def assert_same(got: torch.Tensor, expected, atol: float = 1e-5) -> None:
    expected = as_numpy(expected)
    assert tuple(got.shape) == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=atol)


def operands(data, problem):
    x = data.draw(ads.tensors(problem.x_shape, dtype=torch.float32))
    y = data.draw(ads.tensors(problem.y_shape, dtype=torch.float32))
    return x, y


@given(problem=ads.dot_problems(multi_axis=False, normalize=None, min_side=1), data=st.data())
def test_dot_equals_keras_dot_layer(problem, data):
    x, y = operands(data, problem)
    assert_same(problem.call(axisdot.dot, x, y), keras_dot(x, y, problem.axes, problem.normalize))


@given(problem=ads.batch_dot_problems(multi_axis=False, min_side=1), data=st.data())
def test_batch_dot_equals_keras_batch_dot(problem, data):
    x, y = operands(data, problem)
    assert_same(problem.call(axisdot.batch_dot, x, y), keras_batch_dot(x, y, problem.axes))


@given(problem=ads.tensordot_problems(min_side=1), data=st.data())
def test_tensordot_equals_keras_ops_tensordot(problem, data):
    x, y = operands(data, problem)
    assert_same(problem.call(axisdot.tensordot, x, y), keras.ops.tensordot(x, y, axes=problem.axes))


@pytest.mark.parametrize(
    "x_shape, y_shape, axes, keras_shape",
    [((32, 64, 10, 128), (32, 32, 15, 128), -1, (32, 64, 10, 32, 15)),
     ((32, 64, 10, 128), (32, 128, 32, 15), (3, 1), (32, 64, 10, 32, 15)),
     ((32, 64, 10, 128), (32, 64, 10, 128), -1, (32, 64, 10, 64, 10))],
    ids=["article-axes-minus-1", "article-axes-3-1", "article-mul-sum-recipe-shapes"],
)
@pytest.mark.parametrize("normalize", [False, True])
def test_the_article_examples_match_keras(x_shape, y_shape, axes, keras_shape, normalize):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(x_shape, generator=gen), torch.randn(y_shape, generator=gen)
    got = axisdot.dot(x, y, axes=axes, normalize=normalize)
    assert tuple(got.shape) == keras_shape
    assert_same(got, keras_dot(x, y, axes, normalize), atol=1e-4)


@pytest.mark.parametrize(
    "axes, normalize, shapes",
    [(1, False, ((3, 4), (3, 4))), ((2, 1), True, ((3, 2, 4), (3, 4, 5))),
     ([-1, -2], False, ((3, 2, 4), (3, 4, 5))), (-1, True, ((3, 2, 4), (3, 5, 4)))],
    ids=["int", "pair-normalize", "negative-list", "negative-int-normalize"],
)
def test_dot_module_built_from_a_keras_config_matches_the_keras_layer(axes, normalize, shapes):
    layer = keras.layers.Dot(axes=axes, normalize=normalize, name="similarity")
    module = axisdot.Dot.from_config(layer.get_config())
    assert module.get_config() == {k: layer.get_config()[k] for k in ("axes", "normalize")}
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(shapes[0], generator=gen), torch.randn(shapes[1], generator=gen)
    assert_same(module([x, y]), layer([x, y]))
    assert_same(module(x, y), layer([x, y]))


@pytest.mark.parametrize(
    "x_shape, y_shape, axes",
    [
        ((2, 3, 4), (2, 5, 4), (1, 1)),       # contracted sizes differ
        ((2, 3), (3, 3), 1),                  # batch sizes differ
        ((2, 3), (2, 3), 0),                  # axis 0 contracted
        ((2, 3), (2, 3), (0, 1)),
        ((3,), (3,), 0),                      # rank 1
        ((2, 3), (2, 3), (1, 1, 1)),          # pair of the wrong length
        ((2, 3), (2, 3), ((1,), (1,))),       # nested axes: Keras refuses, see below
        ((2, 3), (2, 3), "1"),                # wrong type
        ((2, 3), (2, 3), 1.0),
        ((2, 3), (2, 3), None),
    ],
    ids=lambda v: repr(v),
)
def test_calls_keras_refuses_are_refused(x_shape, y_shape, axes):
    x, y = torch.ones(x_shape), torch.ones(y_shape)
    with pytest.raises(Exception):
        keras_dot(x, y, axes)
    if axes == ((1,), (1,)):  # documented extension: multi-axis pairs are accepted
        assert tuple(axisdot.dot(x, y, axes).shape) == (2, 1)
        return
    with pytest.raises(axisdot.AxisdotError):
        axisdot.dot(x, y, axes)


def test_documented_differences_from_keras():
    x, y = torch.ones(2, 3, 4), torch.ones(2, 5, 4)
    # Keras wraps an out-of-range negative axis (-4 % 3 == 2); axisdot refuses it
    assert tuple(keras_dot(x, y, -4).shape) == (2, 3, 5)
    with pytest.raises(axisdot.AxesError, match="out of range"):
        axisdot.dot(x, y, -4)
    # Keras takes True as the axis 1; axisdot refuses bools
    z = torch.ones(2, 3)
    assert tuple(keras_dot(z, z, True).shape) == (2, 1)
    with pytest.raises(axisdot.AxesTypeError, match="bool"):
        axisdot.dot(z, z, True)
    # Keras refuses NumPy integers; axisdot takes them as ints
    with pytest.raises(Exception):
        keras_dot(z, z, (np.int64(1), np.int64(1)))
    assert tuple(axisdot.dot(z, z, (np.int64(1), np.int64(1))).shape) == (2, 1)
