"""Real Keras models: KerasHub backbones built from their classes with small random
configs, every contraction layer found and ported (through ``from_keras``, through
``axisdot.port.load`` of the saved file, and through the command line), each fed the
inputs the backbone fed the Keras layer and compared with what the Keras layer gave.

The layers axisdot refuses are counted and named per architecture (``REFUSED``): a
refusal that appears or goes away fails the test. Needs ``keras-hub`` (installed with
``--no-deps``: its declared tensorflow-text dependency pulls all of TensorFlow)."""
from __future__ import annotations

import inspect
import json
import os

import numpy as np
import pytest
import torch

import axisdot
import axisdot.port
from axisdot.cli import main
from axisdot.port.live import walk_live

pytestmark = pytest.mark.slow  # subprocesses, compiles or whole models: seconds each

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="keras (a test dependency) builds the models")
keras_hub = pytest.importorskip("keras_hub", reason="keras-hub is not installed (pip install --no-deps keras-hub "
                                                    "tokenizers regex sentencepiece kagglehub)")
M = keras_hub.models
TEXT = dict(vocabulary_size=40, num_layers=1, hidden_dim=8, intermediate_dim=16)
GQA = dict(TEXT, num_query_heads=2, num_key_value_heads=1)

ARCHITECTURES = {
    "bert": (M.BertBackbone, dict(TEXT, num_heads=2, max_sequence_length=12)),
    "roberta": (M.RobertaBackbone, dict(TEXT, num_heads=2, max_sequence_length=12)),
    "gpt2": (M.GPT2Backbone, dict(TEXT, num_heads=2, max_sequence_length=12)),
    "opt": (M.OPTBackbone, dict(TEXT, num_heads=2, max_sequence_length=12)),
    "gpt_neox": (M.GPTNeoXBackbone, dict(TEXT, num_heads=2, max_sequence_length=12, rotary_percentage=0.5)),
    "llama": (M.LlamaBackbone, GQA),
    "mistral": (M.MistralBackbone, GQA),
    "qwen3": (M.Qwen3Backbone, dict(GQA, head_dim=4)),
    "gemma": (M.GemmaBackbone, dict(GQA, head_dim=4)),
    "falcon": (M.FalconBackbone, dict(TEXT, num_attention_heads=2)),
    "whisper": (M.WhisperBackbone, dict(TEXT, num_heads=2, num_mels=8, max_encoder_sequence_length=12,
                                        max_decoder_sequence_length=12)),
    "vit": (M.ViTBackbone, dict(image_shape=(8, 8, 3), patch_size=4, num_layers=1, num_heads=2, hidden_dim=8,
                                mlp_dim=16)),
    "xlnet": (M.XLNetBackbone, dict(TEXT, num_heads=2)),
    "moonshine": (M.MoonshineBackbone, dict(vocabulary_size=40, filter_dim=8, encoder_num_layers=1,
                                            decoder_num_layers=1, hidden_dim=8, intermediate_dim=16,
                                            encoder_num_heads=2, decoder_num_heads=2)),
}

#: per architecture, the classes of the contraction layers axisdot refuses, with the words of the reason
REFUSED: dict[str, dict[str, str]] = {
    "xlnet": {"TwoStreamRelativeAttention": "overrides call (in TwoStreamRelativeAttention), build"},
    "moonshine": {"MoonshineMultiHeadAttention": "overrides call (in MoonshineMultiHeadAttention)"},
}


#: inputs whose unknown length is not 6 (Moonshine's audio passes a convolution of width 127)
LENGTHS = {"encoder_input_values": 2000, "encoder_padding_mask": 2000}


def _inputs(backbone, gen):
    """Random inputs for each of the backbone's inputs: token ids under the vocabulary,
    padding masks of ones with a padded tail, floats elsewhere; unknown sizes 6."""
    out = {}
    for spec in backbone.inputs:
        shape = [2] + [LENGTHS.get(spec.name, 6) if n is None else n for n in tuple(spec.shape)[1:]]
        if "mask" in spec.name:
            mask = np.ones(shape, "int32")
            mask[1, -2:] = 0
            out[spec.name] = mask
        elif "int" in str(spec.dtype):
            out[spec.name] = gen.integers(0, 2 if "segment" in spec.name else 40, shape).astype("int32")
        else:
            out[spec.name] = gen.standard_normal(shape).astype("float32")
    return out


