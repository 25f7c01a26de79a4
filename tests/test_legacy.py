"""Legacy ``batch_dot`` (Keras 2.2.4's rules) against its shapes, Keras 3 where the rules
agree, its refusals and ``explain``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from aten_log import AtenLog

import axisdot
from axisdot.testing.reference import reference_batch_dot, reference_einsum


def test_legacy_batch_dot_computes_its_product_once():
    x, y = torch.randn(5, 7), torch.randn(5, 7)
    with AtenLog() as ops:
        out = axisdot.batch_dot(x, y, 1, semantics="legacy")
    assert sum(1 for c in ops.ops if c.startswith("aten.mul")) == 1, ops.ops
    torch.testing.assert_close(out, (x * y).sum(1, keepdim=True))


def legacy_inputs(x_shape, y_shape):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(x_shape, generator=gen, dtype=torch.float64), torch.randn(y_shape, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("x_shape, y_shape, axes, legacy_shape, keras3_shape, equation", [
    ((4, 10, 1152), (4, 10, 1152, 16), [2, 2], (4, 10, 16), (4, 10, 10, 16), "bik,bikj->bij"),
    ((4, 10, 16), (4, 10, 1152, 16), [2, 3], (4, 10, 1152), (4, 10, 10, 1152), "bik,bilk->bil"),
], ids=["capsnet-u-hat", "capsnet-agreement"])
def test_legacy_batch_dot_reproduces_the_keras_224_shapes(x_shape, y_shape, axes, legacy_shape, keras3_shape, equation):
    x, y = legacy_inputs(x_shape, y_shape)
    legacy = axisdot.batch_dot(x, y, axes, semantics="legacy")
    assert tuple(legacy.shape) == legacy_shape
    assert tuple(axisdot.batch_dot(x, y, axes).shape) == keras3_shape
    # what the old code computed, written out by hand as an einsum and run in NumPy
    np.testing.assert_allclose(legacy.numpy(), reference_einsum(equation, x, y), atol=1e-10)


@pytest.mark.parametrize("x_shape, y_shape, axes", [
    ((3, 4, 5), (3, 5, 6), (2, 1)), ((3, 4, 5), (3, 6, 5), (2, 2)), ((3, 5, 4), (3, 5, 6), (1, 1)),
    ((3, 5), (3, 5), 1), ((3, 4, 5), (3, 5), (2, 1)),
], ids=["matmul", "attention", "transposed-x", "vectors", "matrix-vector"])
def test_legacy_batch_dot_agrees_with_keras_3_where_the_rules_did_not_change(x_shape, y_shape, axes):
    x, y = legacy_inputs(x_shape, y_shape)
    np.testing.assert_allclose(axisdot.batch_dot(x, y, axes, semantics="legacy").numpy(),
                               reference_batch_dot(x, y, axes), atol=1e-10)


def test_legacy_batch_dot_refuses_what_keras_224_could_not_run():
    x, y = legacy_inputs((3, 4, 5), (3, 6, 7))
    with pytest.raises(axisdot.ShapeError, match="Keras 2.2.4 fails here too"):
        axisdot.batch_dot(x, y, (2, 1), semantics="legacy")
    with pytest.raises(axisdot.ArgumentError, match="'keras3' or 'legacy'"):
        axisdot.batch_dot(x, y, (2, 1), semantics="keras2")


def test_explain_shows_which_batch_dot_rule_ran():
    legacy = axisdot.explain((4, 10, 1152), (4, 10, 1152, 16), [2, 2], mode="batch_dot", semantics="legacy")
    assert legacy.output_shape == (4, 10, 16) and "legacy Keras 2.2.4" in str(legacy)
    x, y = legacy_inputs((4, 10, 1152), (4, 10, 1152, 16))
    torch.testing.assert_close(eval(legacy.code, {"torch": torch, "x": x, "y": y}),  # noqa: S307
                               axisdot.batch_dot(x, y, [2, 2], semantics="legacy"))
    assert axisdot.explain((4, 10, 1152), (4, 10, 1152, 16), [2, 2], mode="batch_dot").output_shape == (4, 10, 10, 16)
