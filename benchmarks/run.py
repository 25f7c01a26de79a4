"""axisdot's benchmark suite: every implementation timed side by side, interleaved, in
one process, reported as medians and ratios (never as lone absolute times).

    python benchmarks/run.py                 # the full suite (a few minutes)
    python benchmarks/run.py --quick         # a smoke run (seconds), as CI does
    python benchmarks/run.py --markdown benchmarks/RESULTS.md --chart benchmarks/sweep.png

Implementations: axisdot, torch.einsum with a precomputed equation, the best
hand-written lowering of each case, opt_einsum's contract_expression, keras.layers.Dot
on the torch backend (when keras is installed), and the naive broadcast-multiply-sum
recipe (when its broadcast product fits in --naive-limit-mb).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from dataclasses import dataclass, field
from typing import Callable, Optional

os.environ.setdefault("KERAS_BACKEND", "torch")

import opt_einsum  # noqa: E402
import torch  # noqa: E402
from torch.utils import benchmark  # noqa: E402

import axisdot  # noqa: E402
from axisdot import cache  # noqa: E402

Fn = Callable[[], object]


@dataclass
class Case:
    group: str
    name: str
    impls: dict[str, Fn]
    note: str = ""
    results: dict[str, float] = field(default_factory=dict)


def keras_dot() -> Optional[Callable]:
    try:
        import keras
    except ImportError:
        return None
    if keras.backend.backend() != "torch":
        return None
    return lambda axes: keras.layers.Dot(axes=axes)


def naive_recipe(x: torch.Tensor, y: torch.Tensor, axes) -> Callable[[], torch.Tensor]:
    """The hand-written port people write: broadcast both inputs to
    (batch, x free, y free, contracted), multiply, sum."""
    spec = cache.dot_plan(x.ndim, y.ndim, axes if isinstance(axes, int) else tuple(axes)).spec
    fx, fy = spec.x_free, spec.y_free
    (xc,), (yc,) = spec.contract
    xv = x.permute(0, *fx, xc)
    yv = y.permute(0, *fy, yc)
    xv = xv.reshape(xv.shape[:-1] + (1,) * len(fy) + xv.shape[-1:])
    yv = yv.reshape(yv.shape[:1] + (1,) * len(fx) + yv.shape[1:])
    rank1 = len(fx) + len(fy) == 0

    def run() -> torch.Tensor:
        out = (xv * yv).sum(-1)
        return out.unsqueeze(-1) if rank1 else out

    return run


def naive_bytes(x: torch.Tensor, y: torch.Tensor, axes) -> int:
    spec = cache.dot_plan(x.ndim, y.ndim, axes if isinstance(axes, int) else tuple(axes)).spec
    n = x.shape[0] * math.prod(x.shape[a] for a in spec.x_free) * math.prod(y.shape[a] for a in spec.y_free)
    return n * x.shape[spec.contract[0][0]] * x.element_size()


def dot_case(group: str, name: str, x_shape, y_shape, axes, hand: Callable, args) -> Case:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(x_shape, generator=gen), torch.randn(y_shape, generator=gen)
    eq = axisdot.equation(x, y, axes)
    expr = opt_einsum.contract_expression(eq, x.shape, y.shape)
    expected = axisdot.dot(x, y, axes)
    impls: dict[str, Fn] = {
        "axisdot": lambda: axisdot.dot(x, y, axes),
        "torch.einsum": lambda: torch.einsum(eq, x, y),
        "hand-written": lambda: hand(x, y),
        "opt_einsum": lambda: expr(x, y, backend="torch"),
    }
    layer_of = keras_dot() if not args.no_keras else None
    if layer_of is not None and x.numel() + y.numel() <= args.keras_limit:
        layer = layer_of(axes)
        impls["keras Dot"] = lambda: layer([x, y])
    note = ""
    nbytes = naive_bytes(x, y, axes)
    if nbytes <= args.naive_limit_mb * 2**20:
        impls["naive broadcast"] = naive_recipe(x, y, axes)
    note = f"naive recipe's broadcast product: {nbytes / 2**20:.1f} MiB"
    for label, fn in impls.items():  # every implementation must agree before it is timed
        got = fn()
        got = got.reshape(expected.shape) if label == "torch.einsum" or label == "opt_einsum" else got
        torch.testing.assert_close(torch.as_tensor(got), expected, rtol=1e-3, atol=1e-3, msg=f"{label} in {name}")
    return Case(group, name, impls, note)


def left_to_right(eq: str, ops) -> torch.Tensor:
    lhs, out = eq.split("->")
    terms = lhs.split(",")
    acc, acc_sub = ops[0], terms[0]
    for i in range(1, len(ops)):
        rest = "".join(terms[i + 1:]) + out
        keep = "".join(dict.fromkeys(c for c in acc_sub + terms[i] if c in rest))
        acc = torch.einsum(f"{acc_sub},{terms[i]}->{keep}", acc, ops[i])
        acc_sub = keep
    return torch.einsum(f"{acc_sub}->{out}", acc)


def einsum_case(group: str, name: str, eq: str, shapes) -> Case:
    gen = torch.Generator().manual_seed(0)
    ops = [torch.randn(s, generator=gen) for s in shapes]
    expr = opt_einsum.contract_expression(eq, *shapes)
    impls: dict[str, Fn] = {
        "axisdot": lambda: axisdot.einsum(eq, *ops),
        "torch.einsum": lambda: torch.einsum(eq, *ops),
        "opt_einsum": lambda: expr(*ops, backend="torch"),
        "left-to-right": lambda: left_to_right(eq, ops),
    }
    expected = torch.einsum(eq, *ops)
    for label, fn in impls.items():
        torch.testing.assert_close(fn(), expected, rtol=1e-3, atol=1e-2, msg=f"{label} in {name}")
    return Case(group, name, impls)


def cold_case(args) -> Case:
    x, y = torch.randn(4, 3, 5), torch.randn(4, 6, 5)

    def cold() -> object:
        axisdot.cache_clear()
        return axisdot.dot(x, y, (2, 2))

    return Case("cold", "first call of a pattern (cache miss) vs one torch.einsum call", {
        "axisdot": cold,
        "torch.einsum": lambda: torch.einsum("bij,bkj->bik", x, y),
        "hand-written": lambda: torch.bmm(x, y.mT),
    })


def compile_case(args) -> Case:
    x, y = torch.randn(32, 64, 48), torch.randn(32, 48, 40)
    with_einsum = torch.compile(lambda a, b: torch.relu(torch.einsum("bij,bjk->bik", a, b)) * 2, fullgraph=True)
    with_axisdot = torch.compile(lambda a, b: torch.relu(axisdot.dot(a, b, (2, 1))) * 2, fullgraph=True)
    torch.testing.assert_close(with_einsum(x, y), with_axisdot(x, y), rtol=1e-4, atol=1e-4)
    return Case("compile", "torch.compile'd relu(dot(x, y)) * 2, (32,64,48)x(32,48,40)", {
        "axisdot": lambda: with_axisdot(x, y),
        "torch.einsum": lambda: with_einsum(x, y),
    })


def _later(make: Callable[..., Case], group: str, name: str, *args) -> tuple[str, Callable[[], Case]]:
    if make in (cold_case, compile_case):
        return name, lambda: make(*args)
    return name, lambda: make(group, name, *args)


def cases(args) -> list[tuple[str, Callable[[], Case]]]:
    """(name, factory) pairs: each case is built just before it is measured, so one
    case's tensors and warm-up do not weigh on the next."""
    q = args.quick
    out = [
        _later(dot_case, "small", "(64,32)x(64,32) axes=1", (64, 32), (64, 32), 1,
                 lambda x, y: (x * y).sum(1, keepdim=True), args),
        _later(dot_case, "small", "(4,3,5)x(4,6,5) axes=(2,2)", (4, 3, 5), (4, 6, 5), (2, 2),
                 lambda x, y: torch.bmm(x, y.mT), args),
        _later(dot_case, "small", "(4,6,5)x(4,5) axes=(2,1)", (4, 6, 5), (4, 5), (2, 1),
                 lambda x, y: torch.bmm(x, y.unsqueeze(2)).squeeze(2), args),
    ]
    if not q:
        out += [
            _later(dot_case, "large", "attention (32,128,64)x(32,128,64) axes=(2,2)", (32, 128, 64), (32, 128, 64), (2, 2),
                     lambda x, y: torch.bmm(x, y.mT), args),
            _later(dot_case, "large", "article (32,64,10,128)x(32,128,32,15) axes=(3,1)", (32, 64, 10, 128), (32, 128, 32, 15),
                     (3, 1), lambda x, y: torch.bmm(x.reshape(32, 640, 128), y.reshape(32, 128, 480)).reshape(
                         32, 64, 10, 32, 15), args),
            _later(dot_case, "large", "article (32,64,10,128)x(32,32,15,128) axes=-1", (32, 64, 10, 128), (32, 32, 15, 128), -1,
                     lambda x, y: torch.bmm(x.reshape(32, 640, 128), y.reshape(32, 480, 128).mT).reshape(
                         32, 64, 10, 32, 15), args),
            _later(dot_case, "large", "(8,512,512)x(8,512,512) axes=(2,1)", (8, 512, 512), (8, 512, 512), (2, 1),
                     lambda x, y: torch.bmm(x, y), args),
            _later(dot_case, "large", "(4096,256)x(4096,256) axes=1", (4096, 256), (4096, 256), 1,
                     lambda x, y: (x * y).sum(1, keepdim=True), args),
            _later(einsum_case, "n-ary", "chain bij,jk,kl->bil (16,256,512),(512,512),(512,4)", "bij,jk,kl->bil",
                        [(16, 256, 512), (512, 512), (512, 4)]),
        ]
    out += [
        _later(einsum_case, "n-ary small", "ij,jk,kl->il on 8x8", "ij,jk,kl->il", [(8, 8)] * 3),
        _later(einsum_case, "n-ary small", "bij,bjk,bkl->bil batch 4", "bij,bjk,bkl->bil", [(4, 8, 8)] * 3),
    ]
    sides = [2, 8, 32] if q else [2, 4, 8, 16, 32, 64, 128, 256]
    for n in sides:
        out.append(_later(dot_case, "sweep", f"batch-matmul (8,{n},{n})x(8,{n},{n}) axes=(2,1)", (8, n, n), (8, n, n), (2, 1),
                            lambda x, y: torch.bmm(x, y), args))
    for b in ([4, 64] if q else [1, 16, 256, 4096]):
        out.append(_later(dot_case, "sweep", f"vector dot ({b},64)x({b},64) axes=1", (b, 64), (b, 64), 1,
                            lambda x, y: (x * y).sum(1, keepdim=True), args))
    out.append(_later(cold_case, "cold", "first call of a pattern (cache miss) vs one torch.einsum call", args))
    if not q and not args.no_compile:
        out.append(_later(compile_case, "compile", "torch.compile'd relu(dot(x, y)) * 2, (32,64,48)x(32,48,40)", args))
    return out