class Recorder:
    """Wraps each contraction layer's ``call`` on the live model and keeps, per layer
    path, the arguments of its first call (bound to names) and what it returned."""

    def __init__(self, model):
        classes = {"Dot": keras.layers.Dot, "EinsumDense": keras.layers.EinsumDense,
                   "MultiHeadAttention": keras.layers.MultiHeadAttention}
        self.layers = {path: (kind, layer) for path, kind, layer in walk_live(model, classes) if kind}
        self.calls = {}
        for path, (_, layer) in self.layers.items():
            layer.call = self._wrap(path, layer.call)

    def _wrap(self, path, call):
        signature = inspect.signature(call)

        def recorded(*args, **kwargs):
            out = call(*args, **kwargs)
            if path not in self.calls:
                bound = signature.bind(*args, **kwargs).arguments
                self.calls[path] = (dict(bound), out)
            return out

        return recorded


def _run(module, kind, arguments):
    """Call an axisdot module with a Keras layer's bound arguments."""
    args = {k: v for k, v in arguments.items() if k != "training" and v is not None}
    if kind == "Dot":
        return module(args["inputs"])
    if kind == "EinsumDense":
        return module(args["inputs"])
    query, value = args.pop("query"), args.pop("value")
    for name, tensor in (("query_mask", query), ("value_mask", value), ("key_mask", args.get("key"))):
        implicit = getattr(tensor, "_keras_mask", None)
        if implicit is not None and name not in args:
            args[name] = implicit
    return module.eval()(query, value, **args)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


_BUILT: dict = {}


def _build(name, tmp_path_factory):
    """The backbone (built, saved, run once with its calls recorded), once per session."""
    if name not in _BUILT:
        cls, config = ARCHITECTURES[name]
        keras.utils.set_random_seed(0)
        backbone = cls(**config)
        path = tmp_path_factory.mktemp(name) / f"{name}.keras"
        backbone.save(path)
        recorder = Recorder(backbone)
        backbone(_inputs(backbone, np.random.default_rng(0)))
        _BUILT[name] = (name, backbone, path, recorder)
    return _BUILT[name]


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def architecture(request, tmp_path_factory):
    return _build(request.param, tmp_path_factory)


def _compare(name, ported, recorder):
    checked = 0
    for layer in ported:
        kind, _ = recorder.layers[layer.name]
        arguments, expected = recorder.calls[layer.name]
        with torch.no_grad():
            got = _first(_run(layer.module, kind, arguments))
        np.testing.assert_allclose(got.numpy(), keras.ops.convert_to_numpy(_first(expected)), atol=1e-5, rtol=1e-5,
                                   err_msg=f"{name}: {layer.name}")
        checked += 1
    return checked


def test_every_contraction_layer_of_a_saved_backbone_is_ported_or_named(architecture):
    name, _, path, recorder = architecture
    ported = axisdot.port.load(path)
    found = {layer.name for layer in ported} | {item.name for item in ported.not_ported}
    assert found == set(recorder.layers), name
    refused = {item.class_name: item.reason for item in ported.not_ported}
    assert set(refused) == set(REFUSED.get(name, {})), (name, refused)
    for cls, words in REFUSED.get(name, {}).items():
        assert words in refused[cls], (name, refused[cls])
    assert _compare(name, ported, recorder) == len(recorder.layers) - len(ported.not_ported)


def test_from_keras_agrees_with_the_live_layer(architecture):
    name, _, _, recorder = architecture
    from axisdot.layers import Dot, EinsumDense, MultiHeadAttention

    classes = {"Dot": Dot, "EinsumDense": EinsumDense, "MultiHeadAttention": MultiHeadAttention}
    for path, (kind, layer) in recorder.layers.items():
        if type(layer).__name__ in REFUSED.get(name, {}):
            continue
        arguments, expected = recorder.calls[path]
        with torch.no_grad():
            got = _first(_run(classes[kind].from_keras(layer), kind, arguments))
        np.testing.assert_allclose(got.numpy(), keras.ops.convert_to_numpy(_first(expected)), atol=1e-5, rtol=1e-5,
                                   err_msg=f"{name}: {path}")


def test_the_command_lists_and_writes_every_ported_layer(architecture, tmp_path, capsys):
    name, _, path, recorder = architecture
    status = main(["port", str(path), "--json", "--weights", str(tmp_path / "out.pt")])
    data = json.loads(capsys.readouterr().out)
    assert status == (3 if REFUSED.get(name) else 0)
    names = {layer["name"] for layer in data["layers"]}
    assert names | {item["name"] for item in data["not_ported"]} == set(recorder.layers)
    states = torch.load(tmp_path / "out.pt", weights_only=True)
    assert set(states) == names
    for layer in axisdot.port.load(path):
        for key, value in layer.module.state_dict().items():
            torch.testing.assert_close(states[layer.name][key], value, rtol=0, atol=0)


