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
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

os.environ.setdefault("KERAS_BACKEND", "torch")

import opt_einsum  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from opt_einsum import get_symbol  # noqa: E402
import torch._dynamo  # noqa: E402
from torch.utils import benchmark  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
try:
    import axisdot  # noqa: E402
except ImportError:  # a clone that is not pip-installed: measure the checkout itself
    sys.path.insert(0, str(ROOT))
    import axisdot  # noqa: E402
import axisdot.cache  # noqa: E402  (the plan caches the cold group clears, as axisdot.cache)
from axisdot import cache  # noqa: E402

Fn = Callable[[], object]

#: group -> (what it measures, its ratio columns in order; empty columns are dropped)
GROUPS: dict[str, tuple[str, list[str]]] = {
    "small": ("per-call overhead on tiny inputs, against the hand-written torch call",
              ["hand-written", "torch.einsum", "opt_einsum", "keras Dot", "keras.ops", "naive broadcast"]),
    "large": ("big two-operand contractions",
              ["hand-written", "torch.einsum", "opt_einsum", "keras Dot", "naive broadcast"]),
    "sweep": ("the ratio against size (also in the chart); \"faster hand\" is the faster of the two "
              "hand-written columns, mul+sum and bmm",
              ["hand-written", "faster hand", "mul+sum", "bmm", "torch.einsum", "opt_einsum", "keras Dot",
               "naive broadcast"]),
    "sizes": ("many distinct sizes, one call each: axisdot clears its plan caches (axisdot.cache_clear()) at "
              "the start of every timed run, then calls once per size; \"axisdot warm\" is the same loop "
              "without the clearing",
              ["torch.einsum", "opt_einsum.contract", "axisdot warm"]),
    "cold": ("the first call of a pattern: the relevant plan caches are cleared inside the timed function; "
             "\"clear only\" times the clearing alone",
             ["torch.einsum", "hand-written", "clear only"]),
    "n-ary": ("three or more operands; the path's cost (axisdot.explain) is in the notes",
              ["torch.einsum", "opt_einsum.contract", "opt_einsum", "left-to-right"]),
    "layers": ("Keras layers as torch modules, eval mode, under torch.no_grad(), same weights everywhere",
               ["hand-written", "torch MHA", "keras layer"]),
    "compile": ("torch.compile'd code (inductor); graph facts in the notes",
                ["torch.einsum", "hand-written"]),
    "import": ("import time in fresh interpreters, median seconds (not ratios)", []),
}
#: derived ratio columns: name -> the columns whose fastest median it divides by
DERIVED = {"faster hand": ("mul+sum", "bmm")}


@dataclass
class Case:
    group: str
    name: str
    impls: dict[str, Fn]
    note: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    no_grad: bool = False
    results: dict[str, float] = field(default_factory=dict)  # median seconds per implementation
    rounds: int = 0
    seconds: Optional[dict[str, float]] = None  # the import group: measured by hand

    def ratios(self) -> dict[str, float]:
        base = self.results.get("axisdot")
        if base is None:
            return {}
        out = {k: base / v for k, v in self.results.items() if k != "axisdot" and v > 0}
        for name, parts in DERIVED.items():
            got = [self.results[p] for p in parts if p in self.results]
            if len(got) == len(parts):
                out[name] = base / min(got)
        return out


class Ctx:
    """What every case needs: the options, the device, Keras (or why not)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        self.device = torch.device(args.device)
        self.half = args.device == "cuda" or args.half
        self._keras: Any = None
        self.keras_status = "not loaded"

    @property
    def keras(self) -> Any:
        if self.keras_status == "not loaded":
            self._keras, self.keras_status = load_keras(self.args)
        return self._keras

    def dtypes(self) -> list[torch.dtype]:
        return [torch.float32, torch.float16, torch.bfloat16] if self.half else [torch.float32]

    def randn(self, shape, gen: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.randn(shape, generator=gen).to(device=self.device, dtype=dtype)


def load_keras(args: argparse.Namespace) -> tuple[Any, str]:
    if args.no_keras:
        return None, "skipped (--no-keras)"
    try:
        import keras
    except Exception as err:  # ImportError, or a keras that needs a missing backend
        return None, f"skipped (keras not importable: {type(err).__name__})"
    if keras.backend.backend() != "torch":
        return None, f"skipped (keras backend is {keras.backend.backend()!r}, not torch)"
    return keras, f"keras {keras.__version__} (torch backend)"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def suffix(dtype: torch.dtype) -> str:
    return "" if dtype == torch.float32 else f" {dtype_name(dtype)}"


# -- checking ---------------------------------------------------------------------------

def tolerances(expected: torch.Tensor, loose: bool = False) -> dict[str, float]:
    scale = float(expected.detach().abs().max()) if expected.numel() else 1.0
    if expected.dtype in (torch.float16, torch.bfloat16):
        return {"rtol": 2e-2, "atol": 2e-2 * scale + 1e-3}
    if loose:
        return {"rtol": 1e-3, "atol": 1e-4 * scale + 1e-6}
    return {"rtol": 1e-4, "atol": 1e-4}


def first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def check(case: Case, expected: Any = None, *, reshape: tuple[str, ...] = (), skip: tuple[str, ...] = (),
          loose: bool = True) -> None:
    """Every implementation must give axisdot's result (or ``expected``) before timing."""
    ctx = torch.no_grad() if case.no_grad else torch.enable_grad()
    with ctx:
        if expected is None:
            expected = case.impls["axisdot"]()
        wanted = expected if isinstance(expected, list) else [expected]
        for label, fn in case.impls.items():
            if label in skip:
                continue
            got = fn()
            got = got if isinstance(got, list) else [got]
            assert len(got) == len(wanted), f"{label} in {case.name}: {len(got)} results, expected {len(wanted)}"
            for g, e in zip(got, wanted):
                g = torch.as_tensor(first(g))
                if label in reshape and g.shape != e.shape:
                    g = g.reshape(e.shape)
                torch.testing.assert_close(g, e, **tolerances(e, loose), msg=lambda m: f"{label} in {case.name}: {m}")


# -- two operands -----------------------------------------------------------------------

def naive_recipe(x: torch.Tensor, y: torch.Tensor, axes) -> Fn:
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


