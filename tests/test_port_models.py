"""Porting saved Keras models with their weights: files written by Keras 3 itself, read
back without Keras, every ported module fed the same inputs as the Keras layer."""
from __future__ import annotations

import json
import os
import re
import zipfile

import numpy as np
import pytest
import torch

import axisdot
import axisdot.port
from axisdot.cli import main

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="keras (a test dependency) writes the model files")
pytest.importorskip("h5py", reason="h5py (the 'port' extra) reads the weights")
L = keras.layers


def encoder_block():
    """A small BERT-style block: self-attention with a padding mask, residual and norm,
    an EinsumDense feed-forward (gelu), and a Dot-based scoring head."""
    tokens, mask = keras.Input((6, 8), name="tokens"), keras.Input((6, 6), name="mask", dtype="bool")
    attended = L.MultiHeadAttention(num_heads=2, key_dim=4, name="self_attention")(tokens, tokens, attention_mask=mask)
    h = L.LayerNormalization(name="norm1")(tokens + attended)
    ff = L.EinsumDense("abc,cd->abd", output_shape=(None, 16), bias_axes="d", activation="gelu", name="ff_in")(h)
    ff = L.EinsumDense("abc,cd->abd", output_shape=(None, 8), bias_axes="d", name="ff_out")(ff)
    h = L.LayerNormalization(name="norm2")(h + ff)
    heads = L.EinsumDense("abc,cde->abde", output_shape=(None, 2, 4), bias_axes="de", name="heads")(h)
    query = L.EinsumDense("abc,cd->abd", output_shape=(None, 8), name="query_head")(h)
    scores = L.Dot(axes=(2, 2), name="scores")([query, h])
    return keras.Model([tokens, mask], [scores, heads], name="encoder")


def image_block():
    """Attention over the two spatial axes of an image-like input (attention_axes=(1, 2)),
    inside a functional model nested in a Sequential one, and a LoRA EinsumDense."""
    image = keras.Input((4, 3, 8), name="image")
    attended = L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=5, attention_axes=(1, 2), output_shape=(6,),
                                    name="spatial_attention")(image, image)
    inner = keras.Model(image, attended, name="spatial")
    lora = L.EinsumDense("...c,cd->...d", output_shape=(4,), bias_axes="d", lora_rank=2, name="lora_head")
    return keras.Sequential([keras.Input((4, 3, 8)), inner, lora], name="vision")


def _keras_layer(model, path):
    *owners, name = path.split("/")
    layer = model
    for owner in owners[1:]:
        layer = layer.get_layer(owner)
    return layer.get_layer(name)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ported")
    gen = np.random.default_rng(0)
    models = {"encoder": encoder_block(), "vision": image_block()}
    lora = models["vision"].get_layer("lora_head")
    lora.lora_kernel_b.assign(gen.standard_normal(tuple(lora.lora_kernel_b.shape)))  # a LoRA update that counts
    for layer in (models["encoder"].get_layer("ff_in"), models["encoder"].get_layer("heads")):
        layer.bias.assign(gen.standard_normal(tuple(layer.bias.shape)))  # biases that count
    for name, model in models.items():
        model.save(folder / f"{name}.keras")
    return models, folder


def _inputs(layer, gen):
    shapes = [[2 if n is None else n for n in s] for s in layer.input_shapes]
    return [torch.randn(s, generator=gen) for s in shapes]


@pytest.mark.parametrize("name, expected", [
    ("encoder", {"encoder/self_attention": "MultiHeadAttention", "encoder/ff_in": "EinsumDense",
                 "encoder/ff_out": "EinsumDense", "encoder/heads": "EinsumDense", "encoder/query_head": "EinsumDense",
                 "encoder/scores": "Dot"}),
    ("vision", {"vision/spatial/spatial_attention": "MultiHeadAttention", "vision/lora_head": "EinsumDense"}),
])
def test_load_finds_every_contraction_layer_with_its_weights(saved, name, expected):
    _, folder = saved
    layers = axisdot.port.load(folder / f"{name}.keras")
    assert {layer.name: layer.class_name for layer in layers} == expected


