"""axisdot.einsum_expression: planned once, called many times, and a good PyTorch citizen."""
from __future__ import annotations

import opt_einsum
import pytest
import torch
from torch._dynamo.testing import CompileCounter

import axisdot
from axisdot.testing.reference import reference_einsum

EQ = "bij,bjk,bkl->bil"
SHAPES = [(2, 3, 4), (2, 4, 5), (2, 5, 6)]


def operands(dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES]


@pytest.mark.parametrize("optimize", ["auto", "greedy", "optimal", "dp", "branch-2", False, [(1, 2), (0, 1)]],
                         ids=str)
def test_an_expression_gives_the_reference_and_opt_einsums_path(optimize):
    expr = axisdot.einsum_expression(EQ, *SHAPES, optimize=optimize)
    ops = operands()
    torch.testing.assert_close(expr(*ops), torch.as_tensor(reference_einsum(EQ, *ops)))
    torch.testing.assert_close(expr(ops), expr(*ops))  # operands as one list, as einsum takes them
    if optimize is not False:
        path, _ = opt_einsum.contract_path(EQ, *SHAPES, shapes=True, optimize=optimize)
        assert [tuple(sorted(s)) for s in expr.path] == [tuple(sorted(s)) for s in path]


def test_the_repr_says_what_it_runs():
    expr = axisdot.einsum_expression(EQ, *SHAPES)
    text = repr(expr)
    assert EQ in text and "(2, 3, 4)" in text and "(2, 3, 6)" in text and "2 steps" in text


def test_explain_gives_the_report_of_axisdot_explain():
    expr = axisdot.einsum_expression(EQ, *SHAPES)
    mine, theirs = expr.explain(), axisdot.explain(EQ, *SHAPES)
    assert (mine.equation, mine.path, mine.flops, mine.largest_intermediate, mine.output_shape, mine.code) == \
        (theirs.equation, theirs.path, theirs.flops, theirs.largest_intermediate, theirs.output_shape, theirs.code)
    assert str(mine).replace("cached", "compiled now") == str(theirs).replace("cached", "compiled now")


@pytest.mark.parametrize("bad, fragments", [
    ([(2, 3, 4), (2, 4, 7), (2, 5, 6)], ["operand 1 axis 2", "size 7", "size 5", "(2, 4, [7])"]),
    ([(2, 3, 4), (2, 4), (2, 5, 6)], ["operand 1", "rank 2", "(2, 4, 5)"]),
    ([(2, 3, 4), (2, 4, 5)], ["3 operands, got 2"]),
], ids=["size", "rank", "count"])
def test_a_shape_that_does_not_fit_is_a_clear_error(bad, fragments):
    expr = axisdot.einsum_expression(EQ, *SHAPES)
    with pytest.raises(axisdot.ShapeError) as info:
        expr(*[torch.zeros(s) for s in bad])
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_building_refuses_what_einsum_refuses():
    with pytest.raises(axisdot.ShapeError, match="letter 'j'"):
        axisdot.einsum_expression("ij,jk->ik", (2, 3), (4, 5))
    with pytest.raises(axisdot.ArgumentError, match="optimize='fastest'"):
        axisdot.einsum_expression("ij,jk->ik", (2, 3), (3, 5), optimize="fastest")
    with pytest.raises(axisdot.AxisdotTypeError, match="full shape"):
        axisdot.einsum_expression("ij,jk->ik", (2, None), (3, 5))


def test_gradients_pass_gradcheck():
    expr = axisdot.einsum_expression(EQ, *SHAPES)
    ops = [t.requires_grad_() for t in operands()]
    assert torch.autograd.gradcheck(expr, ops)


def test_compile_fullgraph_makes_one_graph():
    expr = axisdot.einsum_expression(EQ, *SHAPES)
    counter = CompileCounter()
    compiled = torch.compile(lambda a, b, c: torch.relu(expr(a, b, c)), fullgraph=True, backend=counter)
    for seed in range(3):
        ops = operands(seed=seed)
        torch.testing.assert_close(compiled(*ops), torch.relu(expr(*ops)))
    assert counter.frame_count == 1


class Chain(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.expr = axisdot.einsum_expression(EQ, *SHAPES)

    def forward(self, a, b, c):
        return self.expr(a, b, c)


def test_export_holds_only_aten_ops():
    ops = operands()
    program = torch.export.export(Chain(), tuple(ops))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert targets and all(t.startswith("aten.") for t in targets), targets
    torch.testing.assert_close(program.module()(*ops), Chain()(*ops))


def test_vmap_over_a_leading_axis_equals_the_loop():
    expr = axisdot.einsum_expression(EQ, *SHAPES)
    gen = torch.Generator().manual_seed(5)
    stacked = [torch.randn((4,) + s, generator=gen, dtype=torch.float64) for s in SHAPES]
    got = torch.func.vmap(expr)(*stacked)
    expected = torch.stack([expr(*[t[i] for t in stacked]) for i in range(4)])
    torch.testing.assert_close(got, expected)
