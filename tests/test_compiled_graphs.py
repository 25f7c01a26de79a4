"""Under torch.compile, a model written with axisdot compiles to what the same model
written with torch.bmm compiles to: one graph each, the same guards on the inputs, and
the same generated code (issue 13)."""
from __future__ import annotations

import re

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


def _compile(fn, *args):
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("inductor")
    out, code = run_and_get_code(torch.compile(fn, backend=counter, fullgraph=True), *args)
    [entry] = _debug_get_cache_entry_list(fn.__code__)
    guards = str(entry.guard_manager)
    return out, counter.frame_count, code, guards


def _code_lines(code: list[str]) -> list[str]:
    """The generated code with what only names differ in (input numbering, ids) evened out."""
    text = re.sub(r"arg\d+_1", "arg", "\n".join(code))
    text = re.sub(r"AOT ID: \[.*\]|/tmp/\S+|\b[0-9a-f]{16,}\b", "", text)
    return sorted(line.strip() for line in text.splitlines() if line.strip())


def _input_guards(guards: str) -> list[str]:
    """Guards on the inputs and the ambient state: everything but the identity checks on
    the globals each model calls (torch.bmm there, axisdot's functions here)."""
    kept = []
    for line in guards.splitlines():
        if "G[" in line or "source=G," in line:
            continue
        kept.append(re.sub(r"#.*$|in (with_axisdot|by_hand)|\d{6,}", "", line).strip())
    return kept


def test_the_compiled_model_is_the_hand_written_one():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(s, generator=gen) for s in ((4, 8, 16), (4, 10, 16), (4, 10, 12)))
    out_a, graphs_a, code_a, guards_a = _compile(with_axisdot, q, k, v)
    out_b, graphs_b, code_b, guards_b = _compile(by_hand, q, k, v)
    torch.testing.assert_close(out_a, out_b)
    assert graphs_a == graphs_b == 1
    assert _code_lines(code_a) == _code_lines(code_b)
    assert _input_guards(guards_a) == _input_guards(guards_b)
    assert "axisdot" not in "\n".join(code_a)  # nothing of axisdot's Python is left in the compiled code