def two_case(ctx: Ctx, group: str, name: str, mode: str, x_shape, y_shape, axes,
             hands: Callable[[torch.Tensor, torch.Tensor], dict[str, Fn]], *, dtype: torch.dtype = torch.float32,
             keras: Optional[str] = "dot", naive: bool = True, facts: Optional[dict] = None) -> Case:
    """A two-operand case. ``hands(x, y)`` returns the hand-written implementations as
    zero-argument lambdas of the same shape as axisdot's (``lambda: torch.bmm(x, y)``
    beside ``lambda: axisdot.dot(x, y, axes)``), so both cost one closure call."""
    gen = torch.Generator().manual_seed(0)
    x, y = ctx.randn(x_shape, gen, dtype), ctx.randn(y_shape, gen, dtype)
    if mode == "dot":
        impl: Fn = lambda: axisdot.dot(x, y, axes)  # noqa: E731
        eq = axisdot.explain(x_shape, y_shape, axes, mode="dot").equation
    elif mode == "batch_dot":
        impl = lambda: axisdot.batch_dot(x, y, axes)  # noqa: E731
        eq = axisdot.explain(x_shape, y_shape, axes, mode="batch_dot").equation
    elif mode == "tensordot":
        impl = lambda: axisdot.tensordot(x, y, axes)  # noqa: E731
        eq = axisdot.explain(x_shape, y_shape, axes, mode="tensordot").equation
    elif mode == "dot_general":
        contract, batch = axes
        impl = lambda: axisdot.dot_general(x, y, contract, batch)  # noqa: E731
        eq = axisdot.explain(x_shape, y_shape, mode="dot_general", contract=contract, batch=batch).equation
    else:
        raise ValueError(mode)
    expr = opt_einsum.contract_expression(eq, x.shape, y.shape)
    impls: dict[str, Fn] = {"axisdot": impl, **hands(x, y)}
    impls["torch.einsum"] = lambda: torch.einsum(eq, x, y)
    impls["opt_einsum"] = lambda: expr(x, y, backend="torch")
    notes = [f"equation {eq}"]
    small_enough = x.numel() + y.numel() <= ctx.args.keras_limit
    k = ctx.keras if keras else None
    if k is not None and dtype == torch.float32 and small_enough:
        if keras == "dot":
            layer = k.layers.Dot(axes=axes)
            impls["keras Dot"] = lambda: layer([x, y])
        elif keras == "tensordot":
            ops = k.ops
            impls["keras.ops"] = lambda: ops.tensordot(x, y, axes)
    if naive and mode == "dot":
        nbytes = naive_bytes(x, y, axes)
        if nbytes <= ctx.args.naive_limit_mb * 2**20:
            impls["naive broadcast"] = naive_recipe(x, y, axes)
        notes.append(f"naive recipe's broadcast product: {nbytes / 2**20:.1f} MiB")
    case = Case(group, name + suffix(dtype), impls, "; ".join(notes), dict(facts or {}), dtype_name(dtype))
    case.facts["equation"] = eq
    check(case, reshape=("torch.einsum", "opt_einsum"))
    return case


