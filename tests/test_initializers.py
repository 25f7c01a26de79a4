"""Keras's initializers in axisdot (issue 20): each against Keras's own on the same shape
(mean, standard deviation, bounds: fixed seeds, tolerances many standard errors wide),
the fans against Keras's ``compute_fans`` and Keras's EinsumDense, the layers' kernels
against Keras's layers' kernels, ``from_keras`` of layers Keras initialized with
TruncatedNormal / RandomNormal / VarianceScaling, configs, and every refusal."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import axisdot
from axisdot import EinsumDense, MultiHeadAttention
from axisdot.layers import initializers

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="keras (a test dependency) is the oracle here")
from keras.src.initializers.random_initializers import compute_fans as keras_compute_fans  # noqa: E402
from keras.src.layers.core.einsum_dense import _analyze_einsum_string  # noqa: E402

SHAPE = (64, 32, 16)  # 32768 draws: the std's standard error is 0.4 %, the mean's 0.6 % of the std


def _keras_values(config, shape=SHAPE, seed=11):
    config = {"class_name": config["class_name"], "config": {**config.get("config", {})}}
    if config["class_name"] not in ("Constant", "Zeros", "Ones", "Identity"):
        config["config"]["seed"] = seed
    return np.asarray(keras.initializers.get(config)(shape, dtype="float64"))


def _mine(config, shape=SHAPE, seed=12, dtype=torch.float64):
    config = {"class_name": config["class_name"], "config": {**config.get("config", {})}}
    if config["class_name"] not in ("Constant", "Zeros", "Ones", "Identity"):
        config["config"]["seed"] = seed
    return initializers.get(config).fill_(torch.empty(shape, dtype=dtype)).numpy()


def _vs(scale, mode, distribution):
    return {"class_name": "VarianceScaling", "config": {"scale": scale, "mode": mode, "distribution": distribution}}


RANDOM = {
    "RandomNormal": {"class_name": "RandomNormal", "config": {"mean": 0.3, "stddev": 0.2}},
    "TruncatedNormal": {"class_name": "TruncatedNormal", "config": {"mean": -0.1, "stddev": 0.02}},
    "RandomUniform": {"class_name": "RandomUniform", "config": {"minval": -0.2, "maxval": 0.5}},
    **{f"VarianceScaling-{m}-{d}": _vs(2.5, m, d) for m in ("fan_in", "fan_out", "fan_avg")
       for d in ("truncated_normal", "untruncated_normal", "uniform")},
    "VarianceScaling-normal-alias": _vs(0.5, "fan_avg", "normal"),
    **{name: {"class_name": name} for name in ("GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
                                               "LecunUniform", "LecunNormal")},
}

BOUNDED = {"TruncatedNormal", "RandomUniform", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
           "LecunUniform", "LecunNormal"}


def _bounded(name):
    return name in BOUNDED or name.endswith(("-uniform", "-truncated_normal", "-normal-alias"))


@pytest.mark.parametrize("name", list(RANDOM))
def test_each_random_initializer_draws_keras_s_distribution(name):
    theirs, mine = _keras_values(RANDOM[name]), _mine(RANDOM[name])
    spread = theirs.std()
    assert abs(mine.mean() - theirs.mean()) < 0.05 * spread, (mine.mean(), theirs.mean())
    assert abs(mine.std() / spread - 1) < 0.03, (mine.std(), spread)
    centred_mine, centred_theirs = np.abs(mine - mine.mean()), np.abs(theirs - theirs.mean())
    q_mine, q_theirs = np.quantile(centred_mine, 0.99), np.quantile(centred_theirs, 0.99)
    assert abs(q_mine / q_theirs - 1) < 0.04, (q_mine, q_theirs)  # the tails' width: truncation shows here
    if _bounded(name):  # uniform or cut at two standard deviations: never beyond Keras's own range
        assert mine.min() >= theirs.min() - 1e-3 * spread and mine.max() <= theirs.max() + 1e-3 * spread
    else:
        assert centred_mine.max() > 3.5 * spread  # a normal's tail is not cut


def test_truncated_normals_are_cut_at_two_standard_deviations():
    mine = _mine({"class_name": "TruncatedNormal", "config": {"mean": 1.0, "stddev": 0.5}})
    assert mine.min() >= 0.0 and mine.max() <= 2.0 and mine.min() < 0.01 and mine.max() > 1.99
    scaled = _mine(_vs(1.0, "fan_in", "truncated_normal"), shape=(400, 300))
    assert abs(scaled.std() - (1 / 400) ** 0.5) < 0.02 * (1 / 400) ** 0.5  # Keras divides by 0.8796...


@pytest.mark.parametrize("shape", [(96, 40), (40, 96), (6, 5, 16), (3, 4, 48)], ids=str)
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal_is_orthogonal_over_keras_s_rows_and_columns(shape, gain):
    config = {"class_name": "Orthogonal", "config": {"gain": gain}}
    for values in (_keras_values(config, shape), _mine(config, shape)):  # both: Keras's layout is what's checked
        w = values.reshape(-1, shape[-1])
        gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        np.testing.assert_allclose(gram, gain ** 2 * np.eye(len(gram)), atol=1e-10)


@pytest.mark.parametrize("config, shape", [
    ({"class_name": "Constant", "config": {"value": 0.25}}, (3, 4, 5)),
    ({"class_name": "Constant", "config": {"value": -2}}, (7,)),
    ({"class_name": "Zeros"}, (3, 4)), ({"class_name": "Ones"}, (2, 3, 4)),
    ({"class_name": "Identity", "config": {"gain": 3.0}}, (4, 6)),
    ({"class_name": "Identity"}, (5, 2)),
], ids=["constant", "constant-int", "zeros", "ones", "identity-gain", "identity-tall"])
def test_each_constant_initializer_equals_keras_s_values(config, shape):
    np.testing.assert_array_equal(_mine(config, shape), _keras_values(config, shape))


def test_a_seed_makes_the_draw_reproducible():
    config = {"class_name": "GlorotNormal", "config": {"seed": 5}}
    a, b = (initializers.get(config).fill_(torch.empty(30, 20)) for _ in range(2))
    c = initializers.get({"class_name": "GlorotNormal", "config": {"seed": 6}}).fill_(torch.empty(30, 20))
    assert torch.equal(a, b) and not torch.equal(a, c)
    one = EinsumDense("abc,cd->abd", (None, 8), kernel_initializer=config, input_shape=(None, 3, 4))
    two = EinsumDense("abc,cd->abd", (None, 8), kernel_initializer=config, input_shape=(None, 3, 4))
    assert torch.equal(one.kernel, two.kernel)


@pytest.mark.parametrize("shape, axes", [
    ((), None), ((7,), None), ((5, 9), None), ((3, 5, 9), None), ((2, 3, 5, 9), None),
    ((16, 4, 8), ((0,), (1, 2))), ((4, 8, 16), ((0, 1), (2,))), ((2, 3, 5, 7), ((1, 3), (0, 2))),
], ids=str)
def test_fans_are_keras_s(shape, axes):
    kw = {} if axes is None else {"input_axes": axes[0], "output_axes": axes[1]}
    assert initializers.compute_fans(shape, **kw) == keras_compute_fans(shape, **kw)


EQUATIONS = [  # (equation, output_shape, input_shape): the kernel's input and output axes
    ("ab,bc->ac", (8,), (None, 5)), ("abc,cde->abde", (None, 4, 8), (None, 3, 16)),
    ("abcd,cde->abe", (None, 7), (None, 2, 4, 5)), ("...b,bc->...c", (6,), (None, 3, 4)),
    ("ab...,bc->ac...", (6,), (None, 4, 3)), ("abc,bcd->abd", (3, 6), (None, 3, 4)),
    ("abcd,ebd->abce", (2, 3, 5), (None, 2, 3, 4)),  # b: in the input and the output, an output axis to Keras
]


@pytest.mark.parametrize("equation, output_shape, input_shape", EQUATIONS, ids=[e[0] for e in EQUATIONS])
def test_an_einsum_dense_kernel_s_axes_are_those_keras_passes_its_initializer(equation, output_shape, input_shape):
    spec = EinsumDense(equation, output_shape).analyze(input_shape)
    kernel_shape, _, _, input_axes, output_axes = _analyze_einsum_string(equation, None, input_shape, output_shape)
    assert spec.kernel_shape == tuple(kernel_shape)
    assert (spec.input_axes, spec.output_axes) == (tuple(input_axes), tuple(output_axes))


def _kernel(layer):
    raw = getattr(layer, "_kernel", None)
    return np.asarray(raw if raw is not None else layer.kernel)


LAYER_INITIALIZERS = {
    "glorot_uniform": "glorot_uniform",
    "VarianceScaling-fan_out-uniform": _vs(2.0, "fan_out", "uniform"),
    "VarianceScaling-fan_in-truncated": _vs(1.0, "fan_in", "truncated_normal"),
    "he_normal": "he_normal",
    "TruncatedNormal": {"class_name": "TruncatedNormal", "config": {"stddev": 0.02}},
}


@pytest.mark.parametrize("name", list(LAYER_INITIALIZERS))
def test_an_einsum_dense_kernel_is_drawn_as_keras_s_layer_draws_it(name):
    """The kernel (300, 16, 8) has fans 300 and 128 over its axes, against 4800 and 2400
    over its shape alone: a layer that ignored the axes would be 4-6x off."""
    init = LAYER_INITIALIZERS[name]
    args = ("abc,cde->abde", (None, 16, 8))
    theirs = keras.layers.EinsumDense(*args, kernel_initializer=init, dtype="float64")
    theirs.build((None, 2, 300))
    torch.manual_seed(3)
    mine = EinsumDense(*args, kernel_initializer=init, input_shape=(None, 2, 300), dtype=torch.float64)
    k_theirs, k_mine = _kernel(theirs), mine.kernel.detach().numpy()
    assert abs(k_mine.std() / k_theirs.std() - 1) < 0.03, (k_mine.std(), k_theirs.std())
    q_mine, q_theirs = np.quantile(np.abs(k_mine), 0.99), np.quantile(np.abs(k_theirs), 0.99)
    assert abs(q_mine / q_theirs - 1) < 0.04, (q_mine, q_theirs)  # Keras's truncated normal may pass 2 sigma


@pytest.mark.parametrize("name", ["glorot_uniform", "VarianceScaling-fan_out-uniform", "TruncatedNormal"])
def test_multi_head_attention_draws_each_projection_as_keras_s(name):
    init = LAYER_INITIALIZERS[name]
    theirs = keras.layers.MultiHeadAttention(8, 32, kernel_initializer=init, bias_initializer="ones",
                                             dtype="float64")
    q = torch.zeros(1, 3, 64, dtype=torch.float64)
    theirs(q, q)
    torch.manual_seed(4)
    mine = MultiHeadAttention(8, 32, kernel_initializer=init, bias_initializer="ones", query_shape=(None, 3, 64),
                              dtype=torch.float64)
    for sub in ("query_dense", "key_dense", "value_dense", "output_dense"):
        k_theirs, k_mine = _kernel(getattr(theirs, sub)), getattr(mine, sub).kernel.detach().numpy()
        assert k_mine.shape == k_theirs.shape
        assert abs(k_mine.std() / k_theirs.std() - 1) < 0.04, (sub, k_mine.std(), k_theirs.std())
        np.testing.assert_array_equal(getattr(mine, sub).bias.detach().numpy(), np.asarray(getattr(theirs, sub).bias))
    assert not torch.equal(mine.query_dense.kernel, mine.key_dense.kernel)  # each projection draws its own


KERAS_CONFIGS = {
    "TruncatedNormal": {"class_name": "TruncatedNormal", "config": {"mean": 0.0, "stddev": 0.02, "seed": 7}},
    "RandomNormal": {"class_name": "RandomNormal", "config": {"stddev": 0.1}},
    "VarianceScaling": _vs(0.1, "fan_avg", "untruncated_normal"),
    "Orthogonal": {"class_name": "Orthogonal", "config": {"gain": 2.0}},
}


@pytest.mark.parametrize("name", list(KERAS_CONFIGS))
def test_from_keras_ports_layers_keras_initialized_with_any_initializer(name):
    init = KERAS_CONFIGS[name]
    dense = keras.layers.EinsumDense("abc,cde->abde", (None, 4, 8), bias_axes="de", kernel_initializer=init,
                                     bias_initializer=init if name != "Orthogonal" else "zeros")
    dense.build((None, 5, 16))
    mha = keras.layers.MultiHeadAttention(2, 4, kernel_initializer=init)
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(8))
    mha(x, x)
    for theirs, port, args in ((dense, EinsumDense, (x,)), (mha, MultiHeadAttention, (x, x))):
        mine = port.from_keras(theirs)
        np.testing.assert_allclose(mine(*args).detach().numpy(), np.asarray(theirs(*args).detach()), rtol=1e-6,
                                   atol=1e-6)
        config = mine.get_config()["kernel_initializer"]
        assert keras.initializers.deserialize(config).get_config() == \
            keras.initializers.deserialize(theirs.get_config()["kernel_initializer"]).get_config()
        again = port.from_config(mine.get_config())
        assert again.get_config() == mine.get_config()


def test_configs_keep_plain_names_and_serialize_arguments_as_keras_does():
    layer = EinsumDense("ab,bc->ac", 4, kernel_initializer="HeNormal", bias_initializer="ones")
    assert (layer.get_config()["kernel_initializer"], layer.get_config()["bias_initializer"]) == ("he_normal", "ones")
    mha = MultiHeadAttention(2, 4, kernel_initializer=keras.initializers.VarianceScaling(scale=3.0, seed=2))
    config = mha.get_config()["kernel_initializer"]
    assert config["class_name"] == "VarianceScaling" and config["config"]["scale"] == 3.0
    assert config["config"]["seed"] == 2
    assert keras.initializers.deserialize(config).get_config()["scale"] == 3.0
    unset = EinsumDense("ab,bc->ac", 4, kernel_initializer=None, bias_axes="c", bias_initializer=None)
    assert unset.get_config()["kernel_initializer"] is None


def test_none_is_keras_s_add_weight_default_glorot_uniform_over_the_weight_s_shape():
    torch.manual_seed(9)
    layer = EinsumDense("abc,cde->abde", (None, 64, 64), bias_axes="de", kernel_initializer=None,
                        bias_initializer=None, input_shape=(None, 2, 1000))
    fan_in, fan_out = 64 * 1000, 64 * 1000  # compute_fans of (1000, 64, 64), no axes: 1000 is the receptive field
    limit = (6 / (fan_in + fan_out)) ** 0.5
    k = layer.kernel.detach()
    assert k.abs().max() <= limit and k.abs().max() > 0.99 * limit
    bias_limit = (6 / (64 + 64)) ** 0.5  # Keras's bias with no initializer: glorot uniform over (64, 64)
    assert layer.bias.abs().max() <= bias_limit and layer.bias.abs().max() > 0.99 * bias_limit


@pytest.mark.parametrize("make, error, fragments", [
    (lambda: EinsumDense("ab,bc->ac", 4, kernel_initializer="glorot"), axisdot.ArgumentError,
     ["kernel_initializer='glorot'", "glorot_uniform", "truncated_normal"]),
    (lambda: EinsumDense("ab,bc->ac", 4, kernel_initializer="STFT"), axisdot.ArgumentError, ["STFT", "scipy"]),
    (lambda: EinsumDense("ab,bc->ac", 4, kernel_initializer={"class_name": "TruncatedNormal",
                                                             "config": {"std": 0.1}}),
     axisdot.ArgumentError, ["TruncatedNormal takes", "'std'", "stddev"]),
    (lambda: MultiHeadAttention(2, 4, kernel_initializer=_vs(0.0, "fan_in", "uniform")), axisdot.ArgumentError,
     ["MultiHeadAttention.kernel_initializer", "scale=0.0", "positive"]),
    (lambda: MultiHeadAttention(2, 4, kernel_initializer=_vs(1.0, "fan_sum", "uniform")), axisdot.ArgumentError,
     ["mode='fan_sum'", "fan_avg"]),
    (lambda: MultiHeadAttention(2, 4, bias_initializer=_vs(1.0, "fan_in", "gamma")), axisdot.ArgumentError,
     ["bias_initializer", "distribution='gamma'", "untruncated_normal"]),
    (lambda: EinsumDense("ab,bc->ac", 4, kernel_initializer={"class_name": "RandomNormal",
                                                             "config": {"seed": 1.5}}),
     axisdot.ArgumentError, ["seed=1.5", "None or an int"]),
    (lambda: EinsumDense("ab,bc->ac", 4, kernel_initializer={"class_name": "Constant", "config": {"value": "a"}}),
     axisdot.ArgumentError, ["value='a'", "finite number"]),
    (lambda: EinsumDense("ab,bc->ac", 4, kernel_initializer={"config": {}}), axisdot.ArgumentError,
     ["class_name"]),
    (lambda: EinsumDense("ab,bc->ac", 4, kernel_initializer=torch.nn.init.zeros_), axisdot.AxisdotTypeError,
     ["kernel_initializer must be a Keras initializer", "torch.no_grad"]),
    (lambda: EinsumDense("abc,cde->abde", (None, 2, 3), kernel_initializer="identity", input_shape=(None, 4, 5)),
     axisdot.ArgumentError, ["kernel_initializer", "Identity fills 2-D", "(5, 2, 3)"]),
    (lambda: EinsumDense("ab,bc->ac", 4, bias_axes="c", bias_initializer="orthogonal", input_shape=(None, 3)),
     axisdot.ArgumentError, ["bias_initializer", "Orthogonal", "(4,)"]),
    (lambda: EinsumDense("ab,bc->ac", 4, kernel_initializer={"class_name": "GlorotNormal",
                                                             "config": {"input_axes": [0], "output_axes": [2]}},
                         input_shape=(None, 3)),
     axisdot.ArgumentError, ["axes (2,)", "(3, 4)"]),
    (lambda: MultiHeadAttention(2, 4, kernel_regularizer="l2"), axisdot.ArgumentError,
     ["kernel_regularizer='l2'", "no meaning in PyTorch", "weight_decay"]),
    (lambda: MultiHeadAttention(2, 4, activity_regularizer={"class_name": "L1"}), axisdot.ArgumentError,
     ["activity_regularizer", "output to your loss"]),
    (lambda: MultiHeadAttention(2, 4, bias_constraint="non_neg"), axisdot.ArgumentError,
     ["bias_constraint='non_neg'", "after each optimizer step", "parametrize"]),
    (lambda: EinsumDense("ab,bc->ac", 4, kernel_constraint="max_norm"), axisdot.ArgumentError,
     ["EinsumDense('ab,bc->ac')", "kernel_constraint"]),
], ids=["unknown-name", "stft", "unknown-argument", "scale", "mode", "distribution", "seed", "constant-value",
        "no-class-name", "a-torch-function", "identity-rank", "orthogonal-rank", "axes-range", "regularizer",
        "activity-regularizer", "constraint", "einsum-dense-constraint"])
def test_initializer_and_training_argument_refusals_are_clear(make, error, fragments):
    with pytest.raises(error) as info:
        make()
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_every_keras_initializer_but_stft_is_read():
    from keras.src.initializers import ALL_OBJECTS_DICT

    names = {name for name, cls in ALL_OBJECTS_DICT.items() if cls.__name__ not in ("Initializer", "STFT")}
    for name in names:
        assert initializers.get(name).name == ALL_OBJECTS_DICT[name].__name__, name


def test_an_initializer_made_by_hand_is_checked_and_completed():
    made = initializers.get(initializers.Initializer("GlorotUniform"))
    assert made.arguments == {"seed": None, "input_axes": None, "output_axes": None}
    assert made.fill_(torch.empty(3, 4)).abs().max() <= (6 / 7) ** 0.5
    with pytest.raises(axisdot.ArgumentError, match="'Glorot' is not a Keras initializer"):
        EinsumDense("ab,bc->ac", 4, kernel_initializer=initializers.Initializer("Glorot"))
    with pytest.raises(axisdot.ArgumentError, match="RandomNormal takes"):
        initializers.Initializer("RandomNormal", {"sigma": 1.0}).fill_(torch.empty(3))


def test_from_keras_ports_layers_trained_with_regularizers_and_constraints():
    """They shaped Keras's training; the trained weights are what the port copies."""
    training = {"kernel_regularizer": "l2", "bias_regularizer": "l1", "activity_regularizer": "l2",
                "kernel_constraint": "max_norm", "bias_constraint": "non_neg"}
    dense = keras.layers.EinsumDense("abc,cd->abd", (None, 6), bias_axes="d", **training)
    dense.build((None, 5, 16))
    mha = keras.layers.MultiHeadAttention(2, 4, **training)
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(10))
    mha(x, x)
    for theirs, port, args in ((dense, EinsumDense, (x,)), (mha, MultiHeadAttention, (x, x))):
        np.testing.assert_allclose(port.from_keras(theirs)(*args).detach().numpy(), np.asarray(theirs(*args).detach()),
                                   rtol=1e-6, atol=1e-6)
