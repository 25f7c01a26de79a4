"""The axisdot command line (exit codes, JSON, help) and `port` on files Keras itself wrote."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import axisdot
import axisdot.port
from axisdot.cli import main


def port_json(path) -> list:
    """The layers of ``axisdot port PATH --json``, run in this process, parsed."""
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["port", str(path), "--json"]) == 0
    data = json.loads(buffer.getvalue())
    assert data["not_ported"] == []
    return data["layers"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "axisdot", *args], capture_output=True, text=True, timeout=120)


def test_explain_prints_the_report(capsys):
    assert main(["explain", "--x", "32,64,10,128", "--y", "32,128,32,15", "--axes", "3,1"]) == 0
    out = capsys.readouterr().out
    assert "bijk,bklm->bijlm" in out and "(32, 64, 10, 32, 15)" in out and "torch.einsum" in out


@pytest.mark.parametrize(
    "argv, equation, output_shape",
    [
        (["--x", "4,3,5", "--y", "4,6,5", "--axes=-1"], "bij,bkj->bik", [4, 3, 6]),
        (["--x", "8,5,6", "--y", "8,6,5", "--axes", "1,2:2,1"], "bij,bji->b", [8, 1]),
        (["--x", "3,4,5", "--y", "4,5,6", "--mode", "tensordot", "--axes", "2"], "ijk,jkl->il", [3, 6]),
        (["--x", "2,3,4", "--y", "2,4", "--mode", "batch_dot"], "bij,bj->bi", [2, 3]),
        (["--x", "2,3", "--y", "2,3", "--normalize", "--axes", "1"], "bi,bi->b", [2, 1]),
        (["--x", "4,3,2", "--y", "2,4", "--mode", "dot_general", "--contract", "0:1", "--batch", "2:0"],
         "ijb,bi->bj", [2, 3]),
        (["bij,bjk,bkl->bil", "--shapes", "8,32,64", "8,64,16", "8,16,4"], "bij,bjk,bkl->bil", [8, 32, 4]),
        (["--x", "?,3,5", "--y", "None,5,4", "--axes", "2,1"], "bij,bjk->bik", [None, 3, 4]),
    ],
    ids=["negative", "multi-axis", "tensordot", "batch_dot-default", "normalize", "dot_general", "einsum", "unknown-batch"],
)
def test_explain_json_is_json_only(capsys, argv, equation, output_shape):
    assert main(["explain", *argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["equation"] == equation and data["output_shape"] == output_shape


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["explain", "--x", "3,4", "--y", "3,5", "--axes", "1"], "x axis 1 (size 4)"),
        (["explain", "--x", "3,4", "--y", "3,4", "--axes", "0"], "batch axis"),
        (["explain", "ij,jk->ik", "--shapes", "2,3", "4,5"], "letter 'j'"),
        (["port", "/nonexistent/model.keras"], "no such file"),
    ],
    ids=["size-mismatch", "batch-axis", "einsum-sizes", "missing-model"],
)
def test_bad_input_exits_2_with_the_error_and_no_traceback(capsys, argv, fragment):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert fragment in err and "Traceback" not in err and err.startswith("axisdot: error:")
    assert out == ""


@pytest.mark.slow
def test_a_bad_call_from_the_real_command_exits_2_without_a_traceback():
    result = run_cli("explain", "--x", "3,4", "--y", "3,5", "--axes", "1")
    assert result.returncode == 2 and result.stdout == ""
    assert "x axis 1 (size 4)" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [["explain", "--x", "3,a"], ["explain"], ["frobnicate"], ["explain", "ij->i"]],
                         ids=["not-a-number", "no-shapes", "unknown-command", "equation-without-shapes"])
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_help_shows_examples():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "axisdot explain --x 32,64,10,128 --y 32,128,32,15 --axes 3,1" in result.stdout
    assert "axisdot port model.keras" in result.stdout


@pytest.mark.slow
def test_the_console_script_is_installed():
    import shutil

    script = shutil.which("axisdot")
    assert script is not None, "pip install -e . installs the axisdot console script"
    result = subprocess.run([script, "explain", "--x", "2,3", "--y", "2,3", "--axes", "1", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and json.loads(result.stdout)["output_shape"] == [2, 1]


keras = pytest.importorskip("keras", reason="keras (a test dependency) writes the model files")


def build_model():
    """Several Dot layers: top level, in a nested functional model, in a Sequential wrapper."""
    L = keras.layers
    a, b = keras.Input((3, 5), name="a"), keras.Input((4, 5), name="b")
    inner = keras.Model([a, b], L.Dot(axes=(2, 2), name="scores")([a, b]), name="inner")
    s_in = keras.Input((3, 5))
    s_dot = L.Dot(axes=-1, normalize=True, name="self_sim")([L.Dense(5, name="proj")(s_in), s_in])
    seq = keras.Sequential([keras.Input((3, 5)), keras.Model(s_in, s_dot, name="selfsim_block"), L.Flatten()], name="seq")
    x, y, v = keras.Input((3, 5)), keras.Input((4, 5)), keras.Input((5,))
    top1 = L.Dot(axes=(1, 1), name="vec")([L.Dense(5, name="d1")(v), v])
    top2 = L.Dot(axes=(2, 1), name="attend")([inner([x, y]), L.Dense(6, name="d2")(y)])
    return keras.Model([x, y, v], [top1, top2, seq(x)], name="outer")


def keras_layer(model, path):
    *models, name = path.split("/")
    layer = model
    for m in models[1:]:
        layer = next(sub for sub in _sublayers(layer) if sub.name == m)
    return next(sub for sub in _sublayers(layer) if sub.name == name)


def _sublayers(model):
    for layer in model.layers:
        yield layer
        if layer.__class__.__name__ == "Sequential":
            yield from layer.layers


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = build_model()
    folder = tmp_path_factory.mktemp("models")
    model.save(folder / "model.keras")
    (folder / "model.json").write_text(model.to_json())
    return model, folder


@pytest.mark.parametrize("filename", ["model.keras", "model.json"])
def test_port_finds_every_dot_layer_with_its_shapes(saved, filename):
    _, folder = saved
    layers = {d["name"]: d for d in port_json(folder / filename)}
    assert set(layers) == {"outer/vec", "outer/inner/scores", "outer/seq/selfsim_block/self_sim", "outer/attend"}
    assert layers["outer/inner/scores"]["input_shapes"] == [[None, 3, 5], [None, 4, 5]]
    assert layers["outer/inner/scores"]["output_shape"] == [None, 3, 4]
    assert layers["outer/vec"]["output_shape"] == [None, 1]
    assert layers["outer/attend"]["input_shapes"] == [[None, 3, 4], [None, 4, 6]]
    assert layers["outer/seq/selfsim_block/self_sim"]["config"]["normalize"] is True
    assert layers["outer/vec"]["class_name"] == "Dot" and layers["outer/vec"]["config"]["axes"] == [1, 1]
    assert set(layers["outer/vec"]) == {"name", "class_name", "config", "input_shapes", "equations", "equation",
                                       "output_shape", "axisdot", "torch", "weights"}


def test_each_ported_line_gives_what_the_keras_layer_gives(saved):
    model, folder = saved
    gen = torch.Generator().manual_seed(0)
    for d in port_json(folder / "model.keras"):
        shapes = [[2 if n is None else n for n in s] for s in d["input_shapes"]]
        x, y = (torch.randn(s, generator=gen) for s in shapes)
        expected = keras.ops.convert_to_numpy(keras_layer(model, d["name"])([x, y]))
        via_torch = eval(d["torch"], {"torch": torch, "x": x, "y": y})  # noqa: S307 - the line users paste
        via_axisdot = eval(d["axisdot"], {"axisdot": axisdot})(x, y)  # noqa: S307
        np.testing.assert_allclose(via_torch.numpy(), expected, atol=1e-5, err_msg=d["name"])
        np.testing.assert_allclose(via_axisdot.numpy(), expected, atol=1e-5, err_msg=d["name"])
        if not d["config"]["normalize"]:
            via_equation = torch.einsum(d["equation"], x, y).reshape(expected.shape)
            np.testing.assert_allclose(via_equation.numpy(), expected, atol=1e-5, err_msg=d["name"])


@pytest.mark.slow
def test_port_text_output_lists_each_layer(saved):
    _, folder = saved
    result = run_cli("port", str(folder / "model.keras"))
    assert result.returncode == 0
    assert "outer/inner/scores" in result.stdout and "axisdot.Dot(axes=(2, 2), normalize=False)" in result.stdout
    assert "equation  bij,bkj->bik" in result.stdout


def test_port_says_plainly_when_shapes_are_unknown(tmp_path, capsys):
    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "Dot", "config": {"name": "d", "axes": [2, 1], "normalize": False}, "inbound_nodes": []}]}}
    (tmp_path / "m.json").write_text(json.dumps(config))
    [d] = axisdot.port.port(tmp_path / "m.json")
    assert d.input_shapes is None and d.equation is None and d.axisdot == "axisdot.Dot(axes=(2, 1), normalize=False)"
    assert main(["port", str(tmp_path / "m.json")]) == 0
    assert "unknown: the file records no input shapes" in capsys.readouterr().out


def test_port_of_a_model_without_dot_layers(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(tmp_path / "plain.keras")
    assert port_json(tmp_path / "plain.keras") == []


def test_port_refuses_a_file_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("not json")
    assert main(["port", str(tmp_path / "bad.json")]) == 2
    assert "not a .keras file" in capsys.readouterr().err


def test_cli_errors_speak_in_the_command_s_terms(capsys):
    from axisdot.cli import main

    assert main(["explain", "--x", "3,4", "--y", "3,4", "--axes", "0"]) == 2
    err = capsys.readouterr().err
    assert "in the command: axisdot explain --x 3,4 --y 3,4 --axes 0" in err
    assert "axisdot.explain(" not in err and "mode=" not in err
    assert main(["explain", "ij,jk->ik", "--shapes", "2,3", "4,5"]) == 2
    err = capsys.readouterr().err
    assert "in the command: axisdot explain 'ij,jk->ik' --shapes 2,3 4,5" in err and "mode=None" not in err


def test_unknown_sizes_are_not_called_ranks(capsys):
    from axisdot.cli import main

    assert main(["explain", "--x", "?,3,5", "--y", "None,5,4", "--axes", "2,1"]) == 0
    out = capsys.readouterr().out
    assert "give shapes, not ranks" not in out and "some sizes are unknown" in out
    assert "give shapes, not ranks" in str(axisdot.explain(3, 3, (2, 1)))


def test_explain_takes_max_memory_for_an_einsum(capsys):
    argv = ["explain", "ab,cbe,ae->ac", "--shapes", "2000,100", "20,100,100", "2000,100", "--max-memory", "4MiB"]
    assert main(argv) == 0
    memory = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("memory"))
    peak = int(memory.split("peak of temporaries")[1].split("bytes")[0].replace(",", ""))
    assert peak <= 4 * 2**20 and "sliced" in memory
    assert main(argv[:-2] + ["--max-memory", "lots"]) == 2
    assert "max_memory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["explain", "--x", "2,3", "--y", "2,3", "--max-memory", "1MiB"])
    assert info.value.code == 2 and "applies to an einsum equation" in capsys.readouterr().err