def test_every_ported_module_reproduces_its_keras_layer(saved):
    models, folder = saved
    gen = torch.Generator().manual_seed(0)
    checked = 0
    for name, model in models.items():
        for ported in axisdot.port.load(folder / f"{name}.keras"):
            layer = _keras_layer(model, ported.name)
            inputs = _inputs(ported, gen)
            if ported.class_name == "MultiHeadAttention":
                mask = torch.rand(2, *inputs[0].shape[1:-1], *inputs[1].shape[1:-1], generator=gen) > 0.2
                if len(inputs[0].shape) == 3:
                    kwargs = {"attention_mask": mask}
                else:
                    kwargs = {}
                expected = layer(*inputs, **kwargs)
                got = ported.module(*inputs, **kwargs)
            elif ported.class_name == "Dot":
                expected, got = layer(inputs), ported.module(inputs)
            else:
                expected, got = layer(inputs[0]), ported.module(inputs[0])
            np.testing.assert_allclose(got.detach().numpy(), keras.ops.convert_to_numpy(expected), atol=2e-5,
                                       err_msg=ported.name)
            checked += 1
    assert checked == 8


def test_the_command_writes_state_dicts_keyed_by_layer_path(saved, tmp_path, capsys):
    models, folder = saved
    out = tmp_path / "ported.pt"
    assert main(["port", str(folder / "encoder.keras"), "--weights", str(out)]) == 0
    assert f"wrote the state dicts of 6 layers to {out}" in capsys.readouterr().out
    states = torch.load(out, weights_only=True)  # plain tensors: loadable without unpickling code
    assert set(states) == {layer.name for layer in axisdot.port.port(folder / "encoder.keras")}
    rebuilt = {layer.name: layer for layer in axisdot.port.port(folder / "encoder.keras")}  # meta: no storage
    gen = torch.Generator().manual_seed(3)
    for name, state in states.items():
        layer = rebuilt[name]
        assert all(t.is_meta for t in layer.module.state_dict().values())
        layer.module.load_state_dict(state, assign=True)
        if layer.class_name == "EinsumDense":
            x = _inputs(layer, gen)[0]
            expected = _keras_layer(models["encoder"], name)(x)
            np.testing.assert_allclose(layer.module(x).detach().numpy(), keras.ops.convert_to_numpy(expected),
                                       atol=2e-5, err_msg=name)


def test_the_report_lists_equations_weights_and_lines(saved, capsys):
    _, folder = saved
    assert main(["port", str(folder / "encoder.keras")]) == 0
    out = capsys.readouterr().out
    assert "encoder/self_attention  (MultiHeadAttention)" in out
    assert re.search(r"\n  scores +aecd,abcd->acbe\n", out) and "query_dense.kernel (8, 2, 4)" in out
    assert 'axisdot.EinsumDense(\'abc,cd->abd\', output_shape=(None, 16), bias_axes=\'d\', activation=\'gelu\')' in out
    assert main(["port", str(folder / "encoder.keras"), "--json"]) == 0
    data = {d["name"]: d for d in json.loads(capsys.readouterr().out)["layers"]}
    assert data["encoder/heads"]["weights"] == {"kernel": [8, 2, 4], "bias": [2, 4]}
    assert data["encoder/self_attention"]["equations"]["combine"] == "acbe,aecd->abcd"


def test_bfloat16_weights_load_in_their_dtype(tmp_path):
    model = keras.Sequential([keras.Input((5, 6)), L.EinsumDense("abc,cd->abd", (None, 3), bias_axes="d",
                                                                 dtype="bfloat16", name="low")], name="m")
    model.save(tmp_path / "m.keras")
    [layer] = axisdot.port.load(tmp_path / "m.keras")
    assert layer.module.kernel.dtype == torch.bfloat16
    keras_kernel = keras.ops.convert_to_numpy(keras.ops.cast(model.get_layer("low").kernel, "float32"))
    np.testing.assert_array_equal(layer.module.kernel.detach().float().numpy(), keras_kernel)


