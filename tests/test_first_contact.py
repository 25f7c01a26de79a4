"""A new user's first hour (issue 10): installing axisdot never breaks pytest, importing it
is silent and cheap, the command line answers fast and in its own terms, Keras's call
forms work, and every refusal has the right class."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import axisdot

# numpy and hypothesis made impossible to import: a meta-path finder (pytest runs with
# --assert=plain below, so that its own import hook does not go first and find them)
BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("numpy", "hypothesis"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Block())
""")


def run_python(code: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_pytest_runs_an_unrelated_project_without_the_testing_extra(tmp_path):
    (tmp_path / "test_other.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    (tmp_path / "test_kit.py").write_text("def test_uses_the_kit(axisdot_strategies):\n    pass\n")
    # only the plugins a bare install has: ours (through its entry point) and pytest's own
    code = BLOCKER + textwrap.dedent("""
        import pytest
        sys.exit(pytest.main(["-q", "--assert=plain", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                              "-p", "no:benchmark", "-p", "no:randomly", "test_other.py"]))
    """)
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    # the plugin was loaded: its fixture exists, and fails with what to install
    code = code.replace('"test_other.py"', '"test_kit.py"')
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'pip install "axisdot[testing]"' in result.stdout


def test_the_plugin_is_loaded_through_its_entry_point_in_that_run(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_ok(request):\n    assert request.config.pluginmanager.has_plugin('axisdot')\n")
    code = BLOCKER + ("import pytest\nsys.exit(pytest.main(['-q', '--assert=plain', '-p', 'no:hypothesispytest', "
                      "'-p', 'no:benchmark', 'test_x.py']))")
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_axisdot_is_silent_without_numpy():
    result = run_python(BLOCKER + "import axisdot\nprint(axisdot.__version__)", "-W", "error")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    # and using it, once torch itself has been imported (torch warns about NumPy on its own)
    code = BLOCKER + textwrap.dedent("""
        import warnings
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
            import torch
        warnings.simplefilter("error")
        import axisdot
        x = torch.ones(2, 3)
        print(tuple(axisdot.dot(x, x, 1).shape), tuple(axisdot.einsum("ij,kj->ik", x, x).shape))
    """)
    result = run_python(code)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.strip() == "(2, 1) (2, 2)"


def test_importing_axisdot_loads_no_torch_module_that_torch_does_not():
    code = textwrap.dedent("""
        import sys
        import torch
        before = set(sys.modules)
        import axisdot
        x = torch.ones(2, 3)
        axisdot.dot(x, x, 1); axisdot.einsum("ij,jk,kl->il", x, x.T, x); axisdot.Dot(1)(x, x)
        axisdot.explain(x, x, 1); axisdot.einsum_expression("ij->", (2, 3)); axisdot.EinsumDense
        print(sorted(m for m in set(sys.modules) - before if m.split(".")[0] == "torch"))
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_torch_compile_registration_waits_for_dynamo_and_then_happens():
    code = textwrap.dedent("""
        import sys, torch, axisdot
        x = torch.ones(2, 3)
        axisdot.dot(x, x, 1)
        from axisdot import compiler
        assert "torch._dynamo" not in sys.modules and not compiler.registered()
        import torch._dynamo
        names = sorted(f.__name__ for f in compiler.registered())
        print(names)
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['batch_dot', 'dot', 'dot_general', 'einsum', 'tensordot']"


def test_help_and_usage_errors_do_not_import_torch():
    code = textwrap.dedent("""
        import sys
        from axisdot.cli import main
        for argv in (["--help"], ["explain", "--x", "3,a"], ["frobnicate"]):
            try:
                main(argv)
            except SystemExit:
                pass
        print("torch" in sys.modules)
    """)
    result = run_python(code)
    assert result.stdout.strip().endswith("False"), result.stdout + result.stderr


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


@pytest.mark.parametrize("call", [
    lambda x, y: axisdot.dot([x, y], axes=(2, 1)),
    lambda x, y: axisdot.dot([x, y], (2, 1)),
    lambda x, y: axisdot.dot((x, y), axes=(2, 1)),
    lambda x, y: axisdot.batch_dot([x, y], (2, 1)),
    lambda x, y: axisdot.batch_dot([x, y], axes=(2, 1)),
], ids=["dot-list-keyword", "dot-list-positional", "dot-tuple", "batch_dot-positional", "batch_dot-keyword"])
def test_keras_s_functional_form_takes_a_pair_of_inputs(call):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 4, 5, generator=gen)
    torch.testing.assert_close(call(x, y), axisdot.dot(x, y, (2, 1)))


def test_keras_s_functional_form_with_normalize():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 5, 4, generator=gen)
    expected = axisdot.dot(x, y, -1, normalize=True)
    torch.testing.assert_close(axisdot.dot([x, y], -1, True), expected)  # keras.layers.dot(inputs, axes, normalize)
    torch.testing.assert_close(axisdot.dot([x, y], axes=-1, normalize=True), expected)
    with pytest.raises(axisdot.OperandError, match=r"dot\(\[x, y\]"):
        axisdot.dot(x, axes=-1)  # one tensor, no y: say how to call it
    with pytest.raises(axisdot.OperandError, match="torch.Tensor"):
        axisdot.dot([[1.0, 2.0]], x, -1)  # data in a list is still not a tensor


def test_normalize_and_semantics_may_be_given_in_their_place():
    """``dot(x, y, axes, normalize)`` in the order of ``keras.layers.Dot(axes, normalize)``,
    and ``batch_dot(x, y, axes, semantics)``: the same as the keywords (plain parameters, so
    that CPython specializes the call)."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 5, 4, generator=gen)
    unit = lambda t: t / t.square().sum(-1, keepdim=True).sqrt()  # noqa: E731
    torch.testing.assert_close(axisdot.dot(x, y, -1, True), torch.bmm(unit(x), unit(y).mT))
    torch.testing.assert_close(axisdot.dot(x, y, -1, False), torch.bmm(x, y.mT))
    with pytest.raises(axisdot.AxisdotTypeError, match="normalize given twice"):
        axisdot.dot([x, y], -1, True, True)
    u, w = torch.randn(2, 3, 5, generator=gen), torch.randn(2, 3, 5, 4, generator=gen)  # CapsNet's shapes
    assert axisdot.batch_dot(u, w, (2, 2)).shape == (2, 3, 3, 4)
    torch.testing.assert_close(axisdot.batch_dot(u, w, (2, 2), "legacy"), torch.einsum("bik,bikj->bij", u, w))
    with pytest.raises(axisdot.ArgumentError, match="keras2"):
        axisdot.batch_dot(u, w, (2, 2), "keras2")


@pytest.mark.parametrize("call, cls, builtin", [
    (lambda: axisdot.dot(torch.ones(2, 3), torch.ones(2, 3), 1, normalize="cosine"), axisdot.ArgumentError, ValueError),
    (lambda: axisdot.dot(torch.ones(2, 3), torch.ones(2, 3), 1, normalize=2), axisdot.AxisdotTypeError, TypeError),
    (lambda: axisdot.batch_dot(torch.ones(2, 3), torch.ones(2, 3), 1, semantics="keras2"), axisdot.ArgumentError,
     ValueError),
    (lambda: axisdot.batch_dot(torch.ones(2, 3), torch.ones(2, 3), 1, semantics=3), axisdot.AxisdotTypeError, TypeError),
    (lambda: axisdot.explain((2, 3), (2, 3), 1, mode="matmul"), axisdot.ArgumentError, ValueError),
    (lambda: axisdot.explain((2, 3), (2, 3), 1, mode=3), axisdot.AxisdotTypeError, TypeError),
    (lambda: axisdot.einsum("ij,jk", torch.ones(2, 3), torch.ones(3, 4), optimize="fastest"), axisdot.ArgumentError,
     ValueError),
    (lambda: axisdot.einsum("ij,jk", torch.ones(2, 3), torch.ones(3, 4), optimize=2.5), axisdot.AxisdotTypeError,
     TypeError),
    (lambda: axisdot.einsum("i,i->", torch.ones(3, dtype=torch.uint16), torch.ones(3, dtype=torch.uint16)),
     axisdot.OperandError, TypeError),
], ids=["normalize-value", "normalize-type", "semantics-value", "semantics-type", "mode-value", "mode-type",
        "optimize-value", "optimize-type", "uint16"])
def test_a_value_not_allowed_is_a_value_error_and_a_wrong_type_a_type_error(call, cls, builtin):
    with pytest.raises(cls) as info:
        call()
    assert isinstance(info.value, axisdot.AxisdotError) and isinstance(info.value, builtin)


def test_a_dtype_torch_can_sum_alone_gives_torch_s_result():
    u = torch.arange(4).to(torch.uint16)
    assert torch.equal(axisdot.einsum("i->", u), torch.einsum("i->", u))  # int64, as torch sums it
