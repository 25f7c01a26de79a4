"""Paths under ``torch.compile(dynamic=True)`` (issue 21): planned for the static sizes
and the size hints of the symbolic ones, never for placeholder sizes, and guarded: sizes
where another path is cheaper recompile; ``torch.export`` takes no such guard. The FLOPs of the
compiled graph are counted from the matrix products in the aten graph AOTAutograd
hands the backend (their symbolic shapes evaluated at their hints); eager FLOPs from
the products a dispatch mode sees."""
from __future__ import annotations

import math

import pytest
import torch
from aten_log import AtenLog
from torch._dynamo.backends.common import aot_autograd

import axisdot

pytestmark = pytest.mark.slow  # subprocesses, compiles or whole models: seconds each


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
    """Multiply-adds of the mm / bmm calls ``fn`` runs, from their operands' shapes."""
    with AtenLog() as log:
        fn(*operands)
    return sum(math.prod(shapes[0]) * shapes[1][-1] for op, shapes in zip(log.ops, log.shapes)
               if op in ("aten.mm.default", "aten.bmm.default"))


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
    # the same graph serves other sizes where no rival path is cheaper (every size doubled)
    doubled = [torch.rand(*(2 * n for n in s)) for s in shapes]
    torch.testing.assert_close(compiled(*doubled), torch.einsum(equation, *doubled), rtol=1e-4, atol=1e-2)


def _compiled_with_graphs(equation):
    graphs = []

    def capture(gm, example_inputs):
        graphs.append(gm)
        return gm

    compiled = torch.compile(lambda *ops: axisdot.einsum(equation, *ops), dynamic=True,
                             backend=aot_autograd(fw_compiler=capture))
    return compiled, graphs


def test_sizes_where_another_path_is_cheaper_recompile_and_take_it():
    torch._dynamo.reset()
    equation = "ab,bc,cd,de->ae"
    compiled, graphs = _compiled_with_graphs(equation)
    # every size distinct in every call, so that torch.compile's duck sizing (one symbol for
    # equal sizes) never recompiles by itself; the cheap order starts at the narrow end
    regimes = {
        "narrow-right": [(61, 59), (59, 53), (53, 67), (67, 3)],
        "narrow-right, other sizes": [(122, 118), (118, 106), (106, 134), (134, 5)],
        "narrow-left": [(3, 59), (59, 53), (53, 67), (67, 61)],
        "narrow-right again": [(71, 59), (59, 53), (53, 67), (67, 2)],
    }
    expected_graphs = {"narrow-right": 1, "narrow-right, other sizes": 1, "narrow-left": 2,
                       "narrow-right again": 2}
    for name, shapes in regimes.items():
        operands = [torch.rand(s, dtype=torch.float64) for s in shapes]
        torch.testing.assert_close(compiled(*operands), torch.einsum(equation, *operands))
        assert len(graphs) == expected_graphs[name], name
    # each graph costs what eager costs at the sizes it was traced for
    for gm, name in zip(graphs, ["narrow-right", "narrow-left"]):
        operands = [torch.rand(s) for s in regimes[name]]
        assert _graph_flops([gm]) == _flops(lambda *ops: axisdot.einsum(equation, *ops), operands), name


def test_export_takes_no_path_guard_and_runs_every_size_in_its_range():
    equation = "ab,bc,cd,de->ae"

    class Chain(torch.nn.Module):
        def forward(self, w, x, y, z):
            return axisdot.einsum(equation, w, x, y, z)

    a, e = torch.export.Dim("a", min=2, max=4096), torch.export.Dim("e", min=2, max=4096)
    example = [torch.rand(s, dtype=torch.float64) for s in [(64, 32), (32, 32), (32, 32), (32, 2)]]
    program = torch.export.export(Chain(), tuple(example), dynamic_shapes=({0: a}, None, None, {1: e}))
    for shapes in ([(64, 32), (32, 32), (32, 32), (32, 2)], [(2, 32), (32, 32), (32, 32), (32, 300)]):
        operands = [torch.rand(s, dtype=torch.float64) for s in shapes]
        torch.testing.assert_close(program.module()(*operands), torch.einsum(equation, *operands))


def test_a_data_dependent_size_takes_no_path_guard():
    """torch refuses to guard on an unbacked size (one that depends on the data)."""
    torch._dynamo.reset()

    def fn(mask, b, c):
        a = mask[mask > 0.5].reshape(-1, 1) * torch.ones(1, 7, dtype=torch.float64)  # (u0, 7)
        return axisdot.einsum("ab,bc,cd->ad", a, b, c)

    gen = torch.Generator().manual_seed(0)
    mask, b, c = (torch.rand(s, generator=gen, dtype=torch.float64) for s in [(40,), (7, 9), (9, 5)])
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True):
        compiled = torch.compile(fn, fullgraph=True, dynamic=True, backend="aot_eager")
        torch.testing.assert_close(compiled(mask, b, c), fn(mask, b, c))