def _rewrite(src, dst, edit_config=None, drop_weights=False):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "config.json" and edit_config is not None:
                config = json.loads(data)
                edit_config(config)
                data = json.dumps(config).encode()
            if item == "model.weights.h5" and drop_weights:
                continue
            zout.writestr(item, data)


def _layer_config(config, name):
    return next(entry for entry in config["config"]["layers"] if entry.get("name") == name)["config"]


@pytest.mark.parametrize("edit, fragments", [
    (lambda c: _layer_config(c, "ff_out").update(output_shape=[None, 9]), ["ff_out", "'kernel'", "(16, 8)", "(16, 9)"]),
    (lambda c: _layer_config(c, "heads").update(bias_axes=None), ["heads", "2 variables", "needs 1"]),
    (lambda c: _layer_config(c, "ff_in").update(dtype={"class_name": "QuantizedDTypePolicy",
                                                       "config": {"mode": "int8", "source_name": "float32"}}),
     ["ff_in", "quantized"]),
], ids=["kernel-shape", "bias-missing", "quantized"])
def test_weights_that_do_not_fit_the_config_name_the_layer_and_weight(saved, tmp_path, edit, fragments):
    _, folder = saved
    _rewrite(folder / "encoder.keras", tmp_path / "bad.keras", edit_config=edit)
    with pytest.raises(axisdot.ModelFileError) as info:
        axisdot.port.load(tmp_path / "bad.keras")
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_a_file_without_weights_says_so(saved, tmp_path):
    _, folder = saved
    _rewrite(folder / "encoder.keras", tmp_path / "light.keras", drop_weights=True)
    assert len(axisdot.port.port(tmp_path / "light.keras")) == 6  # the listing needs no weights
    with pytest.raises(axisdot.ModelFileError, match="no weights"):
        axisdot.port.load(tmp_path / "light.keras")


def test_a_json_that_is_not_a_keras_model_exits_2(tmp_path, capsys):
    (tmp_path / "other.json").write_text(json.dumps({"hello": "world"}))
    assert main(["port", str(tmp_path / "other.json")]) == 2
    err = capsys.readouterr().err
    assert "not a Keras model" in err and "in the command: axisdot port" in err


def test_a_truncated_archive_is_called_corrupt(saved, tmp_path, capsys):
    _, folder = saved
    data = (folder / "encoder.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    assert main(["port", str(tmp_path / "cut.keras")]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and "utf-8" not in err


@keras.saving.register_keras_serializable(package="axisdot_tests")
class Scale(keras.layers.Layer):
    """A user's custom layer: one weight, no sublayers in its config."""

    def build(self, shape):
        self.scale = self.add_weight(shape=(shape[-1],), initializer="ones", name="scale")

    def call(self, x):
        return x * self.scale


def test_loading_opens_the_weights_once_and_names_the_custom_layer(tmp_path, monkeypatch):
    """Without Keras, loading the ported layers' weights and counting what a custom layer
    holds share one open of ``model.weights.h5`` (its streaming checks run once)."""
    import axisdot.port.archive

    x = keras.Input((5, 8), name="x")
    out = L.EinsumDense("abc,cd->abd", (None, 4), bias_axes="d", name="head")(Scale(name="scale")(x))
    keras.Model(x, out, name="m").save(tmp_path / "m.keras")
    opened = []
    real = axisdot.port.archive._open_member
    monkeypatch.setattr(axisdot.port.archive, "_open_member", lambda *a: opened.append(a[1].filename) or real(*a))
    ported = axisdot.port.load(tmp_path / "m.keras", keras=False)
    assert [layer.name for layer in ported] == ["m/head"]
    [hidden] = ported.not_ported
    assert (hidden.name, hidden.class_name) == ("m/scale", "axisdot_tests>Scale")
    assert "its weights hold 1 variable:" in hidden.reason
    assert opened == ["model.weights.h5"]
