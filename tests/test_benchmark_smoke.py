"""The benchmark suite's smoke mode still runs and prints its table (no timing is judged)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_smoke_run_prints_every_implementation_and_a_chart(tmp_path):
    chart, table = tmp_path / "sweep.png", tmp_path / "table.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--rounds", "1", "--min-time", "0.0005",
         "--markdown", str(table), "--chart", str(chart)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    head = result.stdout.splitlines()[0]
    for column in ("axisdot", "÷ torch.einsum", "÷ hand-written", "÷ opt_einsum", "÷ naive broadcast"):
        assert column in head
    assert "(4,3,5)x(4,6,5) axes=(2,2)" in result.stdout and "ij,jk,kl->il" in result.stdout
    assert table.read_text().startswith("| group | case |")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "no chart" in result.stderr
    else:
        assert chart.stat().st_size > 0
