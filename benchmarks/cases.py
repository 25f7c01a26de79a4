"""The cases: each group's implementations, built just before they are measured, and
:func:`cases`, the list the suite runs."""
from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

os.environ.setdefault("KERAS_BACKEND", "torch")

import opt_einsum  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from opt_einsum import get_symbol  # noqa: E402
import torch._dynamo  # noqa: E402

from harness import Case, Ctx, Fn, check, dtype_name, suffix  # noqa: E402  (first: it finds axisdot)

import axisdot  # noqa: E402
import axisdot.cache  # noqa: E402  (the plan caches the cold group clears, as axisdot.cache)
from axisdot import cache  # noqa: E402


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

