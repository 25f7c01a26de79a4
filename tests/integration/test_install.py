"""What an install does to a machine: pytest without the testing extra, the plugin's entry
point, a silent import that loads no torch module torch does not, the compile
registration, a command line that answers --help without torch. Each in a fresh
interpreter."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # subprocesses, compiles or whole models: seconds each

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
