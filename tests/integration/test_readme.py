"""The README, run: its Python blocks are executed in order in one namespace (a ```python
block followed by a ```text block must print that text), its ```pycon blocks are run as
doctests, its ```console blocks of `axisdot` commands are run and their output compared,
and the example's output it quotes is the example's output. ```sh blocks (installs,
`make`) are not run here: CI runs them."""
from __future__ import annotations

import contextlib
import doctest
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import axisdot

pytestmark = pytest.mark.slow  # subprocesses, compiles or whole models: seconds each

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```\n", re.S | re.M)

pytest.importorskip("keras", reason="the README writes a Keras model to port")


def blocks() -> list[tuple[str, str, int]]:
    """(language, text, line number) of every fenced block, in order."""
    return [(m.group(1), m.group(2), README.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(README)]


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def run_console(text: str) -> list[tuple[str, str, str]]:
    """(command, expected output, actual output) for each `$ axisdot ...` of a block."""
    from axisdot.cli import main

    results = []
    chunks = re.split(r"^\$ ", text, flags=re.M)[1:]
    for chunk in chunks:
        command, _, expected = chunk.partition("\n")
        argv = command.split()[1:]
        argv = [a.strip('"') for a in argv]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            axisdot.cache_clear()
            code = main(argv)
        assert code == 0, f"$ {command} exited {code}"
        results.append((command, expected, out.getvalue()))
    return results


def test_every_block_of_the_readme_runs_and_shows_what_it_prints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    namespace: dict = {"__name__": "readme"}
    items = blocks()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    checked = {"python": 0, "pycon": 0, "console": 0}
    skip_next_console = False
    for index, (language, text, line) in enumerate(items):
        needs = re.match(r"# needs (\w+)", text)
        if language == "python" and needs and importlib.util.find_spec(needs.group(1)) is None:
            skip_next_console = True  # an optional package's example, and the command run on what it wrote
            continue
        if language == "console" and skip_next_console:
            skip_next_console = False
            continue
        if language == "python":
            out = io.StringIO()
            axisdot.cache_clear()
            with contextlib.redirect_stdout(out):
                exec(compile(text, f"README.md:{line}", "exec"), namespace)  # noqa: S102
            follower = items[index + 1] if index + 1 < len(items) else None
            if follower is not None and follower[0] == "text" and out.getvalue():
                assert _lines(out.getvalue()) == _lines(follower[1]), f"README.md:{line} prints otherwise"
            checked["python"] += 1
        elif language == "pycon":
            test = doctest.DocTestParser().get_doctest(text, namespace, f"README.md:{line}", "README.md", line)
            result = runner.run(test, out=lambda s: sys.stdout.write(s))
            assert result.failed == 0, f"README.md:{line}: {result.failed} example(s) failed (see the output above)"
            namespace.update(test.globs)
            checked["pycon"] += 1
        elif language == "console":
            for command, expected, actual in run_console(text):
                assert _lines(actual) == _lines(expected), f"README.md:{line}: $ {command} prints otherwise"
            checked["console"] += 1
    assert checked["python"] >= 4 and checked["pycon"] >= 4 and checked["console"] >= 2, checked


def test_the_example_prints_what_the_readme_quotes():
    quoted = next(text for language, text, _ in blocks() if language == "text" and text.startswith("1. axes=-1"))
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "keras_article.py")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert _lines(result.stdout) == _lines(quoted)


def test_the_readme_s_commands_are_the_makefile_s():
    makefile = (ROOT / "Makefile").read_text()
    assert "make example" in README and "make test" in README
    assert 'pip install -q -e ".[test]"' in makefile and "KERAS_BACKEND=torch $(PYTHON) -m pytest" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci  # CI runs the README's test command


def test_the_benchmark_command_in_the_readme_writes_where_it_is_told(tmp_path):
    command = next(line for language, text, _ in blocks() if language == "sh"
                   for line in text.splitlines() if line.startswith("python benchmarks/run.py"))
    assert "benchmarks/out/" in command and "benchmarks/sweep.png" not in command.split("--chart")[-1]
    args = command.split()[2:] + ["--quick", "--rounds", "1", "--min-time", "0.0005", "--only", "(8,2,2)"]
    args = [a.replace("benchmarks/out/", f"{tmp_path}/out/") for a in args]
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), *args], capture_output=True,
                            text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "table.md").exists()
