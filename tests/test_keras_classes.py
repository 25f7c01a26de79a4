"""``from_keras`` ports Keras's own classes and subclasses that compute the same thing,
and refuses, naming the class and what it overrides, a subclass that computes something
else (``axisdot.layers.keras_classes``)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import axisdot

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="keras (a test dependency) builds the layers")
L = keras.layers


class Renamed(L.EinsumDense):
    """A subclass that only adds a method: it computes what EinsumDense computes."""

    def describe(self):
        return "a dense layer"


class Scaled(L.EinsumDense):
    def call(self, inputs, training=None):
        return super().call(inputs) * 2.0


class Rotary(L.MultiHeadAttention):
    def _compute_attention(self, query, key, value, attention_mask=None, training=None, return_attention_scores=False):
        return super()._compute_attention(query * 0.5, key, value, attention_mask, training, return_attention_scores)


class Merged(L.Dot):
    def _merge_function(self, inputs):
        return super()._merge_function(inputs) + 1.0


def test_a_subclass_that_only_adds_is_ported_and_agrees():
    layer = Renamed("ab,bc->ac", output_shape=4, bias_axes="c")
    x = np.random.default_rng(0).standard_normal((3, 5)).astype("float32")
    expected = keras.ops.convert_to_numpy(layer(x))
    got = axisdot.EinsumDense.from_keras(layer)(torch.from_numpy(x))
    np.testing.assert_allclose(got.detach().numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("make, port, words", [
    (lambda: Scaled("ab,bc->ac", output_shape=4), axisdot.EinsumDense.from_keras, "Scaled is a subclass of Keras's "
                                                                                  "EinsumDense that overrides call"),
    (lambda: Rotary(num_heads=2, key_dim=3), axisdot.MultiHeadAttention.from_keras, "overrides _compute_attention"),
    (lambda: Merged(axes=1), axisdot.Dot.from_keras, "overrides _merge_function"),
], ids=["EinsumDense.call", "MultiHeadAttention._compute_attention", "Dot._merge_function"])
def test_a_subclass_that_computes_otherwise_is_refused_by_name(make, port, words):
    layer = make()
    if isinstance(layer, L.EinsumDense):
        layer.build((None, 5))
    elif isinstance(layer, L.MultiHeadAttention):
        layer(np.ones((1, 2, 4), "float32"), np.ones((1, 3, 4), "float32"))
    with pytest.raises(axisdot.ArgumentError, match=words):
        port(layer)


def test_a_key_projection_without_bias_is_kept_through_config_and_state():
    """Whisper's attention: every projection has a bias but the key's."""
    mha = axisdot.MultiHeadAttention(2, 4, key_use_bias=False, query_shape=(None, 3, 8))
    assert mha.key_dense.bias is None and mha.query_dense.bias is not None
    config = mha.get_config()
    assert config["key_use_bias"] is False and "key_use_bias" not in axisdot.MultiHeadAttention(2, 4).get_config()
    again = axisdot.MultiHeadAttention.from_config(config, query_shape=(None, 3, 8))
    again.load_state_dict(mha.state_dict(), strict=True)
    x = torch.randn(2, 3, 8)
    torch.testing.assert_close(again(x, x), mha(x, x))
    assert "key_dense.bias" not in mha.state_dict()


def test_a_decoding_cache_without_one_is_refused_clearly():
    mha = axisdot.MultiHeadAttention(2, 4, query_shape=(None, 1, 8))
    x = torch.randn(2, 1, 8)
    with pytest.raises(axisdot.ArgumentError, match="needs a cache"):
        mha(x, x, cache_update_index=0)
    with pytest.raises(axisdot.ShapeError, match=r"\(batch, 2, length, heads, dim\)"):
        mha(x, x, cache=torch.zeros(2, 6, 2, 4), cache_update_index=0)
