"""One renderer of a layer's constructor line and one door for Keras weights (issue 19):
the module's repr, ``explain`` and ``axisdot port`` print the same line; ``from_keras``
and ``axisdot.port.load`` copy weights through the same function."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import axisdot
import axisdot.port
from axisdot import Dot, EinsumDense, MultiHeadAttention
from axisdot.layers import einsum_dense, keras_interop, multi_head_attention
from axisdot.layers.constructor import constructor_line
from axisdot.port import registry
from axisdot.port.report import report
from axisdot.port.walk import LayerEntry

os.environ.setdefault("KERAS_BACKEND", "torch")

LINES = [  # (class, config as Keras writes it, the line written by hand)
    ("Dot", {"axes": [2, 1], "normalize": False}, "axisdot.Dot(axes=[2, 1], normalize=False)"),
    ("Dot", {"axes": (2, 2), "normalize": "tf_keras", "name": "d"}, "axisdot.Dot(axes=(2, 2), normalize='tf_keras')"),
    ("EinsumDense", {"equation": "abc,cd->abd", "output_shape": [None, 16], "bias_axes": "d", "activation": "gelu",
                     "kernel_initializer": {"class_name": "TruncatedNormal", "config": {}}},
     "axisdot.EinsumDense('abc,cd->abd', output_shape=(None, 16), bias_axes='d', activation='gelu')"),
    ("EinsumDense", {"equation": "ab,bc->ac", "output_shape": [8], "bias_axes": None, "activation": "linear",
                     "lora_rank": 2, "lora_alpha": 4.0},
     "axisdot.EinsumDense('ab,bc->ac', output_shape=(8,), lora_rank=2, lora_alpha=4.0)"),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 4, "value_dim": 4, "dropout": 0.0, "use_bias": True,
                            "output_shape": None, "attention_axes": None, "use_gate": False, "sliding_window": None},
     "axisdot.MultiHeadAttention(num_heads=2, key_dim=4)"),
    ("MultiHeadAttention", {"num_heads": 3, "key_dim": 2, "value_dim": 5, "dropout": 0.1, "use_bias": False,
                            "output_shape": [6], "attention_axes": [1, 2], "use_gate": True, "sliding_window": 3},
     "axisdot.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=5, dropout=0.1, use_bias=False, "
     "output_shape=(6,), use_gate=True, sliding_window=3, attention_axes=(1, 2))"),
]


@pytest.mark.parametrize("class_name, config, line", LINES, ids=[f"{c} {i}" for i, (c, _, _) in enumerate(LINES)])
def test_the_constructor_line_is_written_from_the_config_leaving_defaults_out(class_name, config, line):
    assert constructor_line(class_name, config) == line


LAYERS = {  # (a Keras config, the input shapes a Keras file would record)
    "Dot": ({"axes": [2, 2], "normalize": False, "name": "scores"}, {"input_shape": [[None, 6, 16], [None, 6, 16]]}),
    "EinsumDense": ({"equation": "abc,cd->abd", "output_shape": [6, 16], "bias_axes": "d", "activation": "gelu",
                     "name": "ff"}, {"input_shape": [None, 6, 8]}),
    "MultiHeadAttention": ({"num_heads": 2, "key_dim": 4, "dropout": 0.1, "use_bias": False, "name": "att"},
                           {"shapes_dict": {"query_shape": [None, 6, 8], "value_shape": [None, 6, 8]}}),
}
EXPECTED = {  # written by hand: the README's port report prints these lines
    "Dot": "axisdot.Dot(axes=(2, 2), normalize=False)",
    "EinsumDense": "axisdot.EinsumDense('abc,cd->abd', output_shape=(6, 16), bias_axes='d', activation='gelu')",
    "MultiHeadAttention": "axisdot.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.1, use_bias=False, "
                          "attention_axes=(1,))",
}


@pytest.mark.parametrize("class_name", list(LAYERS))
def test_repr_explain_and_the_port_report_print_the_same_line(class_name):
    config, build_config = LAYERS[class_name]
    ported = registry.build(LayerEntry(config["name"], class_name, config, "", {"build_config": build_config}))
    module = ported.module
    shapes = [[2 if n is None else n for n in s] for s in ported.input_shapes]
    assert ported.axisdot == EXPECTED[class_name]
    assert axisdot.explain(module, *shapes).layer == EXPECTED[class_name]
    assert ["axisdot", EXPECTED[class_name]] in [line.split(None, 1) for line in report([ported]).splitlines()]
    built = ", kernel=(8, 16))" if class_name == "EinsumDense" else ")"  # the repr adds what was built
    assert f"axisdot.{class_name}({module.extra_repr()})" == EXPECTED[class_name][:-1] + built


def test_an_unbuilt_layer_s_repr_says_so_after_its_constructor_arguments():
    assert repr(EinsumDense("ab,bc->ac", 8, bias_axes="c")) == "EinsumDense('ab,bc->ac', output_shape=(8,), " \
                                                               "bias_axes='c', unbuilt)"
    assert MultiHeadAttention(2, 4, attention_axes=2).extra_repr() == "num_heads=2, key_dim=4, attention_axes=(2,), " \
                                                                      "unbuilt"
    assert repr(Dot(axes=(2, 1))) == "Dot(axes=(2, 1), normalize=False)"


# -- weights --------------------------------------------------------------------------------


def test_keras_weights_are_cast_to_the_parameters_dtype_and_must_all_fit():
    module = EinsumDense("ab,bc->ac", 3, bias_axes="c", input_shape=(None, 2))
    kernel = np.arange(6, dtype=np.float64).reshape(2, 3)
    keras_interop.load_keras_weights(module, {"kernel": kernel, "bias": torch.ones(3)}, where="layer 'd'")
    assert module.kernel.dtype == torch.float32 and module.kernel.tolist() == kernel.tolist()
    assert module.bias.tolist() == [1.0, 1.0, 1.0]
    bad = [({"kernel": kernel}, "Missing key"), ({"kernel": kernel.T, "bias": np.ones(3)}, "size mismatch"),
           ({"kernel": kernel, "bias": np.ones(3), "gamma": np.ones(3)}, "the layer has no gamma")]
    for weights, fragment in bad:
        with pytest.raises(axisdot.ShapeError, match=fragment) as info:
            keras_interop.load_keras_weights(module, weights, where="layer 'd'")
        assert str(info.value).startswith("layer 'd': its weights do not fit the layer")
    assert module.kernel.tolist() == kernel.tolist()  # a refused load changes nothing


def test_assigned_weights_give_a_meta_module_storage():
    with torch.device("meta"):
        module = EinsumDense("ab,bc->ac", 3, input_shape=(None, 2))
    keras_interop.load_keras_weights(module, {"kernel": torch.full((2, 3), 2.0)}, where="x", assign=True)
    assert module.kernel.device.type == "cpu" and module.kernel.tolist() == [[2.0] * 3] * 2


@pytest.fixture
def spy(monkeypatch):
    """Every use of the one weight copier, by the modules that copy Keras weights."""
    calls = []

    def copier(module, weights, **kwargs):
        calls.append(kwargs["where"])
        return keras_interop.load_keras_weights(module, weights, **kwargs)

    for user in (einsum_dense, multi_head_attention, registry):
        monkeypatch.setattr(user, "load_keras_weights", copier)
    return calls


def _same_weights(module, keras_weights):
    state = module.state_dict()
    assert set(state) == set(keras_weights)
    for key, value in keras_weights.items():
        np.testing.assert_array_equal(state[key].numpy(), np.asarray(value), err_msg=key)


def test_from_keras_copies_through_the_one_copier(spy):
    keras = pytest.importorskip("keras")
    dense = keras.layers.EinsumDense("abc,cd->abd", (None, 4), bias_axes="d", name="ff")
    dense.build((None, 3, 5))
    dense.enable_lora(2)
    dense.lora_kernel_b.assign(np.random.default_rng(0).standard_normal((2, 4)))
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, name="att")
    mha(np.ones((1, 4, 6), "float32"), np.ones((1, 4, 6), "float32"))
    module = EinsumDense.from_keras(dense)
    _same_weights(module, {"kernel": dense._kernel, "bias": dense.bias, "lora_kernel_a": dense.lora_kernel_a,
                           "lora_kernel_b": dense.lora_kernel_b})
    attention = MultiHeadAttention.from_keras(mha)
    _same_weights(attention, {f"{name}.{w}": getattr(getattr(mha, name), w)
                              for name in ("query_dense", "key_dense", "value_dense", "output_dense")
                              for w in ("kernel", "bias")})
    assert spy == ["EinsumDense.from_keras('ff')", "MultiHeadAttention.from_keras('att')"]


def test_port_load_copies_through_the_one_copier(spy, tmp_path):
    keras = pytest.importorskip("keras")
    pytest.importorskip("h5py")
    tokens = keras.Input((6, 8), name="tokens")
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="attention")(tokens, tokens)
    ff = keras.layers.EinsumDense("abc,cd->abd", (6, 16), bias_axes="d", name="ff")(attended)
    model = keras.Model(tokens, ff, name="block")
    model.save(tmp_path / "block.keras")
    ported = {layer.name: layer for layer in axisdot.port.load(tmp_path / "block.keras", keras=False)}
    assert [where.split(": ", 1)[1] for where in sorted(spy)] == ["layer 'block/attention'", "layer 'block/ff'"]
    assert all(where.startswith(str(tmp_path / "block.keras")) for where in spy)
    ff_layer = model.get_layer("ff")
    _same_weights(ported["block/ff"].module, {"kernel": ff_layer.kernel, "bias": ff_layer.bias})
    att = model.get_layer("attention")
    _same_weights(ported["block/attention"].module, {f"{name}.{w}": getattr(getattr(att, name), w)
                                                     for name in ("query_dense", "key_dense", "value_dense",
                                                                  "output_dense") for w in ("kernel", "bias")})
