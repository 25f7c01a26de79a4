"""Paths under ``torch.compile(dynamic=True)`` (issue 21): planned for the static sizes
and the size hints of the symbolic ones, never for placeholder sizes. The FLOPs of the
compiled graph are counted from the matrix products in the aten graph AOTAutograd
hands the backend (their symbolic shapes evaluated at their hints); eager FLOPs from
the products a dispatch mode sees."""
from __future__ import annotations

import math

import pytest
import torch
from torch._dynamo.backends.common import aot_autograd
from torch.utils._python_dispatch import TorchDispatchMode

import axisdot

pytestmark = pytest.mark.slow  # subprocesses, compiles or whole models: seconds each


class MatmulFlops(TorchDispatchMode):
    """Multiply-adds of the mm / bmm calls run inside it, from their operands' shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in ("mm", "bmm"):
            x, y = args[0], args[1]
            self.flops += math.prod(x.shape) * y.shape[-1]
        return func(*args, **(kwargs or {}))


CHAINS = {
    # the cheap order starts at the narrow end; with every size taken as 8 all orders tie
    "narrow-right": ("ab,bc,cd,de->ae", [(256, 256), (256, 256), (256, 256), (256, 2)]),
    "narrow-left": ("ab,bc,cd,de->ae", [(2, 256), (256, 256), (256, 256), (256, 256)]),
    "ten-matrices": ("ab,bc,cd,de,ef,fg,gh,hi,ij,jk->ak",
                     [(128, 128)] * 4 + [(128, 4), (4, 128)] + [(128, 128)] * 4),
}


def hint_int(n) -> int:
    return n if isinstance(n, int) else n.node.hint


def _graph_flops(graphs) -> int:
    flops = 0
    for gm in graphs:
        for node in gm.graph.nodes:
            if node.op == "call_function" and getattr(node.target, "overloadpacket", None) in (
                    torch.ops.aten.mm, torch.ops.aten.bmm):
                x, y = (arg.meta["val"] for arg in node.args[:2])
                flops += math.prod(hint_int(n) for n in x.shape) * hint_int(y.shape[-1])
    return flops


def _flops(fn, operands):
    with MatmulFlops() as count:
        fn(*operands)
    return count.flops


@pytest.mark.parametrize("name", list(CHAINS))
def test_a_dynamic_compiled_path_costs_what_the_eager_path_costs(name):
    equation, shapes = CHAINS[name]
    torch._dynamo.reset()
    operands = [torch.rand(s) for s in shapes]
    graphs = []

    def capture(gm, example_inputs):
        graphs.append(gm)
        return gm

    backend = aot_autograd(fw_compiler=capture)
    compiled = torch.compile(lambda *ops: axisdot.einsum(equation, *ops), dynamic=True, backend=backend)
    torch.testing.assert_close(compiled(*operands), torch.einsum(equation, *operands), rtol=1e-4, atol=1e-3)
    eager = _flops(lambda *ops: axisdot.einsum(equation, *ops), operands)
    assert any(not isinstance(n, int) for gm in graphs for node in gm.graph.nodes if node.op == "placeholder"
               for n in getattr(node.meta.get("val"), "shape", ()))  # the graph is dynamic
    assert _graph_flops(graphs) == eager
    # the same graph serves other sizes, with the path chosen for the first ones
    doubled = [torch.rand(*(2 * n for n in s)) for s in shapes]
    torch.testing.assert_close(compiled(*doubled), torch.einsum(equation, *doubled), rtol=1e-4, atol=1e-2)
