"""EinsumDense and MultiHeadAttention as PyTorch modules: building, configs, LoRA,
initialization, explain, and every refusal a careful user meets (issue 12)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import axisdot
from axisdot import EinsumDense, MultiHeadAttention
from axisdot.testing.reference import reference_dot


def test_built_at_construction_or_on_the_first_call_like_lazy_linear():
    eager = EinsumDense("abc,cd->abd", (None, 6), bias_axes="d", input_shape=(None, 5, 4))
    assert tuple(eager.kernel.shape) == (4, 6) and tuple(eager.bias.shape) == (6,)
    lazy = EinsumDense("abc,cd->abd", (None, 6), bias_axes="d")
    assert lazy.has_uninitialized_params()
    out = lazy(torch.ones(2, 5, 4))
    assert tuple(out.shape) == (2, 5, 6) and tuple(lazy.kernel.shape) == (4, 6)
    # a state dict builds an unbuilt layer too, and the first call checks it against the input
    fresh = EinsumDense("abc,cd->abd", (None, 6), bias_axes="d")
    fresh.load_state_dict(eager.state_dict())
    torch.testing.assert_close(fresh(torch.ones(2, 5, 4)), eager(torch.ones(2, 5, 4)))


def test_the_linear_lowering_fuses_the_bias_and_equals_the_plain_formula():
    gen = torch.Generator().manual_seed(0)
    layer = EinsumDense("abcd,cde->abe", (None, 7), bias_axes="e", input_shape=(None, 3, 4, 5)).double()
    with torch.no_grad():
        layer.bias.copy_(torch.randn(7, generator=gen, dtype=torch.float64))
    x = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    expected = torch.einsum("abcd,cde->abe", x, layer.kernel) + layer.bias
    torch.testing.assert_close(layer(x), expected)
    assert "linear" in layer._plans[4].lowering and "fused" in layer._plans[4].lowering


def test_glorot_uniform_over_keras_s_fans():
    torch.manual_seed(0)
    layer = EinsumDense("abc,cde->abde", (None, 64, 64), input_shape=(None, 2, 1000))
    limit = math.sqrt(6 / (1000 + 64 * 64))  # fan_in 1000 (contracted), fan_out 64*64 (output axes)
    k = layer.kernel.detach()
    assert k.abs().max() <= limit and k.abs().max() > 0.99 * limit
    assert abs(k.std().item() - limit / math.sqrt(3)) < 0.01 * limit  # uniform(-l, l) has std l/sqrt(3)
    dense = EinsumDense("abc,cd->abd", (None, 3), bias_axes="d", input_shape=(None, 2, 5))
    assert torch.equal(dense.bias.detach(), torch.zeros(3))


def test_config_round_trip_and_keras_keys():
    layer = EinsumDense("abc,cde->abde", (None, 4, 8), "relu", "de", lora_rank=2, lora_alpha=3.0,
                        input_shape=(None, 5, 16))
    config = layer.get_config()
    assert config["equation"] == "abc,cde->abde" and config["output_shape"] == [None, 4, 8]
    assert (config["activation"], config["bias_axes"], config["lora_rank"], config["lora_alpha"]) == \
        ("relu", "de", 2, 3.0)
    again = EinsumDense.from_config({**config, "name": "x", "trainable": True, "kernel_regularizer": None},
                                    input_shape=(None, 5, 16))
    assert again.get_config() == config and again.lora_enabled


def test_lora_freezes_the_kernel_and_adds_its_scaled_product():
    gen = torch.Generator().manual_seed(1)
    layer = EinsumDense("abc,cd->abd", (None, 6), input_shape=(None, 5, 4)).double()
    x = torch.randn(2, 5, 4, generator=gen, dtype=torch.float64)
    base = layer(x).detach()
    layer.enable_lora(2, lora_alpha=4.0)
    assert not layer.kernel.requires_grad and layer.lora_kernel_a.dtype == torch.float32
    torch.testing.assert_close(layer(x), base)  # B starts at zero: nothing changes yet
    with torch.no_grad():
        layer.lora_kernel_b.copy_(torch.randn(2, 6, generator=gen))
    delta = 2.0 * layer.lora_kernel_a.double() @ layer.lora_kernel_b.double()
    torch.testing.assert_close(layer(x), torch.einsum("abc,cd->abd", x, layer.kernel + delta), rtol=1e-6, atol=1e-6)
    with pytest.raises(axisdot.ArgumentError, match="already enabled"):
        layer.enable_lora(2)
    with pytest.raises(axisdot.ArgumentError, match="isn't built"):
        EinsumDense("abc,cd->abd", (None, 6)).enable_lora(2)


@pytest.mark.parametrize("make, error, fragments", [
    (lambda: EinsumDense("ab,bc,cd->ad", 4), axisdot.ArgumentError, ["not an EinsumDense equation"]),
    (lambda: EinsumDense("ab,bc->ad", 4), axisdot.ArgumentError, ["output letter 'd'", "neither the input"]),
    (lambda: EinsumDense("ab,bcd->ac", 4), axisdot.ArgumentError, ["kernel letter 'd'", "fully specified"]),
    (lambda: EinsumDense("ab,bc->ac", 4, bias_axes="b"), axisdot.ArgumentError, ["bias axis 'b'", "'ac'"]),
    (lambda: EinsumDense("abc,cd->abd", (None, 4, 5)), axisdot.ArgumentError, ["3 sizes", "needs 2", "'bd'"]),
    (lambda: EinsumDense("abc,cd->abd", (7, 4), input_shape=(None, 5, 3)), axisdot.ShapeError,
     ["letter 'b'", "size 5", "size 7"]),
    (lambda: EinsumDense("abc,cd->abd", (None, None), input_shape=(None, 5, 3)), axisdot.ShapeError,
     ["'d'", "unknown"]),
    (lambda: EinsumDense("ab,bc->ac..", 4), axisdot.ArgumentError, ["not an EinsumDense equation"]),
    (lambda: EinsumDense("aab,bc->ac", 4), axisdot.ArgumentError, ["appears twice"]),
    (lambda: EinsumDense("ab,bc->ac", 4, activation="relu7"), axisdot.ArgumentError, ["'relu7'", "gelu"]),
    (lambda: EinsumDense("ab,bc->ac", "4"), axisdot.AxisdotTypeError, ["output_shape"]),
    (lambda: EinsumDense("ab,bc->ac", 4)(torch.ones(2, 3, dtype=torch.int64)), axisdot.OperandError,
     ["floating-point"]),
], ids=["three-inputs", "output-letter", "kernel-letter", "bias-axis", "output-rank", "output-size",
        "kernel-size-unknown", "trailing-garbage", "repeated-letter", "activation", "output-type", "integer-input"])
def test_einsum_dense_refusals_are_clear(make, error, fragments):
    with pytest.raises(error) as info:
        make()
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("small_output", [4096, -1], ids=["unfused", "F.linear"])
def test_an_input_that_does_not_fit_the_built_kernel_names_the_letter_and_both_shapes(small_output, monkeypatch):
    monkeypatch.setattr(axisdot.layers.dense_plan, "SMALL_DENSE_OUTPUT", small_output)
    layer = EinsumDense("abc,cd->abd", (None, 6), input_shape=(None, 5, 4))
    with pytest.raises(axisdot.ShapeError) as info:
        layer(torch.ones(2, 5, 7))
    message = str(info.value)
    for fragment in ("letter 'c'", "size 7 in the input", "4 in the kernel", "(2, 5, 7)", "([4], 6)"):
        assert fragment in message, message
    multi = EinsumDense("abcd,cde->abe", (None, 6), input_shape=(None, 5, 4, 3))
    with pytest.raises(axisdot.ShapeError, match="letter 'c'"):
        multi(torch.ones(2, 5, 3, 4))  # the same number of elements, the wrong sizes: never reinterpreted
    heads = EinsumDense("abc,cde->abde", (None, 2, 3), input_shape=(None, 5, 4))  # kernel (4, 2, 3): 24 = 8 * 3
    with pytest.raises(axisdot.ShapeError, match="letter 'c' has size 8 in the input but 4 in the kernel"):
        heads(torch.ones(2, 5, 8))
    vector = EinsumDense("abc,c->ab", (None,), input_shape=(None, 5, 4))
    with pytest.raises(axisdot.ShapeError, match="letter 'c' has size 2 in the input but 4 in the kernel"):
        vector(torch.ones(2, 5, 2))


class _Scaled(torch.nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.factor


@pytest.mark.parametrize("bias_axes", ["d", None])
def test_einsum_dense_takes_its_weights_from_functional_call_and_parametrizations(bias_axes):
    """forward reads the parameter dict directly (nn.Module.__getattr__ is slow): weights
    swapped in by torch.func.functional_call, or computed by a parametrization that takes
    the name off that dict, are the ones used."""
    from torch.nn.utils import parametrize

    gen = torch.Generator().manual_seed(0)
    layer = EinsumDense("abc,cd->abd", (None, 6), bias_axes=bias_axes, input_shape=(None, 5, 4)).double()
    x = torch.randn(2, 5, 4, generator=gen, dtype=torch.float64)
    kernel, bias = torch.randn(4, 6, generator=gen, dtype=torch.float64), torch.randn(6, generator=gen,
                                                                                     dtype=torch.float64)
    plain = lambda k, b: torch.einsum("abc,cd->abd", x, k) + (0 if b is None else b)  # noqa: E731
    swapped = {"kernel": kernel, **({"bias": bias} if bias_axes else {})}
    torch.testing.assert_close(torch.func.functional_call(layer, swapped, (x,)),
                               plain(kernel, bias if bias_axes else None))
    with torch.no_grad():
        layer.kernel.copy_(kernel)
        if bias_axes:
            layer.bias.copy_(bias)
    if bias_axes:  # the bias alone, then both
        parametrize.register_parametrization(layer, "bias", _Scaled(-1.0))
        assert "bias" not in layer._parameters and "kernel" in layer._parameters
        torch.testing.assert_close(layer(x), plain(kernel, -bias))
    parametrize.register_parametrization(layer, "kernel", _Scaled(2.0))
    assert "kernel" not in layer._parameters
    torch.testing.assert_close(layer(x), plain(2 * kernel, -bias if bias_axes else None))


@pytest.mark.parametrize("axes, fragments", [
    ((0,), ["axis 0 is the batch axis"]),
    ((3,), ["axis 3 is the last (feature) axis"]),
    ((-1,), ["axis -1 is the last"]),
    ((1, 1), ["appears twice"]),
    ((5,), ["out of range"]),
])
def test_attention_axes_that_cannot_be_attended_over_are_refused(axes, fragments):
    layer = MultiHeadAttention(num_heads=2, key_dim=4, attention_axes=axes)
    with pytest.raises(axisdot.AxesError) as info:
        layer(torch.ones(2, 3, 4, 8), torch.ones(2, 3, 4, 8))
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_a_mask_that_does_not_broadcast_is_refused_on_both_paths():
    layer = MultiHeadAttention(num_heads=2, key_dim=4, query_shape=(None, 5, 8), value_shape=(None, 7, 8))
    q, v = torch.ones(2, 5, 8), torch.ones(2, 7, 8)
    bad = torch.ones(2, 5, 6, dtype=torch.bool)
    for scores in (False, True):  # the fused path and the einsum path
        with pytest.raises(axisdot.ShapeError, match=r"\(2, 1, 5, 6\).*does not broadcast"):
            layer(q, v, attention_mask=bad, return_attention_scores=scores)


def test_mha_refuses_bad_configuration_values():
    with pytest.raises(axisdot.ArgumentError, match="num_heads"):
        MultiHeadAttention(num_heads=0, key_dim=4)
    with pytest.raises(axisdot.AxisdotTypeError, match="key_dim"):
        MultiHeadAttention(num_heads=2, key_dim=4.0)
    with pytest.raises(axisdot.ArgumentError, match="dropout"):
        MultiHeadAttention(num_heads=2, key_dim=4, dropout=1.5)
    with pytest.raises(axisdot.ShapeError, match="one rank"):
        MultiHeadAttention(num_heads=2, key_dim=4)(torch.ones(2, 5, 8), torch.ones(2, 3, 5, 8))


def test_mha_submodules_are_keras_s_and_keep_their_layout():
    layer = MultiHeadAttention(num_heads=3, key_dim=4, value_dim=5, output_shape=(7,), query_shape=(None, 6, 8),
                               value_shape=(None, 9, 10))
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {"query_dense.kernel": (8, 3, 4), "query_dense.bias": (3, 4), "key_dense.kernel": (10, 3, 4),
                      "key_dense.bias": (3, 4), "value_dense.kernel": (10, 3, 5), "value_dense.bias": (3, 5),
                      "output_dense.kernel": (3, 5, 7), "output_dense.bias": (7,)}
    out, scores = layer(torch.ones(2, 6, 8), torch.ones(2, 9, 10), return_attention_scores=True)
    assert tuple(out.shape) == (2, 6, 7) and tuple(scores.shape) == (2, 3, 6, 9)


def _flops(equation, shapes):
    lhs, out = equation.split("->")
    sizes = {c: n for t, s in zip(lhs.split(","), shapes) for c, n in zip(t, s)}
    letters = set(lhs.replace(",", ""))
    return math.prod(sizes[c] for c in letters) * (2 if letters - set(out) else 1)


def test_explain_describes_a_layer_s_contractions_weights_and_cost():
    dense = EinsumDense("abc,cde->abde", (None, 4, 8), bias_axes="de", activation="gelu")
    e = axisdot.explain(dense, (2, 5, 16))
    assert e.equations == {"dense": "abc,cde->abde"} and e.output_shape == (2, 5, 4, 8)
    assert e.weights == {"kernel": (16, 4, 8), "bias": (4, 8)}
    assert e.flops == _flops("abc,cde->abde", [(2, 5, 16), (16, 4, 8)])
    (_, part), = e.parts
    assert [op.name for op in part.inputs] == ["input", "kernel"] and part.inputs[1].roles == ("contracted", "free",
                                                                                                 "free")
    assert part.lowering.startswith("torch.tensordot") and "gelu" in str(e)  # 320 output elements: unfused
    (_, large), = axisdot.explain(dense, (64, 128, 16)).parts
    assert large.lowering == "torch.nn.functional.linear on views, bias fused"
    mha = MultiHeadAttention(num_heads=2, key_dim=4, attention_axes=(1, 2))
    e = axisdot.explain(mha, (2, 3, 4, 8))
    assert e.equations["scores"] == "afgde,abcde->adbcfg" and e.equations["combine"] == "adbcfg,afgde->abcde"
    assert e.parts[3][1].output_shape == (2, 2, 3, 4, 3, 4)  # (batch, heads, query axes, key axes)
    assert e.output_shape == (2, 3, 4, 8) and e.weights["output_dense.kernel"] == (2, 4, 8)
    independent = sum(_flops(p.equation, [op.shape for op in p.inputs]) for _, p in e.parts)
    assert e.flops == independent
    assert axisdot.explain(axisdot.Dot((2, 1)), (2, 3, 4), (2, 4, 5)).equations == {"dot": "bij,bjk->bik"}


def test_mha_takes_its_projections_weights_from_functional_call():
    """The projections are read from the module dict and their weights from the parameter
    dicts: torch.func.functional_call's weights are the ones used."""
    mha = MultiHeadAttention(num_heads=2, key_dim=4, query_shape=(None, 3, 8))
    x = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0))
    bias = torch.arange(8.0)
    swapped = {"output_dense.kernel": torch.zeros(2, 4, 8), "output_dense.bias": bias}
    torch.testing.assert_close(torch.func.functional_call(mha, swapped, (x, x)), bias.expand(2, 3, 8))
    value_bias = {"value_dense.kernel": torch.zeros(8, 2, 4), "value_dense.bias": torch.ones(2, 4)}
    expected = torch.einsum("abcd,cde->abe", torch.ones(2, 3, 2, 4), mha.output_dense.kernel) + mha.output_dense.bias
    torch.testing.assert_close(torch.func.functional_call(mha, value_bias, (x, x)), expected)  # softmax rows sum to 1