class BmmModule(torch.nn.Module):
    """The hand-written module a port writes for Dot(axes=(2, 1)) on rank-3 inputs."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.bmm(x, y)


def dot_module_case(ctx: Ctx, name: str) -> Case:
    gen = torch.Generator().manual_seed(0)
    x, y = ctx.randn((8, 2, 2), gen), ctx.randn((8, 2, 2), gen)
    m = axisdot.Dot(axes=(2, 1)).to(ctx.device)
    h = BmmModule().to(ctx.device)
    impls: dict[str, Fn] = {
        "axisdot": lambda: m(x, y),
        "hand-written": lambda: h(x, y),
        "torch.einsum": lambda: torch.einsum("bij,bjk->bik", x, y),
    }
    if ctx.keras is not None:
        layer = ctx.keras.layers.Dot(axes=(2, 1))
        impls["keras Dot"] = lambda: layer([x, y])
    case = Case("small", name, impls, "axisdot.Dot(axes=(2, 1)) module vs an nn.Module whose forward is torch.bmm")
    check(case)
    return case


# -- einsum -----------------------------------------------------------------------------

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


def path_cost(eq: str, shapes) -> tuple[dict[str, Any], str]:
    """axisdot's path cost (explain) beside opt_einsum's own 'auto' path (torch.einsum's)."""
    facts: dict[str, Any] = {}
    e = axisdot.explain(eq, *shapes)
    facts["flops"], facts["largest_intermediate"] = e.flops, e.largest_intermediate
    facts["path_steps"] = len(e.path) if e.path is not None else 0
    info = opt_einsum.contract_path(eq, *shapes, shapes=True)[1]
    facts["opt_einsum_auto_flops"] = int(info.opt_cost)
    facts["opt_einsum_auto_largest_intermediate"] = int(info.largest_intermediate)
    note = (f"path cost {e.flops:.3g} FLOPs, largest intermediate {e.largest_intermediate:,} elements "
            f"(opt_einsum's auto path: {info.opt_cost:.3g} FLOPs, {int(info.largest_intermediate):,})")
    return facts, note


def einsum_case(ctx: Ctx, group: str, name: str, eq: str, shapes, *, ops: Optional[list] = None,
                hands: Optional[Callable[..., dict[str, Fn]]] = None, ltr: bool = True, contract: bool = True,
                keras_ops: bool = False, costs: bool = False, dtype: torch.dtype = torch.float32,
                note: str = "") -> Case:
    if ops is None:
        gen = torch.Generator().manual_seed(0)
        ops = [ctx.randn(s, gen, dtype) for s in shapes]
    expr = opt_einsum.contract_expression(eq, *shapes)
    impls: dict[str, Fn] = {"axisdot": lambda: axisdot.einsum(eq, *ops)}
    if len(ops) == 2:  # written out, as the hand-written call is (a star call from a list costs ~70 ns)
        x, y = ops
        impls["axisdot"] = lambda: axisdot.einsum(eq, x, y)
    if hands is not None:
        impls.update(hands(*ops))
    impls["torch.einsum"] = (lambda: torch.einsum(eq, x, y)) if len(ops) == 2 else lambda: torch.einsum(eq, *ops)
    if contract:
        impls["opt_einsum.contract"] = lambda: opt_einsum.contract(eq, *ops, backend="torch")
    impls["opt_einsum"] = lambda: expr(*ops, backend="torch")
    if ltr:
        impls["left-to-right"] = lambda: left_to_right(eq, ops)
    if keras_ops and ctx.keras is not None and dtype == torch.float32:
        kops = ctx.keras.ops
        impls["keras.ops"] = lambda: kops.einsum(eq, *ops)
    notes = [note] if note else []
    facts: dict[str, Any] = {"equation": eq}
    if costs:
        more, text = path_cost(eq, shapes)
        facts.update(more)
        notes.append(text)
    case = Case(group, name + suffix(dtype), impls, "; ".join(notes), facts, dtype_name(dtype))
    check(case, torch.einsum(eq, *ops))
    return case


def mps_norm(sites: int = 12, bond: int = 32, phys: int = 2) -> tuple[str, list[tuple[int, ...]]]:
    """<psi|psi> of an open-boundary matrix-product state, as one einsum.

    The ket has tensors A[0] (p0, a0), A[i] (a_{i-1}, p_i, a_i), A[n-1] (a_{n-2}, p_{n-1}):
    physical legs p (dimension ``phys``) and bonds a (dimension ``bond``). The bra is
    the same (real) tensors with bonds b instead of a; ket and bra share the physical
    legs, so the network of 2n tensors contracts to the scalar norm squared. Letters
    from opt_einsum.get_symbol: p_i = i, a_i = n + i, b_i = 2n - 1 + i."""
    p = [get_symbol(i) for i in range(sites)]
    a = [get_symbol(sites + i) for i in range(sites - 1)]
    b = [get_symbol(2 * sites - 1 + i) for i in range(sites - 1)]
    terms = []
    for bonds in (a, b):
        for i in range(sites):
            terms.append((bonds[i - 1] if i > 0 else "") + p[i] + (bonds[i] if i < sites - 1 else ""))
    shapes = [((bond,) if i > 0 else ()) + (phys,) + ((bond,) if i < sites - 1 else ()) for i in range(sites)]
    return ",".join(terms) + "->", shapes + shapes


def lattice_amplitude(rows: int = 4, cols: int = 4, bond: int = 4) -> tuple[str, list[tuple[int, ...]]]:
    """A ``rows`` x ``cols`` PEPS amplitude <s|psi> for one fixed configuration s: every
    site tensor (phys, up, down, left, right; boundary legs left out) has its physical
    leg fixed to s, leaving a 2-D grid of tensors with bond legs only, which contracts
    to a scalar. Horizontal bond (r, c)-(r, c+1) is letter r * (cols - 1) + c, vertical
    bond (r, c)-(r+1, c) is letter rows * (cols - 1) + r * cols + c."""
    def h(r: int, c: int) -> str:
        return get_symbol(r * (cols - 1) + c)

    def v(r: int, c: int) -> str:
        return get_symbol(rows * (cols - 1) + r * cols + c)

    terms, shapes = [], []
    for r in range(rows):
        for c in range(cols):
            legs = ([v(r - 1, c)] if r > 0 else []) + ([v(r, c)] if r < rows - 1 else []) \
                + ([h(r, c - 1)] if c > 0 else []) + ([h(r, c)] if c < cols - 1 else [])
            terms.append("".join(legs))
            shapes.append((bond,) * len(legs))
    return ",".join(terms) + "->", shapes


def mps_case(ctx: Ctx, name: str) -> Case:
    eq, shapes = mps_norm()
    gen = torch.Generator().manual_seed(0)
    ket = [(torch.randn(s, generator=gen) / math.sqrt(2 * 32)).to(ctx.device) for s in shapes[:12]]
    return einsum_case(ctx, "n-ary", name, eq, shapes, ops=ket + ket, costs=True,
                       note="open-boundary MPS, 12 sites, bond 32, physical 2: <psi|psi> over 24 tensors")


def lattice_case(ctx: Ctx, name: str) -> Case:
    eq, shapes = lattice_amplitude()
    gen = torch.Generator().manual_seed(0)
    # positive entries (as Boltzmann weights): the scalar has no cancellation, so the check is exact enough
    peps = [torch.rand((2,) + s, generator=gen) + 0.5 for s in shapes]
    ops = [t[0].to(ctx.device) for t in peps]  # the physical leg fixed to configuration 0
    return einsum_case(ctx, "n-ary", name, eq, shapes, ops=ops, costs=True,
                       note="4x4 PEPS, bond 4, physical leg fixed: a scalar over 16 tensors")


# -- sweeps ------------------------------------------------------------------------------

def sizes_case(ctx: Ctx, name: str, eq: str, shapes_of: Callable[[int], list[tuple[int, ...]]],
               count: int) -> Case:
    gen = torch.Generator().manual_seed(0)
    inputs = [[ctx.randn(s, gen) for s in shapes_of(n)] for n in range(1, count + 1)]

    def cold_loop() -> list:
        axisdot.cache_clear()
        return [axisdot.einsum(eq, *ops) for ops in inputs]

    impls: dict[str, Fn] = {
        "axisdot": cold_loop,
        "torch.einsum": lambda: [torch.einsum(eq, *ops) for ops in inputs],
        "opt_einsum.contract": lambda: [opt_einsum.contract(eq, *ops, backend="torch") for ops in inputs],
        "axisdot warm": lambda: [axisdot.einsum(eq, *ops) for ops in inputs],
    }
    case = Case("sizes", name, impls, f"{count} calls per timed run; times are per run of all {count}",
                {"equation": eq, "sizes": count})
    check(case, [torch.einsum(eq, *ops) for ops in inputs])
    return case


# -- cold ----------------------------------------------------------------------------------

def cold_dot_case(ctx: Ctx, name: str) -> Case:
    gen = torch.Generator().manual_seed(0)
    x, y = ctx.randn((4, 3, 5), gen), ctx.randn((4, 6, 5), gen)

    def cold() -> torch.Tensor:
        axisdot.cache.dot_plan.cache_clear()
        axisdot.cache.FAST["dot"].clear()
        return axisdot.dot(x, y, (2, 2))

    def clear_only() -> None:
        axisdot.cache.dot_plan.cache_clear()
        axisdot.cache.FAST["dot"].clear()

    case = Case("cold", name, {
        "axisdot": cold,
        "torch.einsum": lambda: torch.einsum("bij,bkj->bik", x, y),
        "hand-written": lambda: torch.bmm(x, y.mT),
        "clear only": clear_only,
    }, "dot (4,3,5)x(4,6,5) axes=(2,2); clears axisdot.cache.dot_plan and its fast table only")
    check(case, skip=("clear only",))
    return case


def cold_einsum_case(ctx: Ctx, name: str) -> Case:
    gen = torch.Generator().manual_seed(0)
    x, w = ctx.randn((2, 8, 16), gen), ctx.randn((16, 16), gen)

    def cold() -> torch.Tensor:
        axisdot.cache.einsum_ranked.cache_clear()
        axisdot.cache.einsum_subscripts.cache_clear()
        axisdot.cache.einsum_step.cache_clear()
        axisdot.cache.FAST["einsum_ranked"].clear()
        return axisdot.einsum("bij,jk->bik", x, w)

    def clear_only() -> None:
        axisdot.cache.einsum_ranked.cache_clear()
        axisdot.cache.einsum_subscripts.cache_clear()
        axisdot.cache.einsum_step.cache_clear()
        axisdot.cache.FAST["einsum_ranked"].clear()

    case = Case("cold", name, {
        "axisdot": cold,
        "torch.einsum": lambda: torch.einsum("bij,jk->bik", x, w),
        "hand-written": lambda: torch.matmul(x, w),
        "clear only": clear_only,
    }, "einsum bij,jk->bik (2,8,16)x(16,16); clears einsum_ranked (and its fast table), einsum_subscripts and einsum_step")
    check(case, skip=("clear only",))
    return case


# -- layers ---------------------------------------------------------------------------------

def _np(t: torch.Tensor) -> Any:
    return t.detach().cpu().numpy()


def einsum_dense_case(ctx: Ctx, name: str, batch: int, seq: int, feat: int, out: int,
                      dtype: torch.dtype = torch.float32) -> Case:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    k = ctx.keras
    x = ctx.randn((batch, seq, feat), gen)
    bias = torch.randn(out, generator=gen) * 0.1
    if k is not None:
        layer = k.layers.EinsumDense("abc,cd->abd", output_shape=(None, out), bias_axes="d")
        layer(x)  # builds it
        layer.bias.assign(_np(bias))
        m = axisdot.EinsumDense.from_keras(layer)
    else:
        layer = None
        m = axisdot.EinsumDense("abc,cd->abd", (None, out), bias_axes="d", input_shape=(None, seq, feat))
        with torch.no_grad():
            m.bias.copy_(bias)
    lin = torch.nn.Linear(feat, out)
    with torch.no_grad():
        lin.weight.copy_(m.kernel.detach().T)
        lin.bias.copy_(m.bias.detach())
    m = m.to(device=ctx.device, dtype=dtype).eval()
    lin = lin.to(device=ctx.device, dtype=dtype).eval()
    x = x.to(dtype)
    impls: dict[str, Fn] = {"axisdot": lambda: m(x), "hand-written": lambda: lin(x)}
    if layer is not None and dtype == torch.float32:
        impls["keras layer"] = lambda: layer(x)
    case = Case("layers", name + suffix(dtype), impls,
                f"x ({batch},{seq},{feat}); hand-written: nn.Linear with the same weights", dtype=dtype_name(dtype),
                no_grad=True)
    check(case, loose=False)
    return case


class HandAttention(torch.nn.Module):
    """Keras's MultiHeadAttention (default axes, no mask, no dropout) written out:
    four nn.Linear projections and F.scaled_dot_product_attention."""

    def __init__(self, src: Any, heads: int, key_dim: int) -> None:
        super().__init__()
        feat = src.query_dense.kernel.shape[0]
        self.heads, self.key_dim, inner = heads, key_dim, heads * key_dim
        self.q, self.k, self.v = (torch.nn.Linear(feat, inner) for _ in range(3))
        self.o = torch.nn.Linear(inner, src.output_dense.kernel.shape[-1])
        with torch.no_grad():
            for mine, theirs in ((self.q, src.query_dense), (self.k, src.key_dense), (self.v, src.value_dense)):
                mine.weight.copy_(theirs.kernel.reshape(feat, inner).T)
                mine.bias.copy_(theirs.bias.reshape(inner))
            self.o.weight.copy_(src.output_dense.kernel.reshape(inner, -1).T)
            self.o.bias.copy_(src.output_dense.bias)

    def forward(self, query: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        b, t, _ = query.shape
        s = value.shape[1]
        q = self.q(query).view(b, t, self.heads, self.key_dim).transpose(1, 2)
        k = self.k(value).view(b, s, self.heads, self.key_dim).transpose(1, 2)
        v = self.v(value).view(b, s, self.heads, self.key_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.o(out.transpose(1, 2).reshape(b, t, self.heads * self.key_dim))


def torch_mha(src: Any, feat: int, heads: int) -> torch.nn.MultiheadAttention:
    """torch.nn.MultiheadAttention with the same weights (needs heads * key_dim == features)."""
    t = torch.nn.MultiheadAttention(feat, heads, batch_first=True)
    with torch.no_grad():
        w = [d.kernel.reshape(feat, -1).T for d in (src.query_dense, src.key_dense, src.value_dense)]
        t.in_proj_weight.copy_(torch.cat(w))
        t.in_proj_bias.copy_(torch.cat([d.bias.reshape(-1) for d in (src.query_dense, src.key_dense, src.value_dense)]))
        t.out_proj.weight.copy_(src.output_dense.kernel.reshape(-1, feat).T)
        t.out_proj.bias.copy_(src.output_dense.bias)
    return t


def mha_case(ctx: Ctx, name: str, batch: int, seq: int, feat: int, heads: int, key_dim: int,
             dtype: torch.dtype = torch.float32) -> Case:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    k = ctx.keras
    x = ctx.randn((batch, seq, feat), gen)
    if k is not None:
        layer = k.layers.MultiHeadAttention(num_heads=heads, key_dim=key_dim)
        layer(x, x)  # builds it
        for sub in (layer.query_dense, layer.key_dense, layer.value_dense, layer.output_dense):
            sub.bias.assign(_np(torch.randn(tuple(sub.bias.shape), generator=gen) * 0.1))
        m = axisdot.MultiHeadAttention.from_keras(layer)
    else:
        layer = None
        m = axisdot.MultiHeadAttention(heads, key_dim, query_shape=(None, seq, feat))
        with torch.no_grad():
            for sub in (m.query_dense, m.key_dense, m.value_dense, m.output_dense):
                sub.bias.copy_(torch.randn(tuple(sub.bias.shape), generator=gen) * 0.1)
    hand = HandAttention(m, heads, key_dim)
    mods = {"hand": hand}
    if heads * key_dim == feat:
        mods["torch"] = torch_mha(m, feat, heads)
    m = m.to(device=ctx.device, dtype=dtype).eval()
    mods = {key: mod.to(device=ctx.device, dtype=dtype).eval() for key, mod in mods.items()}
    x = x.to(dtype)
    h = mods["hand"]
    impls: dict[str, Fn] = {"axisdot": lambda: m(x, x), "hand-written": lambda: h(x, x)}
    if "torch" in mods:
        t = mods["torch"]
        impls["torch MHA"] = lambda: t(x, x, x, need_weights=False)
    if layer is not None and dtype == torch.float32:
        impls["keras layer"] = lambda: layer(x, x)
    case = Case("layers", name + suffix(dtype), impls,
                f"self-attention on x ({batch},{seq},{feat}), {heads} heads, key_dim {key_dim}; hand-written: "
                f"projections + F.scaled_dot_product_attention; torch MHA: nn.MultiheadAttention(batch_first=True)",
                dtype=dtype_name(dtype), no_grad=True)
    check(case, loose=False)
    return case


# -- compile -----------------------------------------------------------------------------------

def compile_case(ctx: Ctx, name: str) -> Case:
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(0)
    x, y = ctx.randn((32, 64, 48), gen), ctx.randn((32, 48, 40), gen)
    with_einsum = torch.compile(lambda a, b: torch.relu(torch.einsum("bij,bjk->bik", a, b)) * 2, fullgraph=True)
    with_axisdot = torch.compile(lambda a, b: torch.relu(axisdot.dot(a, b, (2, 1))) * 2, fullgraph=True)
    case = Case("compile", name, {
        "axisdot": lambda: with_axisdot(x, y),
        "torch.einsum": lambda: with_einsum(x, y),
    })
    check(case)
    return case


class AxisdotAttention(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scores = axisdot.Dot(axes=(2, 2))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.scores(q, k), dim=-1)
        return axisdot.batch_dot(weights, v, (2, 1))


class FunctionalAxisdotAttention(torch.nn.Module):
    """The same with axisdot's functions only (no child module): graph facts, not timed."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(axisdot.dot(q, k, (2, 2)), dim=-1)
        return axisdot.batch_dot(weights, v, (2, 1))


class EinsumAttention(torch.nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(torch.einsum("bqd,bkd->bqk", q, k), dim=-1)
        return torch.einsum("bqk,bkd->bqd", weights, v)


class BmmAttention(torch.nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(torch.bmm(q, k.mT), dim=-1)
        return torch.bmm(weights, v)


def graph_facts(model: torch.nn.Module, inputs: list[tuple], args_of_sizes: list[list[tuple]]) -> dict[str, Any]:
    """Graphs, graph breaks, guards, FX ops, generated inductor code: "n/a" where torch's
    private APIs are missing or refuse."""
    facts: dict[str, Any] = {}
    dynamo = torch._dynamo
    try:
        dynamo.reset()
        ex = dynamo.explain(model)(*inputs)
        facts["graphs"] = ex.graph_count
        facts["graph_breaks"] = ex.graph_break_count
        facts["fx_ops"] = ex.op_count
        facts["guards"] = len(ex.out_guards) if ex.out_guards is not None else "n/a"
    except Exception as err:  # noqa: BLE001
        facts.setdefault("graphs", "n/a")
        facts.setdefault("graph_breaks", "n/a")
        facts.setdefault("guards", "n/a")
        facts["explain_error"] = f"{type(err).__name__}: {err}"[:200]
    try:
        from torch._dynamo.testing import CompileCounter

        dynamo.reset()
        counter = CompileCounter()
        compiled = torch.compile(model, backend=counter)
        for args in args_of_sizes:
            compiled(*args)
        facts["frames_compiled_over_batch_sizes"] = counter.frame_count
    except Exception:  # noqa: BLE001
        facts["frames_compiled_over_batch_sizes"] = "n/a"
    try:
        from torch._inductor.utils import run_and_get_code

        dynamo.reset()
        _, code = run_and_get_code(torch.compile(model, fullgraph=True), *inputs)
        facts["inductor_code_chars"] = sum(len(c) for c in code)
    except Exception:  # noqa: BLE001
        facts["inductor_code_chars"] = "n/a"
    return facts


def compile_attention_case(ctx: Ctx, name: str) -> Case:
    gen = torch.Generator().manual_seed(0)

    def qkv(batch: int) -> tuple:
        return tuple(ctx.randn((batch, 64, 32), gen) for _ in range(3))

    inputs = qkv(8)
    sizes = [inputs, qkv(4), qkv(16)]
    models = {"axisdot": AxisdotAttention(), "torch.einsum": EinsumAttention(), "hand-written": BmmAttention()}
    models = {k: m.to(ctx.device).eval() for k, m in models.items()}
    facts = {label: graph_facts(m, inputs, sizes) for label, m in models.items()}
    facts["axisdot functions (not timed)"] = graph_facts(FunctionalAxisdotAttention().to(ctx.device), inputs, sizes)
    torch._dynamo.reset()
    compiled = {k: torch.compile(m, fullgraph=True) for k, m in models.items()}
    ca, ce, cb = compiled["axisdot"], compiled["torch.einsum"], compiled["hand-written"]
    q, k, v = inputs
    impls: dict[str, Fn] = {"axisdot": lambda: ca(q, k, v), "torch.einsum": lambda: ce(q, k, v),
                            "hand-written": lambda: cb(q, k, v)}

    def text(label: str) -> str:
        f = facts[label]
        return (f"{label}: {f.get('graphs')} graph(s), {f.get('graph_breaks')} break(s), {f.get('guards')} guards, "
                f"{f.get('frames_compiled_over_batch_sizes')} frames over batch 8/4/16, "
                f"{f.get('inductor_code_chars')} chars of inductor code")

    case = Case("compile", name, impls, "; ".join(text(k) for k in facts) + " (graphs, breaks, guards: "
                "torch._dynamo.explain; frames: a CompileCounter backend; code: run_and_get_code)",
                {"graph_facts": facts})
    check(case)
    return case


# -- import ----------------------------------------------------------------------------------

IMPORTS = {
    "python -c pass": "pass",
    "import torch": "import torch",
    "import axisdot": "import axisdot",
    "import torch, axisdot; axisdot.dot, axisdot.einsum, axisdot.Dot":
        "import torch, axisdot; axisdot.dot, axisdot.einsum, axisdot.Dot",
}


def importtime_ms(code: str, env: dict[str, str]) -> Optional[float]:
    """Milliseconds ``python -X importtime`` puts in the top-level axisdot modules: a
    steadier figure than a difference of two noisy wall times."""
    try:
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, cwd=str(Path.home()),
                              capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    total = 0
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        if name.startswith(" ") and not name.startswith("  ") and name.strip().split(".")[0] == "axisdot":
            total += int(parts[1])
    return total / 1000


def import_case(ctx: Ctx, name: str, runs: int = 5) -> Case:
    env = dict(os.environ)
    home = str(Path(axisdot.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = home + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    samples: dict[str, list[float]] = {k: [] for k in IMPORTS}
    for _ in range(runs):  # interleaved, as every other group
        for label, code in IMPORTS.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=str(Path.home()),
                           stdout=subprocess.DEVNULL)
            samples[label].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in samples.items()}
    full = "import torch, axisdot; axisdot.dot, axisdot.einsum, axisdot.Dot"
    diffs = {
        "axisdot (with its lazy modules) over import torch": med[full] - med["import torch"],
        "import axisdot over a bare interpreter": med["import axisdot"] - med["python -c pass"],
        "import torch over a bare interpreter": med["import torch"] - med["python -c pass"],
    }
    own = importtime_ms(full, env)
    note = f"median of {runs} fresh interpreters each, interleaved"
    if own is not None:
        note += f"; -X importtime of the last line puts {own:.1f} ms in axisdot's own modules (opt_einsum included)"
    case = Case("import", name, {}, note, {"runs": runs, "differences_s": diffs, "importtime_axisdot_ms": own})
    case.seconds, case.rounds = med, runs
    return case


# -- the list of cases ----------------------------------------------------------------------------

Factory = Callable[[], Case]


def cases(ctx: Ctx) -> Iterator[tuple[str, str, Factory]]:
    """(group, name, factory) triples: each case is built just before it is measured,
    so one case's tensors and warm-up do not weigh on the next."""
    q, args = ctx.quick, ctx.args
    bmm_t = lambda x, y: {"hand-written": lambda: torch.bmm(x, y.mT)}  # noqa: E731
    bmm = lambda x, y: {"hand-written": lambda: torch.bmm(x, y)}  # noqa: E731
    mulsum = lambda x, y: {"hand-written": lambda: (x * y).sum(1, keepdim=True)}  # noqa: E731

    # a. small
    small = [
        ("(64,32)x(64,32) axes=1", "dot", (64, 32), (64, 32), 1, mulsum, "dot"),
        ("(4,3,5)x(4,6,5) axes=(2,2)", "dot", (4, 3, 5), (4, 6, 5), (2, 2), bmm_t, "dot"),
        ("(4,6,5)x(4,5) axes=(2,1)", "dot", (4, 6, 5), (4, 5), (2, 1),
         lambda x, y: {"hand-written": lambda: torch.bmm(x, y.unsqueeze(2)).squeeze(2)}, "dot"),
        ("batch_dot (8,2,2)x(8,2,2) axes=(2,1)", "batch_dot", (8, 2, 2), (8, 2, 2), (2, 1), bmm, "dot"),
        ("tensordot (3,4,5)x(4,5,6) axes=2", "tensordot", (3, 4, 5), (4, 5, 6), 2,
         lambda x, y: {"hand-written": lambda: torch.tensordot(x, y, 2)}, "tensordot"),
        ("dot_general (2,3,4)x(2,4,5) contract=((2,),(1,)) batch=((0,),(0,))", "dot_general", (2, 3, 4), (2, 4, 5),
         (((2,), (1,)), ((0,), (0,))), bmm, None),
    ]
    for name, mode, xs, ys, axes, hands, keras in small:
        yield "small", name, (lambda name=name, mode=mode, xs=xs, ys=ys, axes=axes, hands=hands, keras=keras:
                              two_case(ctx, "small", name, mode, xs, ys, axes, hands, keras=keras))
    yield "small", "einsum bij,jk->bik (2,8,16)x(16,16)", lambda: einsum_case(
        ctx, "small", "einsum bij,jk->bik (2,8,16)x(16,16)", "bij,jk->bik", [(2, 8, 16), (16, 16)],
        hands=lambda x, w: {"hand-written": lambda: torch.matmul(x, w)}, ltr=False, contract=False, keras_ops=True)
    yield "small", "Dot module (8,2,2)x(8,2,2) axes=(2,1)", lambda: dot_module_case(
        ctx, "Dot module (8,2,2)x(8,2,2) axes=(2,1)")

    # b. large
    large = [
        ("attention (32,128,64)x(32,128,64) axes=(2,2)", (32, 128, 64), (32, 128, 64), (2, 2), bmm_t),
        ("article (32,64,10,128)x(32,128,32,15) axes=(3,1)", (32, 64, 10, 128), (32, 128, 32, 15), (3, 1),
         lambda x, y: {"hand-written": lambda: torch.bmm(x.reshape(32, 640, 128), y.reshape(32, 128, 480)).reshape(
             32, 64, 10, 32, 15)}),
        ("article (32,64,10,128)x(32,32,15,128) axes=-1", (32, 64, 10, 128), (32, 32, 15, 128), -1,
         lambda x, y: {"hand-written": lambda: torch.bmm(x.reshape(32, 640, 128), y.reshape(32, 480, 128).mT).reshape(
             32, 64, 10, 32, 15)}),
        ("(8,512,512)x(8,512,512) axes=(2,1)", (8, 512, 512), (8, 512, 512), (2, 1), bmm),
        ("(4096,256)x(4096,256) axes=1", (4096, 256), (4096, 256), 1, mulsum),
    ]
    for name, xs, ys, axes, hands in (large[:1] if q else large):
        for dtype in ctx.dtypes():
            yield "large", name + suffix(dtype), (lambda name=name, xs=xs, ys=ys, axes=axes, hands=hands, dtype=dtype:
                                                  two_case(ctx, "large", name, "dot", xs, ys, axes, hands, dtype=dtype))

    # c. sweep
    for n in ([2, 8, 32] if q else [2, 4, 8, 16, 32, 64, 128, 256]):
        name = f"batch-matmul (8,{n},{n})x(8,{n},{n}) axes=(2,1)"
        yield "sweep", name, (lambda name=name, n=n: two_case(
            ctx, "sweep", name, "dot", (8, n, n), (8, n, n), (2, 1), bmm,
            facts={"sweep": "batch-matmul", "size": n}))
    for b in ([4, 64] if q else [1, 16, 256, 4096]):
        name = f"vector dot ({b},64)x({b},64) axes=1"
        yield "sweep", name, (lambda name=name, b=b: two_case(
            ctx, "sweep", name, "dot", (b, 64), (b, 64), 1, mulsum, facts={"sweep": "vector dot 64", "size": b}))
    for b in ([64, 512] if q else [64, 512, 4096]):
        name = f"vector dot ({b},1024)x({b},1024) axes=1"
        two_hands = lambda x, y, b=b: {  # noqa: E731
            "mul+sum": lambda: (x * y).sum(1, keepdim=True),
            "bmm": lambda: torch.bmm(x.unsqueeze(1), y.unsqueeze(2)).reshape(b, 1),
        }
        yield "sweep", name, (lambda name=name, b=b, two_hands=two_hands: two_case(
            ctx, "sweep", name, "dot", (b, 1024), (b, 1024), 1, two_hands, naive=False,
            facts={"sweep": "vector dot 1024", "size": b, "elementwise_product_MiB": b * 1024 * 4 / 2**20}))

    # d. sizes
    count = 20 if q else 300
    name = f"{count} sizes of bij,jk->bik (2,n,16)x(16,16), n=1..{count}"
    yield "sizes", name, lambda name=name: sizes_case(ctx, name, "bij,jk->bik", lambda n: [(2, n, 16), (16, 16)], count)
    name = f"{count} sizes of bij,jk,kl->bil (2,n,8)x(8,8)x(8,4), n=1..{count}"
    yield "sizes", name, lambda name=name: sizes_case(ctx, name, "bij,jk,kl->bil",
                                                      lambda n: [(2, n, 8), (8, 8), (8, 4)], count)

    # e. cold
    name = "first call of a pattern (cache miss) vs one torch.einsum call"
    yield "cold", name, lambda name=name: cold_dot_case(ctx, name)
    name = "einsum first call bij,jk->bik (cache miss) vs one torch.einsum call"
    yield "cold", name, lambda name=name: cold_einsum_case(ctx, name)

    # f. n-ary
    nary = [("ij,jk,kl->il on 8x8", "ij,jk,kl->il", [(8, 8)] * 3),
            ("bij,bjk,bkl->bil batch 4", "bij,bjk,bkl->bil", [(4, 8, 8)] * 3)]
    if not q:
        nary.insert(0, ("chain bij,jk,kl->bil (16,256,512),(512,512),(512,4)", "bij,jk,kl->bil",
                        [(16, 256, 512), (512, 512), (512, 4)]))
    for name, eq, shapes in nary:
        yield "n-ary", name, (lambda name=name, eq=eq, shapes=shapes: einsum_case(
            ctx, "n-ary", name, eq, shapes, costs=True))
    name = "MPS norm <psi|psi>, 12 sites, bond 32"
    yield "n-ary", name, lambda name=name: mps_case(ctx, name)
    name = "4x4 lattice (PEPS amplitude), bond 4"
    yield "n-ary", name, lambda name=name: lattice_case(ctx, name)

    # g. layers
    sizes = [("small", 2, 8, 16, 16, 2, 8)] + ([] if q else [("large", 8, 512, 256, 1024, 8, 32)])
    for label, batch, seq, feat, _, heads, key_dim in sizes:
        for dtype in ctx.dtypes():
            if label == "small":
                name = f"EinsumDense abc,cd->abd ({batch},{seq},{feat})->({batch},{seq},{feat})"
                yield "layers", name + suffix(dtype), (lambda name=name, dtype=dtype: einsum_dense_case(
                    ctx, name, 2, 8, 16, 16, dtype))
            else:
                name = "EinsumDense abc,cd->abd (32,512,1024)->(32,512,1024)"
                yield "layers", name + suffix(dtype), (lambda name=name, dtype=dtype: einsum_dense_case(
                    ctx, name, 32, 512, 1024, 1024, dtype))
            name = f"MultiHeadAttention ({batch},{seq},{feat}), {heads} heads, key_dim {key_dim}"
            yield "layers", name + suffix(dtype), (lambda name=name, batch=batch, seq=seq, feat=feat, heads=heads,
                                                   key_dim=key_dim, dtype=dtype: mha_case(
                ctx, name, batch, seq, feat, heads, key_dim, dtype))

    # h. compile, i. import
    if not q and not args.no_compile:
        name = "torch.compile'd relu(dot(x, y)) * 2, (32,64,48)x(32,48,40)"
        yield "compile", name, lambda name=name: compile_case(ctx, name)
        name = "torch.compile'd attention Dot(axes=(2,2)), softmax, batch_dot (8,64,32)"
        yield "compile", name, lambda name=name: compile_attention_case(ctx, name)
    if not q:
        name = "import time"
        yield "import", name, lambda: import_case(ctx, "import time")


# -- measuring -------------------------------------------------------------------------------------

def measure(case: Case, rounds: int, min_time: float, budget_s: float) -> None:
    """Interleaved: each round times every implementation once, in turn, with
    torch.utils.benchmark (which synchronizes an accelerator around each block), on as
    many threads as torch has (Timer's default would be one thread)."""
    threads = torch.get_num_threads()
    timers = {k: benchmark.Timer("fn()", globals={"fn": fn}, num_threads=threads) for k, fn in case.impls.items()}
    numbers, block = {}, {}
    grad = torch.no_grad() if case.no_grad else torch.enable_grad()
    with grad:
        for k, t in timers.items():  # calibrate: enough calls for min_time a block
            n = 1
            while True:
                elapsed = t.timeit(n).median * n
                if elapsed >= min_time or n >= 10**6:
                    break
                n *= 10 if elapsed < min_time / 10 else 2
            numbers[k], block[k] = n, elapsed
        # a case whose rounds would outlast the budget gets fewer rounds (at least 3)
        per_round = sum(block[k] * (1 + max(2, numbers[k] // 100) / numbers[k]) for k in timers)
        case.rounds = max(min(rounds, 3), min(rounds, int(budget_s / max(per_round, 1e-9))))
        samples: dict[str, list[float]] = {k: [] for k in timers}
        for _ in range(case.rounds):
            for k, t in timers.items():
                samples[k].append(t.timeit(numbers[k]).median)
    case.results = {k: statistics.median(v) for k, v in samples.items()}


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def group_table(group: str, group_cases: list[Case]) -> str:
    if group == "import":
        lines = ["| import | median s | − import torch | − bare python |", "|---|---|---|---|"]
        for c in group_cases:
            med = c.seconds or {}
            for label, s in med.items():
                over_torch = f"{s - med['import torch']:+.3f}" if "torch," in label else ""
                over_bare = f"{s - med['python -c pass']:+.3f}" if label != "python -c pass" else ""
                lines.append(f"| `{label}` | {s:.3f} | {over_torch} | {over_bare} |")
        return "\n".join(lines)
    present = {k for c in group_cases for k in list(c.results) + list(c.ratios())}
    columns = [col for col in GROUPS[group][1] if col in present]
    columns += sorted(present - set(columns) - {"axisdot"})  # anything a case added beyond the list
    lines = [f"| {group} | axisdot | " + " | ".join(f"÷ {col}" for col in columns) + " |",
             "|---" * (2 + len(columns)) + "|"]
    for c in group_cases:
        ratios = c.ratios()
        cells = [f"{ratios[col]:.2f}" if col in ratios else "" for col in columns]
        lines.append(f"| {c.name} | {fmt_time(c.results['axisdot'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(all_cases: list[Case]) -> list[tuple[str, str]]:
    out = []
    for group in GROUPS:
        mine = [c for c in all_cases if c.group == group]
        if mine:
            out.append((group, group_table(group, mine)))
    return out


def notes_of(all_cases: list[Case]) -> list[str]:
    lines = []
    for c in all_cases:
        note = c.note
        if c.group == "cold" and "clear only" in c.results:
            miss = c.results["axisdot"] - c.results["clear only"]
            note += f"; the miss costs about {fmt_time(miss)} beyond the clearing ({fmt_time(c.results['clear only'])})"
        if c.group == "import":
            diffs = c.facts["differences_s"]
            note += "; " + "; ".join(f"{k}: {v:+.3f} s" for k, v in diffs.items())
        if c.rounds and c.rounds < c.facts.get("_rounds_asked", c.rounds):
            note += f"; {c.rounds} rounds"
        if note:
            lines.append(f"- {c.group} / {c.name}: {note}")
    return lines


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor()
    if not name or name in ("x86_64", "aarch64", "arm", "i386"):
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return name or "cpu"


def installed_version(dist: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return None


def environment(ctx: Ctx, rounds: int, min_time: float) -> dict[str, Any]:
    keras = ctx.keras if ctx.keras_status != "not loaded" else None
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "device": ctx.args.device,
        "device_name": device_name(ctx.device),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "opt_einsum": opt_einsum.__version__,
        "keras": keras.__version__ if keras is not None else installed_version("keras"),
        "keras_status": ctx.keras_status,
        "axisdot": getattr(axisdot, "__version__", "?"),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "rounds": rounds,
        "min_time_s": min_time,
        "quick": ctx.quick,
        "command": shlex.join(["python", "benchmarks/run.py"] + sys.argv[1:]),
    }


def header_lines(env: dict[str, Any]) -> list[str]:
    return [
        f"- **Date**: {env['date']}",
        f"- **Device**: {env['device']} — {env['device_name']} ({env['cpu_count']} CPUs, torch on "
        f"{env['threads']} thread(s)); {env['platform']}",
        f"- **Versions**: Python {env['python']}, torch {env['torch']}, opt_einsum {env['opt_einsum']}, "
        f"Keras: {env['keras_status']}, axisdot {env['axisdot']}",
        f"- **Load average** at the end (1, 5, 15 min): {env['load_average']} — on a shared machine, other "
        f"processes stall torch's parallel regions and every ratio moves toward 1",
        f"- **Method**: {env['rounds']} interleaved rounds (fewer for cases that would outlast the time budget; "
        f"see notes), blocks of at least {env['min_time_s']} s, medians; ratios are axisdot ÷ other "
        f"(below 1: axisdot is faster)",
        f"- **Command**: `{env['command']}`",
    ]


def write(path: str, text: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def markdown(env: dict[str, Any], all_cases: list[Case], skipped: list[str]) -> str:
    parts = ["# axisdot benchmark", "", *header_lines(env), ""]
    for group, text in tables(all_cases):
        parts += [f"## {group}", "", GROUPS[group][0] + ".", "", text, ""]
    if skipped:
        parts += ["Skipped: " + "; ".join(skipped) + ".", ""]
    notes = notes_of(all_cases)
    if notes:
        parts += ["## Notes", "", *notes, ""]
    return "\n".join(parts)


def results_json(env: dict[str, Any], all_cases: list[Case], skipped: list[str]) -> str:
    out = []
    for c in all_cases:
        out.append({
            "group": c.group,
            "case": c.name,
            "dtype": c.dtype,
            "median_s": c.seconds if c.seconds is not None else c.results,
            "ratios": c.ratios(),
            "rounds": c.rounds,
            "note": c.note,
            "facts": {k: v for k, v in c.facts.items() if not k.startswith("_")},
        })
    return json.dumps({"environment": env, "skipped": skipped, "cases": out}, indent=2, default=str) + "\n"


def chart(all_cases: list[Case], path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no chart: matplotlib is not installed; pip install 'axisdot[bench]')", file=sys.stderr)
        return
    panels = [
        ("batch-matmul", "side n of (8,n,n)x(8,n,n)", ("hand-written", "torch.einsum")),
        ("vector dot 64", "batch b of (b,64)x(b,64)", ("hand-written", "torch.einsum")),
        ("vector dot 1024", "batch b of (b,1024)x(b,1024)", ("faster hand", "mul+sum", "bmm", "torch.einsum")),
    ]
    panels = [p for p in panels if any(c.facts.get("sweep") == p[0] for c in all_cases)]
    if not panels:
        print("(no chart: no sweep case was run)", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, (sweep, xlabel, others) in zip(axes[0], panels):
        mine = sorted((c for c in all_cases if c.facts.get("sweep") == sweep), key=lambda c: c.facts["size"])
        for other in others:
            pts = [(c.facts["size"], c.ratios()[other]) for c in mine if other in c.ratios()]
            if pts:
                style = "--" if other in ("mul+sum", "bmm") else "-"
                ax.plot(*zip(*pts), style, marker="o", label=f"axisdot ÷ {other}")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("time ratio (below 1: axisdot faster)")
        ax.set_title(sweep)
        ax.legend(fontsize=8)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    print(f"chart written to {path}", file=sys.stderr)


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
