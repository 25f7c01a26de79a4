"""EinsumDense and MultiHeadAttention against live Keras 3 (torch backend) on drawn
configurations: outputs, attention scores, and gradients with respect to the inputs and
the weights, in float64 (float32 for Keras's fused attention, which runs in float32)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import axisdot
from axisdot.layers import dense_plan  # SMALL_DENSE_OUTPUT lives there (issue 19 split)
from axisdot.testing import strategies as ads

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="keras (a test dependency) is the oracle here")


def _np(t):
    return t.detach().cpu().numpy()


def _kernel_var(layer):
    raw = getattr(layer, "_kernel", None)
    return raw if raw is not None else layer.kernel


#: a dense matmul runs unfused up to SMALL_DENSE_OUTPUT output elements, as F.linear above:
#: each test runs with every input on one of those paths
PATHS = {"unfused": 2**62, "F.linear": -1}


@pytest.mark.parametrize("path", list(PATHS))
@given(config=ads.einsum_dense_configs(), data=st.data())
def test_einsum_dense_equals_keras_with_its_gradients(path, config, data):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dense_plan, "SMALL_DENSE_OUTPUT", PATHS[path])
        _einsum_dense_equals_keras(config, data)


def _einsum_dense_equals_keras(config, data):
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16), label="seed"))
    kl = keras.layers.EinsumDense(**config.kwargs, dtype="float64")
    kl.build(config.input_shape)
    if config.lora_rank:  # Keras starts B at zero: give it values, so the LoRA term counts
        kl.lora_kernel_b.assign(torch.randn(tuple(kl.lora_kernel_b.shape), generator=gen, dtype=torch.float64))
    if kl.bias is not None:
        kl.bias.assign(torch.randn(tuple(kl.bias.shape), generator=gen, dtype=torch.float64))
    module = axisdot.EinsumDense.from_keras(kl)
    assert tuple(module.kernel.shape) == config.kernel_shape == tuple(_kernel_var(kl).shape)
    x_keras = torch.randn(config.input_shape, generator=gen, dtype=torch.float64, requires_grad=True)
    x_mine = x_keras.detach().clone().requires_grad_()
    expected, got = kl(x_keras), module(x_mine)
    assert tuple(got.shape) == config.output_shape_full == tuple(expected.shape)
    np.testing.assert_allclose(_np(got), _np(expected), atol=1e-12, rtol=1e-12)
    cotangent = torch.randn(tuple(got.shape), generator=gen, dtype=torch.float64)
    (expected * cotangent).sum().backward()
    (got * cotangent).sum().backward()
    np.testing.assert_allclose(_np(x_mine.grad), _np(x_keras.grad), atol=1e-12, rtol=1e-12)
    pairs = [(module.bias, kl.bias)]
    if config.lora_rank:
        pairs += [(module.lora_kernel_a, kl.lora_kernel_a), (module.lora_kernel_b, kl.lora_kernel_b)]
    else:
        pairs.append((module.kernel, kl._kernel))
    for mine, theirs in pairs:
        if mine is not None:  # Keras keeps LoRA's factors in float32, as axisdot does
            tol = 1e-10 if mine.dtype == torch.float64 else 1e-5
            np.testing.assert_allclose(_np(mine.grad), _np(theirs.value.grad), atol=tol, rtol=tol)


def _keras_mha(config, dtype):
    return keras.layers.MultiHeadAttention(**config.kwargs, dtype=dtype)


@pytest.mark.slow
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@given(config=ads.attention_configs(), data=st.data())
def test_multi_head_attention_equals_keras_with_its_gradients(path, dtype, config, data):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dense_plan, "SMALL_DENSE_OUTPUT", PATHS[path])
        _attention_equals_keras(dtype, config, data)


def _attention_equals_keras(dtype, config, data):
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16), label="seed"))
    kl = _keras_mha(config, "float64" if dtype == torch.float64 else "float32")
    make = lambda shape: torch.randn(shape, generator=gen, dtype=dtype)  # noqa: E731
    q, v = make(config.query_shape), make(config.value_shape)
    k = None if config.key_shape is None else make(config.key_shape)
    mask = None if config.mask_shape is None else torch.rand(config.mask_shape, generator=gen) > 0.3
    kl(q, v, k)  # build
    module = axisdot.MultiHeadAttention.from_keras(kl)
    call = dict(attention_mask=mask, use_causal_mask=config.use_causal_mask,
                return_attention_scores=config.return_attention_scores)
    inputs_keras = [t.clone().requires_grad_() for t in (q, v)]
    inputs_mine = [t.clone().requires_grad_() for t in (q, v)]
    expected = kl(inputs_keras[0], inputs_keras[1], k, **call)
    got = module(inputs_mine[0], inputs_mine[1], k, **call)
    fused = len(config.query_shape) == 3 and not config.return_attention_scores
    tol = 1e-5 if dtype == torch.float32 or fused else 1e-12  # Keras's fused kernel runs in float32
    if config.return_attention_scores:
        (expected, expected_scores), (got, scores) = expected, got
        np.testing.assert_allclose(_np(scores), _np(expected_scores), atol=tol, rtol=tol)
    np.testing.assert_allclose(_np(got), _np(expected), atol=tol, rtol=tol)
    if fused and mask is not None:
        rows = torch.broadcast_to(mask, (config.query_shape[0], config.query_shape[1], config.value_shape[1]))
        if config.use_causal_mask:
            rows = rows & torch.ones(rows.shape[1:], dtype=torch.bool).tril()
        if not bool(rows.any(-1).all()):
            # a query row with every key masked: Keras's fused path hits PyTorch's CPU flash
            # kernel, whose gradient there weighs each key by 1 instead of 1/S (only for some
            # head counts); axisdot takes the exact gradient. The forward values agree.
            return
    cotangent = torch.randn(tuple(got.shape), generator=gen, dtype=dtype)
    (expected * cotangent).sum().backward()
    (got * cotangent).sum().backward()
    for mine, theirs in zip(inputs_mine, inputs_keras):
        np.testing.assert_allclose(_np(mine.grad), _np(theirs.grad), atol=tol * 10, rtol=tol * 10)
    for name in ("query_dense", "value_dense", "output_dense"):
        np.testing.assert_allclose(_np(getattr(module, name).kernel.grad),
                                   _np(getattr(kl, name)._kernel.value.grad), atol=tol * 10, rtol=tol * 10)


@pytest.mark.parametrize("name", sorted(axisdot.layers.activations.ACTIVATIONS))
def test_every_activation_is_keras_s(name):
    x = torch.linspace(-6, 6, 96, dtype=torch.float64).reshape(1, 96)  # even: glu halves it
    ours = axisdot.layers.activations.ACTIVATIONS[name](x)
    keras_name = "gelu" if name == "gelu_approximate" else name
    kwargs = {"approximate": True} if name == "gelu_approximate" else {}
    expected = keras.activations.get(keras_name)(x, **kwargs)
    np.testing.assert_allclose(_np(ours), _np(torch.as_tensor(expected)), atol=1e-12, rtol=1e-12)


def test_dropout_applies_in_training_only_and_keeps_the_expectation():
    mha = axisdot.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.5, query_shape=(None, 6, 8)).double()
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(3, 6, 8, generator=gen, dtype=torch.float64)
    _, scores = mha(q, q, return_attention_scores=True, training=False)
    mha.eval()
    assert torch.equal(mha(q, q), mha(q, q, training=False))
    torch.manual_seed(1)
    trained = mha(q, q, training=True)
    assert not torch.allclose(trained, mha(q, q))
    torch.manual_seed(1)
    mha.train()
    assert torch.equal(mha(q, q), trained)  # training defaults to the module's mode
    # the probabilities themselves are returned before dropout, as Keras returns them
    _, scores_training = mha(q, q, return_attention_scores=True, training=True)
    torch.testing.assert_close(scores_training, scores)


def test_a_fully_masked_row_has_the_exact_gradient_on_the_fused_path():
    # the fused path averages the values of a fully masked row (Keras's additive mask);
    # its gradient is that of the average: 1/S for each key, whatever PyTorch kernel runs
    mha = axisdot.MultiHeadAttention(num_heads=1, key_dim=1, use_bias=False, query_shape=(1, 1, 1),
                                     value_shape=(1, 2, 1)).double()
    with torch.no_grad():
        for dense in (mha.query_dense, mha.key_dense, mha.value_dense, mha.output_dense):
            dense.kernel.fill_(1.0)
    q = torch.ones(1, 1, 1, dtype=torch.float64)
    k = torch.tensor([[[0.5], [-2.0]]], dtype=torch.float64)  # keys apart from values: v's gradient is the weights
    v = torch.tensor([[[1.0], [3.0]]], dtype=torch.float64, requires_grad=True)
    out = mha(q, v, k, attention_mask=torch.zeros(1, 1, 2, dtype=torch.bool))
    assert out.item() == 2.0  # the average of 1 and 3
    out.backward()
    assert v.grad.flatten().tolist() == [0.5, 0.5]