def test_a_lazy_mha_whose_equations_wait_for_the_input_rank_keeps_its_early_parameters():
    """Before the first call the projections' equations are unknown (they depend on the
    inputs' rank): the parameters an optimizer or a state dict saw are still the ones
    the built layer uses, here with two attention axes on rank-4 inputs."""
    x = torch.randn(2, 3, 4, 8, generator=torch.Generator().manual_seed(1))
    built = MultiHeadAttention(num_heads=2, key_dim=4, attention_axes=(1, 2), query_shape=(None, 3, 4, 8))
    lazy = MultiHeadAttention(num_heads=2, key_dim=4, attention_axes=(1, 2))
    early = list(lazy.parameters())
    lazy.load_state_dict(built.state_dict())
    assert [p is q for p, q in zip(early, lazy.parameters())] == [True] * 8
    torch.testing.assert_close(lazy(x, x), built(x, x), rtol=0, atol=0)
    assert all(p is q for p, q in zip(early, lazy.parameters())) and lazy.query_dense.equation == "abcd,def->abcef"
    with pytest.raises(axisdot.OperandError, match="built by its MultiHeadAttention"):
        MultiHeadAttention(num_heads=2, key_dim=4).query_dense(x)


def test_dot_module_accepts_a_pair_or_two_arguments():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 3, 5, generator=gen), torch.randn(2, 5, 4, generator=gen)
    module = axisdot.Dot(axes=(2, 1))
    np.testing.assert_allclose(module(x, y).numpy(), reference_dot(x, y, (2, 1)), atol=1e-5)
    np.testing.assert_allclose(module([x, y]).numpy(), reference_dot(x, y, (2, 1)), atol=1e-5)
    np.testing.assert_allclose(module((x, y)).numpy(), reference_dot(x, y, (2, 1)), atol=1e-5)


def test_dot_module_config_round_trips_and_ignores_base_layer_keys():
    config = {"name": "dot_3", "trainable": True, "dtype": {"class_name": "DTypePolicy"}, "axes": [2, 1], "normalize": True}
    module = axisdot.Dot.from_config(config)
    assert module.get_config() == {"axes": [2, 1], "normalize": True}
    assert axisdot.Dot.from_config(module.get_config()).get_config() == module.get_config()
    assert repr(module) == "Dot(axes=[2, 1], normalize=True)"


def test_dot_module_is_a_torch_module_with_no_parameters():
    module = axisdot.Dot(axes=-1)
    assert isinstance(module, torch.nn.Module)
    assert list(module.parameters()) == []
    assert axisdot.Dot(axes=((1, 2), (2, 1))).get_config()["axes"] == ((1, 2), (2, 1))
