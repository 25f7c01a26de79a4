"""A corpus of real-world einsum equations (issue 21): axisdot.einsum against
torch.einsum and opt_einsum.contract, warm, interleaved, on one thread; time and
temporaries (the peak of memory allocated beyond the operands and the output).

    python benchmarks/einsum_corpus.py                 # every case, 15 rounds
    python benchmarks/einsum_corpus.py --rounds 5 --only moe --markdown out.md

Every equation comes from a real project's code or issue thread (the ``source`` of each
case; the sizes are those the code runs at or the thread reports, scaled down where one
call would take over ~0.1 s on one CPU thread). None comes from axisdot's own tests.

Time: each round runs the three implementations once each, in a rotating order, after
a warm-up; the table gives the median over rounds and the ratios axisdot ÷ torch.einsum
and axisdot ÷ opt_einsum.contract (below 1: axisdot is faster).

Temporaries: a ``TorchDispatchMode`` sees every aten op a call runs (torch.einsum and
opt_einsum.contract are made of aten ops too), records the storage of each tensor an op
creates (views create none) and, after each op, the bytes of those storages still alive;
the temporaries are the largest such sum, the output's storage left out. Memory a kernel
allocates inside itself (a BLAS call's packing) is invisible to all three alike.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import opt_einsum
import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import axisdot  # noqa: E402


class Case(NamedTuple):
    group: str
    name: str
    equation: str
    shapes: tuple[tuple[int, ...], ...]
    source: str


GH = "https://github.com/"

#: (group, name, equation, shapes, source)
CORPUS: tuple[Case, ...] = (
    # -- issue threads -------------------------------------------------------------------
    Case("issues", "cupy#4834 quadratic form", "ab,cbe,ae->ac", ((20000, 100), (20, 100, 100), (20000, 100)),
         GH + "cupy/cupy/issues/4834"),
    Case("issues", "pytorch#10661 (Pyro)", "ac,abc->cb", ((2, 20000), (2, 2, 20000)),
         GH + "pytorch/pytorch/issues/10661"),
    Case("issues", "pytorch#41467 batched matmul", "bij,bjf->bif", ((1000, 100, 101), (1000, 101, 3)),
         GH + "pytorch/pytorch/issues/41467"),
    Case("issues", "pytorch#41467 broadcast", "bic,bicf->bif", ((10000, 100, 1), (10000, 100, 1, 3)),
         GH + "pytorch/pytorch/issues/41467"),
    Case("issues", "pytorch#101249 row dots", "Nc,Nc->N", ((1048576, 2), (1048576, 2)),
         GH + "pytorch/pytorch/issues/101249"),
    Case("issues", "pytorch#32591 broadcast sum", "...ijk,...ijk->...", ((64, 16, 2, 16, 2, 8), (64, 16, 2, 16, 2, 8)),
         GH + "pytorch/pytorch/issues/32591"),
    Case("issues", "nn.Bilinear (pytorch#6110, #23127)", "bi,oij,bj->bo", ((512, 64), (128, 64, 64), (512, 64)),
         GH + "pytorch/pytorch/pull/23127"),
    # -- mixture of experts --------------------------------------------------------------
    Case("moe", "GShard dispatch (fairscale)", "sec,sm->ecm", ((1024, 16, 128), (1024, 512)),
         GH + "facebookresearch/fairscale/blob/main/fairscale/nn/moe/moe_layer.py"),
    Case("moe", "GShard combine (fairscale)", "sec,ecm->sm", ((1024, 16, 128), (16, 128, 512)),
         GH + "facebookresearch/fairscale/blob/main/fairscale/nn/moe/moe_layer.py"),
    Case("moe", "switch dispatch", "bnd,bnec->becd", ((4, 256, 256), (4, 256, 8, 64)),
         GH + "jaisidhsingh/pytorch-mixtures/blob/main/pytorch_mixtures/moe_layer.py"),
    Case("moe", "switch combine", "becd,bnec->bnd", ((4, 8, 64, 256), (4, 256, 8, 64)),
         GH + "jaisidhsingh/pytorch-mixtures/blob/main/pytorch_mixtures/moe_layer.py"),
    Case("moe", "padded expert FFN", "eth,eih->eti", ((8, 256, 512), (8, 1024, 512)),
         GH + "giteewif/lmp/blob/main/test/EINSUM_DIFFERENT_TOKENS_ANSWER.md"),
    # -- language / attention ------------------------------------------------------------
    Case("language", "attention scores", "bhid,bhjd->bhij", ((8, 8, 256, 32), (8, 8, 256, 32)),
         GH + "Peter-obi/protein-structure-prediction-from-scratch/blob/main/Part-1-Pytorch-Fundamentals/MHA.py"),
    Case("language", "Reformer query-key projection", "balh,ahr->balr", ((4, 2, 512, 256), (2, 256, 64)),
         GH + "huggingface/transformers/blob/main/src/transformers/models/reformer/modeling_reformer.py"),
    Case("language", "linear attention context", "bhdn,bhen->bhde", ((4, 8, 32, 1024), (4, 8, 32, 1024)),
         GH + "MT121201/DFM_1/blob/main/Backbone/Attention/LinearAttention.py"),
    Case("language", "linear attention output", "bhde,bhdn->bhen", ((4, 8, 32, 32), (4, 8, 32, 1024)),
         GH + "MT121201/DFM_1/blob/main/Backbone/Attention/LinearAttention.py"),
    Case("language", "selective scan: A times dt", "gdn,lbgd->lbgdn", ((4, 64, 16), (64, 2, 4, 64)),
         GH + "MzeroMiko/mamba-mini/blob/main/README.md"),
    Case("language", "selective scan: B u exp dt", "lbgn,lbgd,lbgdn,lbgd->lbgdn",
         ((64, 2, 4, 16), (64, 2, 4, 64), (64, 2, 4, 64, 16), (64, 2, 4, 64)),
         GH + "MzeroMiko/mamba-mini/blob/main/README.md"),
    Case("language", "selective scan: C h", "lbgn,lbgdn->lbgd", ((64, 2, 4, 16), (64, 2, 4, 64, 16)),
         GH + "MzeroMiko/mamba-mini/blob/main/README.md"),
    # -- vision / structural biology ---------------------------------------------------------
    Case("vision", "AlphaFold outer product mean", "...bac,...dae->...bdce", ((64, 128, 32), (64, 128, 32)),
         GH + "kim-iljung/AlphaFold2_cuEquivariance/blob/main/module/outer_product_mean.py"),
    Case("vision", "AlphaFold outer product norm", "...abc,...adc->...bdc", ((64, 128, 1), (64, 128, 1)),
         GH + "kim-iljung/AlphaFold2_cuEquivariance/blob/main/module/outer_product_mean.py"),
    Case("vision", "nanofold outer product", "...i,...j->...ij", ((128, 128, 32), (128, 128, 32)),
         GH + "ogchen/nanofold/blob/main/nanofold/training/model/outer_product_mean.py"),
    Case("vision", "outer product (issue 21)", "bi,bj->bij", ((256, 128), (256, 128)),
         GH + "pytorch/pytorch/pull/23127"),
    # -- quantum chemistry (coupled cluster) ----------------------------------------------
    Case("science", "CCD Foo intermediate", "klcd,cdjl->kj", ((16, 16, 48, 48), (48, 48, 16, 16)),
         GH + "r-peng/pyscf/blob/master/pyscf/cc/td_occd_slow.py"),
    Case("science", "CCD ladder (particle-particle)", "abcd,cdij->abij", ((48, 48, 48, 48), (48, 48, 16, 16)),
         GH + "r-peng/pyscf/blob/master/pyscf/cc/td_occd_slow.py"),
    Case("science", "CCD hole-hole", "klij,abkl->abij", ((16, 16, 16, 16), (48, 48, 16, 16)),
         GH + "r-peng/pyscf/blob/master/pyscf/cc/td_occd_slow.py"),
    Case("science", "CCD ring", "kbcj,acik->abij", ((16, 48, 48, 16), (48, 48, 16, 16)),
         GH + "r-peng/pyscf/blob/master/pyscf/cc/td_occd_slow.py"),
    Case("science", "CCD ring intermediate", "klcd,bdjl->kbcj", ((16, 16, 48, 48), (48, 48, 16, 16)),
         GH + "r-peng/pyscf/blob/master/pyscf/cc/td_occd_slow.py"),
    Case("science", "CCSDT energy term", "ijab,aj,bi->", ((24, 24, 64, 64), (64, 24), (64, 24)),
         GH + "pwborthwick/harpy/blob/master/codes/ccsdt.py"),
    Case("science", "CCSDT singles term", "jkib,ak,bj->ai", ((24, 24, 24, 64), (64, 24), (64, 24)),
         GH + "pwborthwick/harpy/blob/master/codes/ccsdt.py"),
    Case("science", "CCSDT triples term", "jkbc,abcijk->ai", ((10, 10, 30, 30), (30, 30, 30, 10, 10, 10)),
         GH + "pwborthwick/harpy/blob/master/codes/ccsdt.py"),
    Case("science", "QCCSD lambda term", "bc,ibac->ai", ((64, 64), (24, 64, 64, 64)),
         GH + "hkve/quadratictheory/blob/main/src/clusterfock/cc/rhs/t1transform_l_inter_QCCSD.py"),
    Case("science", "QCCSD lambda occupied term", "jk,ikja->ai", ((24, 24), (24, 24, 24, 64)),
         GH + "hkve/quadratictheory/blob/main/src/clusterfock/cc/rhs/t1transform_l_inter_QCCSD.py"),
    # -- tensor networks -----------------------------------------------------------------
    Case("tensor-network", "MPS site times operator", "ji,aib->ajb", ((4, 4), (128, 4, 128)),
         GH + "cmendl/tensor_networks"),
    Case("tensor-network", "MPS transfer step", "ab,aic,bid->cd", ((128, 128), (128, 4, 128), (128, 4, 128)),
         GH + "cmendl/tensor_networks"),
)


class Temporaries(TorchDispatchMode):
    """Peak bytes of storages created inside it and alive after an op, the final output's
    storage left out (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.created: dict[int, tuple[StorageWeakRef, int]] = {}
        self.snapshots: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    storage = t.untyped_storage()
                    key = storage._cdata
                    if key not in self.created:
                        self.created[key] = (StorageWeakRef(storage), storage.nbytes())
        self.snapshots.append(tuple(k for k, (ref, _n) in self.created.items() if not ref.expired()))
        return out

    def peak(self, output: torch.Tensor) -> int:
        out_key = output.untyped_storage()._cdata
        return max((sum(self.created[k][1] for k in snap if k != out_key) for snap in self.snapshots), default=0)


def temporaries(fn: Callable[[], torch.Tensor]) -> int:
    with Temporaries() as seen:
        out = fn()
    return seen.peak(out)


def _operands(case: Case) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(s, generator=gen) for s in case.shapes]


