"""``normalize``: each mode's formula (Keras 3, tf.keras, torch), its gradients on zero rows,
and half precision."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import axisdot
from axisdot.testing.reference import reference_dot


@pytest.mark.parametrize("mode", [True, "keras3", "tf_keras", "torch"])
def test_normalize_in_float16_neither_overflows_nor_leaves_float16(mode):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, generator=gen, dtype=torch.float64) * 100  # squares far beyond float16's range
    y = torch.randn(4, 6, generator=gen, dtype=torch.float64) * 100
    x[0] = 0  # an all-zero row: the clamps matter here
    got = axisdot.dot(x.half(), y.half(), axes=1, normalize=mode)
    assert got.dtype == torch.float16 and bool(torch.isfinite(got).all())
    expected = axisdot.dot(x.half().double(), y.half().double(), axes=1, normalize=mode)
    torch.testing.assert_close(got.double(), expected, atol=2e-3, rtol=2e-3)
    module = axisdot.Dot(axes=1, normalize=mode).half()
    torch.testing.assert_close(module(x.half(), y.half()), got)


def numpy_normalized(a: np.ndarray, axes: tuple[int, ...], mode: str) -> np.ndarray:
    square_sum = (a * a).sum(axis=axes, keepdims=True)
    if mode == "keras3":
        return a * np.minimum(1 / np.sqrt(np.maximum(square_sum, 1e-300)), 1e7)
    if mode == "tf_keras":
        return a / np.sqrt(np.maximum(square_sum, 1e-12))
    return a / np.maximum(np.sqrt(square_sum), 1e-12)


@pytest.mark.parametrize("mode", ["keras3", "tf_keras", "torch"])
@pytest.mark.parametrize("axes", [-1, (2, 1), ((1, 2), (2, 1))], ids=["int", "pair", "multi-axis"])
def test_each_normalize_mode_follows_its_frameworks_formula(mode, axes):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64) * 1e-4
    y = torch.randn(3, 5, 4, generator=gen, dtype=torch.float64) if axes != -1 else torch.randn(3, 6, 5, generator=gen, dtype=torch.float64)
    x[0] = 0.0  # an all-zero row
    ax, ay = {-1: ((2,), (2,)), (2, 1): ((2,), (1,)), ((1, 2), (2, 1)): ((1, 2), (2, 1))}[axes]
    expected = reference_dot(numpy_normalized(x.numpy(), ax, mode), numpy_normalized(y.numpy(), ay, mode), axes)
    np.testing.assert_allclose(axisdot.dot(x, y, axes, normalize=mode).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("mode", [True, "keras3", "tf_keras", "torch"])
def test_normalize_gradients_stay_finite_on_all_zero_rows(mode):
    x = torch.zeros(2, 3, requires_grad=True)
    y = torch.randn(2, 3, requires_grad=True)
    axisdot.dot(x, y, 1, normalize=mode).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


def test_keras3_and_true_are_the_same_mode_and_modes_travel_through_dot_and_explain():
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(axisdot.dot(x, y, 1, normalize=True), axisdot.dot(x, y, 1, normalize="keras3"))
    module = axisdot.Dot.from_config({"axes": 1, "normalize": "tf_keras"})
    assert module.get_config() == {"axes": 1, "normalize": "tf_keras"}
    torch.testing.assert_close(module(x, y), axisdot.dot(x, y, 1, normalize="tf_keras"))
    e = axisdot.explain(x, y, 1, normalize="torch")
    assert e.normalize == "torch" and "torch.nn.functional.normalize" in str(e)
    got = eval(e.code, {"torch": torch, "x": x, "y": y})  # noqa: S307
    torch.testing.assert_close(got, axisdot.dot(x, y, 1, normalize="torch"))
    with pytest.raises(axisdot.ArgumentError, match="tf_keras"):  # a str, but not a mode: ValueError
        axisdot.dot(x, y, 1, normalize="l2")
    with pytest.raises(axisdot.AxisdotTypeError):  # not a bool or a str: TypeError
        axisdot.Dot(axes=1, normalize=1)


def leaf(*shape: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)


def test_normalize_has_finite_gradients_on_an_all_zero_row():
    x = leaf(2, 3, seed=0)
    y = leaf(2, 3, seed=1)
    with torch.no_grad():
        x[0] = 0.0
    axisdot.dot(x, y, axes=1, normalize=True).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()
