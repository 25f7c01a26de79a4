"""Under torch.compile, a model written with axisdot compiles to what the same model
written with torch.bmm compiles to: one graph each, the same guards on the inputs, and
the same generated code (issue 13). Inductor runs in a child process: the C++ it builds
can change process-wide floating-point state (flush-to-zero, on older torch)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # subprocesses, compiles or whole models: seconds each

SCRIPT = textwrap.dedent('''
    import json, re, sys
    import torch
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list
    from torch._dynamo.testing import CompileCounterWithBackend
    from torch._inductor.utils import run_and_get_code
    import axisdot

    SCORES = axisdot.Dot(axes=(2, 2))

    def with_axisdot(q, k, v):
        weights = torch.softmax(SCORES(q, k), dim=-1)
        return axisdot.batch_dot(weights, v, (2, 1)) + axisdot.einsum("bij,bjk->bik", weights, v)

    def by_hand(q, k, v):
        weights = torch.softmax(torch.bmm(q, k.mT), dim=-1)
        return torch.bmm(weights, v) + torch.bmm(weights, v)

    def guards_of(fn):
        [entry] = _debug_get_cache_entry_list(fn.__code__)
        manager = getattr(entry, "guard_manager", None)
        if manager is not None:
            return str(manager).splitlines()
        return list(getattr(entry.check_fn, "code_parts", []))  # older torch

    def code_lines(code):
        text = re.sub(r"arg\\d+_1", "arg", "\\n".join(code))
        text = re.sub(r"AOT ID: \\[.*\\]|/tmp/\\S+|\\b[0-9a-f]{16,}\\b", "", text)
        return sorted(line.strip() for line in text.splitlines() if line.strip())

    def input_guards(lines):
        # everything but the subtree of guards on globals: the identity checks on the
        # functions each model calls (torch.bmm there, axisdot's functions here)
        kept, skip_deeper = [], None
        for line in lines:
            depth = len(line) - len(line.lstrip("| "))
            if skip_deeper is not None and depth > skip_deeper:
                continue
            skip_deeper = None
            if "source=G," in line or "G[" in line:
                skip_deeper = depth
                continue
            kept.append(re.sub(r"#.*$|in (with_axisdot|by_hand)|\\d{6,}", "", line).strip())
        return kept

    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(s, generator=gen) for s in ((4, 8, 16), (4, 10, 16), (4, 10, 12)))
    result = {}
    for fn in (with_axisdot, by_hand):
        torch._dynamo.reset()
        counter = CompileCounterWithBackend("inductor")
        out, code = run_and_get_code(torch.compile(fn, backend=counter, fullgraph=True), q, k, v)
        result[fn.__name__] = {"graphs": counter.frame_count, "code": code_lines(code),
                               "guards": input_guards(guards_of(fn)), "out": out.flatten().tolist(),
                               "mentions_axisdot": "axisdot" in "\\n".join(code)}
    print(json.dumps(result))
''')


def test_the_compiled_model_is_the_hand_written_one():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    mine, hand = result["with_axisdot"], result["by_hand"]
    assert mine["graphs"] == hand["graphs"] == 1
    assert mine["code"] == hand["code"]
    assert mine["guards"] == hand["guards"] and mine["guards"]
    assert not mine["mentions_axisdot"]  # nothing of axisdot's Python is left in the compiled code
    assert max(abs(a - b) for a, b in zip(mine["out"], hand["out"])) < 1e-5