def measure(case: Case, rounds: int, min_time: float) -> None:
    """Interleaved: each round times every implementation once, in turn."""
    timers = {k: benchmark.Timer("fn()", globals={"fn": fn}) for k, fn in case.impls.items()}
    numbers = {}
    for k, t in timers.items():  # calibrate: enough calls for min_time a block
        n = 1
        while True:
            elapsed = t.timeit(n).median * n
            if elapsed >= min_time or n >= 10**6:
                break
            n *= 10 if elapsed < min_time / 10 else 2
        numbers[k] = n
    samples: dict[str, list[float]] = {k: [] for k in timers}
    for _ in range(rounds):
        for k, t in timers.items():
            samples[k].append(t.timeit(numbers[k]).median)
    case.results = {k: statistics.median(v) for k, v in samples.items()}


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


COLUMNS = ["axisdot", "torch.einsum", "hand-written", "opt_einsum", "keras Dot", "naive broadcast", "left-to-right"]


def table(all_cases: list[Case]) -> str:
    head = "| group | case | axisdot | " + " | ".join(f"÷ {c}" for c in COLUMNS[1:]) + " |"
    lines = [head, "|" + "---|" * (3 + len(COLUMNS) - 1)]
    for c in all_cases:
        base = c.results["axisdot"]
        ratios = [f"{base / c.results[k]:.2f}" if k in c.results else "" for k in COLUMNS[1:]]
        lines.append(f"| {c.group} | {c.name} | {fmt_time(base)} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def chart(all_cases: list[Case], path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no chart: matplotlib is not installed; pip install 'axisdot[bench]')", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, prefix, xlabel in ((axes[0], "batch-matmul", "side n of (8,n,n)x(8,n,n)"),
                               (axes[1], "vector dot", "batch b of (b,64)x(b,64)")):
        sweep = [c for c in all_cases if c.group == "sweep" and c.name.startswith(prefix)]
        sizes = [int(c.name.split("(")[1].split(",")[0 if prefix == "vector dot" else 1]) for c in sweep]
        for other in ("torch.einsum", "hand-written", "opt_einsum", "keras Dot"):
            pts = [(s, c.results["axisdot"] / c.results[other]) for s, c in zip(sizes, sweep) if other in c.results]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"axisdot ÷ {other}")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("time ratio (below 1: axisdot faster)")
        ax.set_title(prefix)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"chart written to {path}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few cases, few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 15, quick 3)")
    parser.add_argument("--min-time", type=float, default=None, help="seconds per timed block (default 0.02)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-keras", action="store_true", help="leave keras.layers.Dot out")
    parser.add_argument("--no-compile", action="store_true", help="leave the torch.compile case out")
    parser.add_argument("--keras-limit", type=int, default=2 * 10**6, help="largest x.numel() + y.numel() given to Keras")
    parser.add_argument("--naive-limit-mb", type=float, default=256.0, help="largest broadcast product to run")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--chart", help="write a PNG chart of the sweeps (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = args.rounds or (3 if args.quick else 15)
    min_time = args.min_time or (0.002 if args.quick else 0.02)
    all_cases = []
    for name, make in cases(args):
        if args.only and args.only not in name:
            continue
        case = make()
        measure(case, rounds, min_time)
        all_cases.append(case)
        print(f"  measured {case.group}: {case.name}", file=sys.stderr)
    text = table(all_cases)
    notes = [f"- {c.name}: {c.note}" for c in all_cases if c.note]
    print(text)
    print("\nratios are axisdot's median time divided by the other's (below 1: axisdot is faster)")
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text + "\n\n" + "\n".join(notes) + "\n")
    if args.chart:
        chart(all_cases, args.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