def implementations(case: Case, ops: Sequence[torch.Tensor]) -> dict[str, Callable[[], torch.Tensor]]:
    eq = case.equation
    return {
        "axisdot": lambda: axisdot.einsum(eq, *ops),
        "torch.einsum": lambda: torch.einsum(eq, *ops),
        "opt_einsum": lambda: opt_einsum.contract(eq, *ops, backend="torch"),
    }


def _repeats(fn: Callable[[], torch.Tensor]) -> int:
    """Calls per timing so that one timing takes about 20 ms."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, min(1000, int(0.02 / max(once, 1e-7))))


def measure(case: Case, rounds: int) -> dict[str, object]:
    ops = _operands(case)
    impls = implementations(case, ops)
    expected = impls["torch.einsum"]()
    for name, fn in impls.items():
        torch.testing.assert_close(fn(), expected, rtol=2e-4, atol=2e-4, msg=lambda m: f"{case.name} {name}: {m}")
    reps = {name: _repeats(fn) for name, fn in impls.items()}
    times: dict[str, list[float]] = {name: [] for name in impls}
    names = list(impls)
    for r in range(rounds):
        for name in names[r % 3:] + names[:r % 3]:  # a rotating order
            fn, n = impls[name], reps[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - start) / n)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    temps = {name: temporaries(fn) for name, fn in impls.items()}
    return {"case": case, "time": med, "temporaries": temps}


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f}"


def table(results: Sequence[dict]) -> str:
    lines = ["| group | case | equation | axisdot ms | ÷ torch.einsum | ÷ opt_einsum "
             "| temporaries MiB axisdot / torch / opt_einsum |",
             "|---|---|---|---:|---:|---:|---|"]
    for res in results:
        case, t, m = res["case"], res["time"], res["temporaries"]
        lines.append(f"| {case.group} | [{case.name}]({case.source}) | `{case.equation}` | {t['axisdot'] * 1e3:.3f} | "
                     f"{t['axisdot'] / t['torch.einsum']:.2f} | {t['axisdot'] / t['opt_einsum']:.2f} | "
                     f"{_mib(m['axisdot'])} / {_mib(m['torch.einsum'])} / {_mib(m['opt_einsum'])} |")
    ratios = [r["time"]["axisdot"] / r["time"]["torch.einsum"] for r in results]
    above = [r["case"].name for r, q in zip(results, ratios) if q > 1.0]
    more = [r["case"].name for r in results if r["temporaries"]["axisdot"] > r["temporaries"]["torch.einsum"]]
    lines += ["", f"{len(results)} cases; axisdot ÷ torch.einsum: median {statistics.median(ratios):.2f}, "
                  f"max {max(ratios):.2f}; above 1.0: {', '.join(above) or 'none'}; "
                  f"more temporaries than torch.einsum: {', '.join(more) or 'none'}"]
    return "\n".join(lines)


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", default="", help="cases whose group or name holds this text")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(list(argv))
    torch.set_num_threads(args.threads)
    cases = [c for c in CORPUS if args.only.lower() in f"{c.group} {c.name}".lower()]
    results = []
    for case in cases:
        res = measure(case, args.rounds)
        t = res["time"]
        print(f"{case.name:40s} {t['axisdot'] * 1e3:9.3f} ms  ÷torch {t['axisdot'] / t['torch.einsum']:.2f}  "
              f"÷opt {t['axisdot'] / t['opt_einsum']:.2f}  temps {_mib(res['temporaries']['axisdot'])} / "
              f"{_mib(res['temporaries']['torch.einsum'])} MiB", flush=True)
        results.append(res)
    text = table(results)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
