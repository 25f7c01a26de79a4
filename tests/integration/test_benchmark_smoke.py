"""The benchmark suite's smoke mode still runs, prints every group's table and writes its
files (no timing is judged)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses, compiles or whole models: seconds each

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "run.py"

SMALL_CASES = (
    "(64,32)x(64,32) axes=1",
    "(4,3,5)x(4,6,5) axes=(2,2)",
    "(4,6,5)x(4,5) axes=(2,1)",
    "batch_dot (8,2,2)x(8,2,2) axes=(2,1)",
    "tensordot (3,4,5)x(4,5,6) axes=2",
    "dot_general (2,3,4)x(2,4,5) contract=((2,),(1,)) batch=((0,),(0,))",
    "einsum bij,jk->bik (2,8,16)x(16,16)",
    "Dot module (8,2,2)x(8,2,2) axes=(2,1)",
)
#: the groups --quick runs (compile and import are left out of it, and say so)
QUICK_GROUPS = ("small", "large", "sweep", "sizes", "cold", "n-ary", "layers")


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERAS_BACKEND="torch")
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=str(ROOT))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "fresh" / "out"  # folders that do not exist yet
    files = {"markdown": out / "table.md", "json": out / "results.json", "chart": out / "charts" / "sweep.png"}
    result = run("--quick", "--rounds", "1", "--min-time", "0.0005", "--markdown", str(files["markdown"]),
                 "--json", str(files["json"]), "--chart", str(files["chart"]))
    return result, files


def test_the_quick_run_exits_0_and_its_first_line_is_the_small_table_header(quick):
    result, _ = quick
    assert result.returncode == 0, result.stderr[-3000:]
    head = result.stdout.splitlines()[0]
    assert head.startswith("| small | axisdot |")
    for column in ("axisdot", "÷ hand-written", "÷ torch.einsum", "÷ opt_einsum", "÷ naive broadcast"):
        assert column in head
    assert head.index("÷ hand-written") < head.index("÷ torch.einsum")  # the hand-written call comes first


def test_the_quick_run_prints_every_small_case_and_every_group_table(quick):
    result, _ = quick
    out = result.stdout
    for name in SMALL_CASES:
        assert f"| {name} |" in out, name
    headers = [line for line in out.splitlines() if line.startswith("| ") and "| axisdot |" in line]
    assert [h.split("|")[1].strip() for h in headers] == list(QUICK_GROUPS)
    assert "ij,jk,kl->il on 8x8" in out and "MPS norm" in out and "4x4 lattice" in out
    assert "vector dot (64,1024)x(64,1024) axes=1" in out and "÷ faster hand" in out
    assert "EinsumDense" in out and "MultiHeadAttention" in out
    assert "compile and import groups (--quick)" in out


def test_the_quick_run_writes_markdown_json_and_chart_into_new_folders(quick):
    result, files = quick
    assert result.returncode == 0, result.stderr[-3000:]
    text = files["markdown"].read_text()
    assert text.startswith("# axisdot benchmark")
    for group in QUICK_GROUPS:
        assert f"## {group}\n" in text
        assert f"| {group} | axisdot |" in text
    assert "torch" in text and "opt_einsum" in text and "Python" in text

    data = json.loads(files["json"].read_text())
    env = data["environment"]
    for key in ("date", "device", "device_name", "threads", "python", "torch", "opt_einsum"):
        assert env[key] not in (None, ""), key
    cases = data["cases"]
    assert {c["group"] for c in cases} == set(QUICK_GROUPS)
    small = {c["case"]: c for c in cases if c["group"] == "small"}
    assert set(small) == set(SMALL_CASES)
    first = small["(4,3,5)x(4,6,5) axes=(2,2)"]
    assert first["median_s"]["axisdot"] > 0 and first["median_s"]["hand-written"] > 0
    assert first["ratios"]["hand-written"] == pytest.approx(
        first["median_s"]["axisdot"] / first["median_s"]["hand-written"])
    mps = next(c for c in cases if c["case"].startswith("MPS norm"))
    assert mps["facts"]["flops"] > 0 and mps["facts"]["largest_intermediate"] > 0
    sweep = next(c for c in cases if c["case"].startswith("vector dot (512,1024)"))
    assert sweep["ratios"]["faster hand"] == pytest.approx(max(sweep["ratios"]["mul+sum"], sweep["ratios"]["bmm"]))

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "no chart" in result.stderr
    else:
        assert files["chart"].stat().st_size > 0


def test_cuda_without_cuda_is_skipped_cleanly(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the skip path does not apply")
    result = run("--device", "cuda", "--quick", "--markdown", str(tmp_path / "t.md"), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CUDA is not available: skipped" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "t.md").exists()
