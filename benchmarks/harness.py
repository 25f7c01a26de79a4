"""The harness: what a case is, the context every case is built in, the checks that
every implementation gives the same result, and the interleaved timing."""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

os.environ.setdefault("KERAS_BACKEND", "torch")

import opt_einsum  # noqa: E402
import torch  # noqa: E402
import torch._dynamo  # noqa: E402
from torch.utils import benchmark  # noqa: E402


ROOT = Path(__file__).resolve().parent.parent
try:
    import axisdot  # noqa: E402
except ImportError:  # a clone that is not pip-installed: measure the checkout itself
    sys.path.insert(0, str(ROOT))
    import axisdot  # noqa: E402
import axisdot.cache  # noqa: E402  (the plan caches the cold group clears, as axisdot.cache)


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

