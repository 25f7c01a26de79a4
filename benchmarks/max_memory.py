"""Time against ``max_memory`` (issue 22): for a few large einsums, the time of a call
and the peak of temporaries measured at each bound, from no bound down by halvings.

    python benchmarks/max_memory.py                          # every case, 3 rounds
    python benchmarks/max_memory.py --rounds 1 --only cupy --chart sweep.png

Each point: the median of ``--rounds`` warm calls (one thread), and the peak of
temporaries of one more call, measured from torch.profiler's CPU allocation events
(live bytes beyond the operands, the output left out), beside the bound and the peak
``explain`` predicts. The bounds start at the unsliced plan's predicted peak and halve.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import axisdot  # noqa: E402


class Case(NamedTuple):
    name: str
    equation: str
    shapes: tuple[tuple[int, ...], ...]
    source: str


CASES = (
    Case("cupy", "ab,cbe,ae->ac", ((20000, 100), (20, 100, 100), (20000, 100)),
         "cupy#4834: a quadratic form whose first intermediate is 100x its output"),
    Case("bilinear", "bi,oij,bj->bo", ((2048, 128), (64, 128, 128), (2048, 128)), "torch.nn.Bilinear"),
    Case("attention", "bhqd,bhkd,bhkv->bhqv", ((4, 8, 512, 64), (4, 8, 512, 64), (4, 8, 512, 64)),
         "unnormalized attention: the scores are 8x the output"),
)


def peak_of(fn) -> tuple[torch.Tensor, int]:
    """``fn()`` and the peak of the bytes it allocated and still held, its result left out."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    level = peak = 0
    for _t, n in sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                        if e.name() == "[memory]"):
        level += n
        peak = max(peak, level)
    return out, peak - out.untyped_storage().nbytes()


def median_time(fn, rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Point(NamedTuple):
    bound: Optional[int]
    seconds: float
    measured: int
    predicted: int
    slices: int
    extra_flops: int


def sweep(case: Case, rounds: int, halvings: int) -> list[Point]:
    gen = torch.Generator().manual_seed(0)
    ops = [torch.randn(s, generator=gen) for s in case.shapes]
    unsliced = axisdot.explain(case.equation, *ops).peak_memory
    points = []
    for bound in [None, *(unsliced // 2**k for k in range(1, halvings + 1))]:
        call = lambda: axisdot.einsum(case.equation, *ops, max_memory=bound)  # noqa: E731
        report = axisdot.explain(case.equation, *ops, max_memory=bound)
        _out, measured = peak_of(call)
        points.append(Point(bound, median_time(call, rounds), measured, report.peak_memory, report.slices,
                            report.extra_flops))
    return points


def markdown(results: dict[str, list[Point]]) -> str:
    lines = ["| case | max_memory (MiB) | slices | extra FLOPs | time (ms) | x unbounded | "
             "peak predicted (MiB) | peak measured (MiB) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    mib = 2**20
    for name, points in results.items():
        base = points[0].seconds
        for p in points:
            bound = "none" if p.bound is None else f"{p.bound / mib:.2f}"
            lines.append(f"| {name} | {bound} | {p.slices} | {p.extra_flops:.3g} | {p.seconds * 1e3:.1f} | "
                         f"{p.seconds / base:.2f} | {p.predicted / mib:.2f} | {p.measured / mib:.2f} |")
    return "\n".join(lines)


def chart(results: dict[str, list[Point]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, points in results.items():
        bounded = [p for p in points if p.bound is not None]
        left.plot([p.bound / 2**20 for p in bounded], [p.seconds / points[0].seconds for p in bounded], "o-",
                  label=name)
        right.plot([p.bound / 2**20 for p in bounded], [p.measured / 2**20 for p in bounded], "o-", label=name)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("max_memory (MiB)")
        ax.invert_xaxis()
    left.set_yscale("log", base=2)
    right.set_yscale("log", base=2)
    lo, hi = right.get_xlim()
    right.plot([hi, lo], [hi, lo], "k--", linewidth=0.8, label="the bound")
    left.set_ylabel("time / unbounded time")
    right.set_ylabel("measured peak of temporaries (MiB)")
    left.legend()
    right.legend()
    fig.suptitle("axisdot.einsum(..., max_memory=...): float32, one thread")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--halvings", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="", help="cases whose name contains this")
    parser.add_argument("--chart", default="", help="write a chart to this file")
    args = parser.parse_args(list(argv) or None)
    torch.set_num_threads(args.threads)
    results = {c.name: sweep(c, args.rounds, args.halvings) for c in CASES if args.only in c.name}
    print(markdown(results))
    for points in results.values():
        assert all(p.bound is None or p.measured <= p.bound for p in points), "a bound was not kept"
    if args.chart:
        chart(results, args.chart)


if __name__ == "__main__":
    main(sys.argv[1:])
