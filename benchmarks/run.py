"""axisdot's benchmark suite: every implementation timed side by side, interleaved, in
one process, reported as medians and ratios **axisdot ÷ other** (below 1: axisdot is
faster), never as lone absolute times.

    python benchmarks/run.py                  # the full suite (several minutes)
    python benchmarks/run.py --quick          # a smoke run (seconds), as CI does
    python benchmarks/run.py --only sweep     # the cases whose "group: name" holds the text
    python benchmarks/run.py --markdown benchmarks/out/table.md --json benchmarks/out/results.json \\
        --chart benchmarks/out/sweep.png
    python benchmarks/run.py --device cuda    # on a GPU, with float16 / bfloat16 variants

Each case is built just before it is measured, every implementation is first checked
to give the same result (torch.testing.assert_close), then each is timed with
torch.utils.benchmark, one block in turn, for --rounds interleaved rounds; the table
gives axisdot's median time and the ratio of the medians for every other column.

Groups (one table each):
  small    per-call overhead on tiny inputs against the hand-written torch call
  large    big two-operand contractions (on cuda also in float16 and bfloat16)
  sweep    ratio against size: batch-matmul, vector dots (also a memory-bound one)
  sizes    300 distinct sizes, one call each, plan caches cleared first
  cold     the first call of a pattern (a plan-cache miss)
  n-ary    chains, small n-ary, tensor networks (MPS, 2-D lattice) with path costs
  layers   EinsumDense, MultiHeadAttention against Keras's layers and hand-written torch
  compile  torch.compile'd code, with graph facts (graphs, guards, generated code)
  import   import time (seconds, not ratios)

Threads: torch.utils.benchmark.Timer runs on one thread unless told otherwise (the
suite before this one measured on one thread without saying so); here every block
runs on torch's thread count, --threads N to set it. On a shared machine other
processes stall the parallel regions of a multi-threaded torch (on a busy 2-core VM
by a scheduler tick, ~8 ms, per call): use --threads 1 there.

Columns: "hand-written" is the torch call a person would write for that case;
"opt_einsum" is a precomputed opt_einsum.contract_expression, "opt_einsum.contract"
a plain opt_einsum.contract call (its path found on every call), both on the torch
backend; "keras Dot" / "keras.ops" / "keras layer" are Keras 3 on its torch backend;
"naive broadcast" is the broadcast-multiply-sum port (run only when its product fits
in --naive-limit-mb).

The suite in files: ``cases.py`` the groups' cases, ``harness.py`` what a case is, the
checks and the interleaved timing, ``report.py`` the tables and the files, this file
the command line. ``port_memory.py`` measures porting's peak memory apart.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch  # noqa: E402
import torch._dynamo  # noqa: E402

from cases import cases  # noqa: E402
from harness import Case, Ctx, device_name, environment, measure  # noqa: E402
from report import chart, header_lines, markdown, notes_of, results_json, tables, write  # noqa: E402


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few cases, 1 round, tiny blocks; "
                        "no compile or import group")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 15, quick 1)")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds per timed block (default 0.02, quick 0.0005)")
    parser.add_argument("--case-budget", type=float, default=60.0,
                        help="seconds one case's rounds may take before it gets fewer rounds (at least 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where tensors and modules live; cuda adds float16 and bfloat16 variants")
    parser.add_argument("--half", action="store_true", help="float16 / bfloat16 variants also on the CPU")
    parser.add_argument("--no-keras", action="store_true", help="leave the Keras columns out")
    parser.add_argument("--no-compile", action="store_true", help="leave the torch.compile group out")
    parser.add_argument("--keras-limit", type=int, default=2 * 10**6,
                        help="largest x.numel() + y.numel() given to Keras")
    parser.add_argument("--naive-limit-mb", type=float, default=256.0, help="largest broadcast product to run")
    parser.add_argument("--only", help="run only the cases whose 'group: name' contains this text")
    parser.add_argument("--markdown", help="also write the tables, the machine and the notes to this file")
    parser.add_argument("--json", help="also write every result (medians, ratios, notes, facts) to this file")
    parser.add_argument("--chart", help="write a PNG chart of the sweeps (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available: skipped", file=sys.stderr)
        return 0
    os.environ["KERAS_TORCH_DEVICE"] = args.device  # Keras puts its weights where the inputs are
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = args.rounds or (1 if args.quick else 15)
    min_time = args.min_time or (0.0005 if args.quick else 0.02)
    ctx = Ctx(args)
    busy, threads = (os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0), torch.get_num_threads()
    if args.device == "cpu" and threads > 1 and busy > (os.cpu_count() or 1) - threads + 0.5:
        print(f"warning: load average {busy:.2f} on {os.cpu_count()} CPUs: other processes will stall torch's "
              f"{threads} threads (every ratio moves toward 1); --threads 1 measures more steadily",
              file=sys.stderr)
    if args.device == "cuda":
        print(f"device: {device_name(ctx.device)}", file=sys.stderr)
    skipped = []
    if args.quick:
        skipped.append("compile and import groups (--quick)")
    elif args.no_compile:
        skipped.append("compile group (--no-compile)")
    all_cases: list[Case] = []
    for group, name, make in cases(ctx):
        if args.only and args.only not in f"{group}: {name}":
            continue
        case = make()
        if case.seconds is None:
            case.facts["_rounds_asked"] = rounds
            measure(case, rounds, min_time, args.case_budget)
        all_cases.append(case)
        print(f"  measured {case.group}: {case.name}", file=sys.stderr)
    if not all_cases:
        print(f"no case matches --only {args.only!r}", file=sys.stderr)
        return 0
    if ctx.keras_status == "not loaded":  # no case asked for Keras: say so without importing it
        ctx.keras_status = "skipped (--no-keras)" if args.no_keras else "not used by these cases"
    elif ctx.keras is None:
        skipped.append(f"Keras columns: {ctx.keras_status}")
    env = environment(ctx, rounds, min_time)
    for i, (group, text) in enumerate(tables(all_cases)):
        print(("\n" if i else "") + text)
    print("\nratios are axisdot's median time divided by the other's (below 1: axisdot is faster)")
    if skipped:
        print("skipped: " + "; ".join(skipped))
    for line in notes_of(all_cases):
        print(line)
    print("\n" + "\n".join(header_lines(env)))
    if args.markdown:
        write(args.markdown, markdown(env, all_cases, skipped))
    if args.json:
        write(args.json, results_json(env, all_cases, skipped))
    if args.chart:
        chart(all_cases, args.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
