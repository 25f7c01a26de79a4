"""Default paths for large einsum networks (issue 21): the FLOPs of axisdot's default
path and its one-time search, against opt_einsum's ``"auto"`` and ``"auto-hq"`` and
cotengra's ``HyperOptimizer`` (when installed), as opt_einsum counts FLOPs.

    python benchmarks/einsum_networks.py                  # every network
    python benchmarks/einsum_networks.py --only circuit --markdown out.md

The networks come from ``tests/test_einsum_networks.py``'s generators (random regular
graphs, closed lattices, 20-qubit circuit amplitudes). "search (s)" is axisdot's first
call planned on meta tensors (``axisdot.explain``: the path search, the layouts and
every step's build), in a fresh cache; later calls reuse the plan.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import opt_einsum
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import axisdot  # noqa: E402
from test_einsum_networks import circuit, lattice, regular_graph  # noqa: E402

NETWORKS = {
    "3-regular, 50 tensors, bond 6 (issue 21)": regular_graph(50, 3, 6, seed=5),
    "3-regular, 80 tensors, bond 4": regular_graph(80, 3, 4, seed=12),
    "4-regular, 30 tensors, bond 3": regular_graph(30, 4, 3, seed=8),
    "3-regular, 200 tensors, bond 2": regular_graph(200, 3, 2, seed=3),
    "6x6 lattice, bond 4": lattice(6, 6, 4),
    "8x8 lattice, bond 4": lattice(8, 8, 4),
    "circuit, 20 qubits, 204 tensors (issue 21)": circuit(20, 164),
    "circuit, 20 qubits, 297 tensors (issue 21)": circuit(20, 257),
}


def _flops(equation: str, shapes, path) -> int:
    return int(opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=[tuple(s) for s in path])[1].opt_cost)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def measure(equation: str, shapes, cotengra_seconds: float) -> dict:
    auto = _flops(equation, shapes, opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="auto")[0])
    hq, hq_s = _timed(lambda: opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="auto-hq")[0])
    axisdot.cache_clear()
    meta = [torch.empty(s, device="meta") for s in shapes]
    report, search_s = _timed(lambda: axisdot.explain(equation, *meta))
    row = {"tensors": len(shapes), "auto": auto, "default": _flops(equation, shapes, [s.operands for s in report.path]),
           "search_s": search_s, "hq": _flops(equation, shapes, hq), "hq_s": hq_s}
    try:
        import cotengra
    except ImportError:
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cotengra warns that kahypar is missing
        optimizer = cotengra.HyperOptimizer(max_repeats=128, max_time=cotengra_seconds, progbar=False)
        path, row["ctg_s"] = _timed(lambda: opt_einsum.contract_path(equation, *shapes, shapes=True,
                                                                     optimize=optimizer)[0])
    row["ctg"] = _flops(equation, shapes, path)
    return row


def table(rows: dict[str, dict]) -> str:
    lines = ["| network | tensors | opt_einsum `auto` | axisdot default | first call (s) | `auto-hq` | `auto-hq` (s) "
             "| cotengra | cotengra (s) | default ÷ cotengra |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        ctg = (f"{r['ctg']:.3g} | {r['ctg_s']:.1f} | {r['default'] / r['ctg']:.2f}" if "ctg" in r
               else "not installed | | ")
        lines.append(f"| {name} | {r['tensors']} | {r['auto']:.3g} | {r['default']:.3g} | {r['search_s']:.2f} "
                     f"| {r['hq']:.3g} | {r['hq_s']:.2f} | {ctg} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="networks whose name contains this")
    parser.add_argument("--cotengra-seconds", type=float, default=10.0)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = {}
    for name, (equation, shapes) in NETWORKS.items():
        if args.only in name:
            rows[name] = measure(equation, shapes, args.cotengra_seconds)
            print(name, rows[name], flush=True)
    text = table(rows)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