def test_without_keras_the_custom_model_is_named_with_its_variables(architecture, capsys):
    name, backbone, path, _ = architecture
    ported = axisdot.port.load(path, keras=False)
    assert list(ported) == []
    [item] = ported.not_ported
    assert item.name == backbone.name and item.class_name == f"keras_hub>{type(backbone).__name__}"
    assert f"its weights hold {len(backbone.weights)} variables" in item.reason
    assert main(["port", str(path), "--no-keras"]) == 3
    assert f"not ported: 1 layer holding weights\n  {backbone.name}" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["gpt2", "opt", "whisper"])
def test_cached_decoding_steps_agree_with_keras(name, tmp_path_factory):
    """KerasHub's ``CachedMultiHeadAttention`` protocol, one decoding step: the query of one
    new token, a cache of keys' and values' projections, written at an index (the
    returned cache too) or used as it is."""
    _, _, path, recorder = _build(name, tmp_path_factory)
    cached = {p: layer for p, (kind, layer) in recorder.layers.items()
              if "cache" in inspect.signature(type(layer).call).parameters}
    assert cached, name
    ported = {layer.name: layer.module for layer in axisdot.port.load(path)}
    gen = torch.Generator().manual_seed(0)
    for where, layer in cached.items():
        shapes = layer.get_build_config()["shapes_dict"]
        query = torch.randn(2, 1, shapes["query_shape"][-1], generator=gen)
        value = torch.randn(2, 1, shapes["value_shape"][-1], generator=gen)
        cache = torch.randn(2, 2, 6, layer.num_heads, layer.key_dim, generator=gen)
        mask = torch.rand(2, 1, 6, generator=gen) > 0.3
        mask[:, :, 0] = True
        for index in (3, None):
            expected_out, expected_cache = layer(query, value, cache=cache, cache_update_index=index,
                                                 attention_mask=mask)
            with torch.no_grad():
                out, new_cache = ported[where].eval()(query, value, cache=cache, cache_update_index=index,
                                                      attention_mask=mask)
            np.testing.assert_allclose(out.numpy(), keras.ops.convert_to_numpy(expected_out), atol=1e-5,
                                       err_msg=f"{name}: {where}, index {index}")
            np.testing.assert_allclose(new_cache.numpy(), keras.ops.convert_to_numpy(expected_cache), atol=1e-6,
                                       err_msg=f"{name}: {where}, index {index}")


def test_a_custom_config_that_declares_more_than_its_file_stores_is_refused_not_built(tmp_path_factory, tmp_path):
    """A saved BERT whose config is edited to declare a 4 GiB token embedding: Keras would
    build (and fill) it before reading a weight. axisdot bounds Keras's build by what the
    weights file declares, so the file is refused; the run is capped besides, so that a
    regression fails the test instead of the machine."""
    import zipfile

    from test_port_untrusted import members, run_capped, write_zip

    _, _, path, _ = _build("bert", tmp_path_factory)
    items = members(path)
    config = json.loads(items["config.json"])
    config["config"].update(vocabulary_size=2**18, hidden_dim=2**12, intermediate_dim=2**12)
    items["config.json"] = json.dumps(config).encode()
    crafted = write_zip(tmp_path / "bert-huge.keras", items, zipfile.ZIP_STORED)
    result = run_capped("port", crafted, headroom=3 << 30, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "needs more memory than its weights file" in result.stderr and result.stderr.count("\n") == 1, \
        result.stderr[-3000:]


def test_a_custom_layer_inside_a_functional_model(tmp_path):
    """A KerasHub ``TransformerEncoder`` between plain layers: without Keras the plain
    EinsumDense is ported from the config and the encoder named with its variables; with
    Keras the encoder's attention is ported too, each equal to Keras's layer."""
    keras.utils.set_random_seed(1)
    tokens = keras.Input((5, 8), name="tokens")
    encoded = keras_hub.layers.TransformerEncoder(intermediate_dim=16, num_heads=2, name="encoder")(tokens)
    out = keras.layers.EinsumDense("abc,cd->abd", (None, 4), bias_axes="d", name="head")(encoded)
    model = keras.Model(tokens, out, name="m")
    model.save(tmp_path / "m.keras")
    encoder = model.get_layer("encoder")

    plain = axisdot.port.load(tmp_path / "m.keras", keras=False)
    assert [layer.name for layer in plain] == ["m/head"]
    [hidden] = plain.not_ported
    assert (hidden.name, hidden.class_name) == ("m/encoder", "keras_hub>TransformerEncoder")
    assert f"its weights hold {len(encoder.weights)} variables" in hidden.reason

    live = axisdot.port.load(tmp_path / "m.keras")
    assert {layer.name for layer in live} == {"m/head", "m/encoder/self_attention_layer"}
    assert live.not_ported == []
    recorder = Recorder(model)
    model(np.random.default_rng(2).standard_normal((2, 5, 8)).astype("float32"))
    assert _compare("functional", live, recorder) == 2
