"""torch.compile (fullgraph, dynamic shapes), torch.export and ONNX export."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from test_autograd import CALLS, leaf  # the front ends' calls, shared with the gradient tests
from torch._dynamo.testing import CompileCounter

import axisdot

pytestmark = pytest.mark.slow  # subprocesses, compiles or whole models: seconds each

# Distinct primes so that no two sizes coincide (torch.compile would otherwise
# "duck size" them into one symbol and recompile when they part).
SIZES = [(3, 5, 7, 11), (13, 17, 19, 23), (29, 31, 37, 41), (2, 43, 47, 53)]


FRONT_ENDS = {
    "dot": (lambda x, y, z: axisdot.dot(x, y, (2, 1)), lambda b, m, k, n: [(b, m, k), (b, k, n), (1,)]),
    "dot-normalize": (lambda x, y, z: axisdot.dot(x, y, -1, normalize=True), lambda b, m, k, n: [(b, m, k), (b, n, k), (1,)]),
    "dot-vector": (lambda x, y, z: axisdot.dot(x, y, 1), lambda b, m, k, n: [(b, k), (b, k), (1,)]),
    "batch_dot": (lambda x, y, z: axisdot.batch_dot(x, y), lambda b, m, k, n: [(b, m, k), (b, k, n), (1,)]),
    "tensordot": (lambda x, y, z: axisdot.tensordot(x, y, 1), lambda b, m, k, n: [(m, k), (k, n), (1,)]),
    "dot_general": (lambda x, y, z: axisdot.dot_general(x, y, ((1,), (0,)), ((2,), (1,))),
                    lambda b, m, k, n: [(m, k, b), (k, b), (1,)]),
    "dot-rank4": (lambda x, y, z: axisdot.dot(x, y, (3, 1)), lambda b, m, k, n: [(b, m, n, k), (b, k, 61, m), (1,)]),
    "einsum": (lambda x, y, z: axisdot.einsum("bij,bjk,bkl->bil", x, y, z), lambda b, m, k, n: [(b, m, k), (b, k, n), (b, n, 59)]),
    "Dot": (lambda x, y, z, _m=axisdot.Dot(axes=(2, 2), normalize="tf_keras"): _m(x, y),
            lambda b, m, k, n: [(b, m, k), (b, n, k), (1,)]),
}


def run_compiled(name, dynamic):
    fn, shapes = FRONT_ENDS[name]
    counter = CompileCounter()
    compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic, backend=counter)
    gen = torch.Generator().manual_seed(0)
    for sizes in SIZES:
        args = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes(*sizes)]
        torch.testing.assert_close(compiled(*args), fn(*args))
    return counter.frame_count


@pytest.mark.parametrize("name", list(FRONT_ENDS))
def test_compile_with_dynamic_shapes_makes_one_graph_for_every_size(name):
    assert run_compiled(name, dynamic=True) == 1


@pytest.mark.parametrize("name", ["dot", "einsum", "Dot"])
def test_compile_with_default_dynamic_settles_after_its_automatic_recompile(name):
    assert run_compiled(name, dynamic=None) == 2


class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scores = axisdot.Dot(axes=(2, 2), normalize=True)

    def forward(self, q, k, v):
        weights = torch.softmax(self.scores(q, k), dim=-1)
        return axisdot.batch_dot(weights, v, (2, 1)) + axisdot.einsum("bij,bjk->bik", weights, v)


def model_inputs(batch, gen):
    return (torch.randn(batch, 4, 8, generator=gen), torch.randn(batch, 6, 8, generator=gen),
            torch.randn(batch, 6, 5, generator=gen))


def test_export_with_a_dynamic_batch_runs_other_batch_sizes_with_plain_aten_ops():
    gen = torch.Generator().manual_seed(0)
    model = Model()
    batch = torch.export.Dim("batch", min=2)
    program = torch.export.export(model, model_inputs(3, gen), dynamic_shapes=({0: batch}, {0: batch}, {0: batch}))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert all(t.startswith("aten.") for t in targets), targets
    assert "aten.bmm.default" in targets
    for size in (2, 9):
        inputs = model_inputs(size, gen)
        torch.testing.assert_close(program.module()(*inputs), model(*inputs))


def onnx_session(module, args, opset):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime (the 'onnx' test extra) is not installed")
    pytest.importorskip("onnx", reason="onnx (the 'onnx' test extra) is not installed")
    names = [f"in{i}" for i in range(len(args))]
    buffer = io.BytesIO()
    torch.onnx.export(module, args, buffer, opset_version=opset, dynamo=False, input_names=names,
                      output_names=["out"], dynamic_axes={n: {0: "batch"} for n in names})
    return ort.InferenceSession(buffer.getvalue()), names


@pytest.mark.parametrize("module, shapes", [
    (axisdot.Dot(axes=(3, 1), normalize=True), [(3, 4, 5, 6), (3, 6, 2, 3)]),
    (axisdot.Dot(axes=1), [(3, 4), (3, 4)]),
    (Model(), [(3, 4, 8), (3, 6, 8), (3, 6, 5)]),
], ids=["rank4-normalize", "vector", "attention-with-einsum"])
def test_onnx_export_at_opset_11_runs_in_onnxruntime(module, shapes):
    gen = torch.Generator().manual_seed(0)
    session, names = onnx_session(module, tuple(torch.randn(s, generator=gen) for s in shapes), opset=11)
    inputs = [torch.randn((7,) + s[1:], generator=gen) for s in shapes]
    got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
    np.testing.assert_allclose(got, module(*inputs).detach().numpy(), atol=1e-5)


class Diagonal(torch.nn.Module):
    def forward(self, a):
        return axisdot.einsum("bii->bi", a)


def test_onnx_export_of_an_einsum_diagonal_names_the_op_and_the_opset_it_needs():
    pytest.importorskip("onnx", reason="onnx (the 'onnx' test extra) is not installed")
    with pytest.raises(Exception, match=r"aten::diagonal.*opset version 11.*version 13"):
        onnx_session(Diagonal(), (torch.randn(2, 3, 3),), opset=11)
    session, names = onnx_session(Diagonal(), (torch.randn(2, 3, 3),), opset=13)
    a = torch.randn(5, 3, 3)
    np.testing.assert_allclose(session.run(None, {names[0]: a.numpy()})[0], torch.diagonal(a, 0, 1, 2).numpy(), atol=1e-6)


@pytest.mark.parametrize("name", list(CALLS))
def test_torch_compile_fullgraph_runs_without_graph_breaks(name):
    fn, xs, ys = CALLS[name]
    x, y = leaf(*xs, seed=0).detach(), leaf(*ys, seed=1).detach()
    counter = CompileCounter()
    compiled = torch.compile(fn, fullgraph=True, backend=counter)
    torch.testing.assert_close(compiled(x, y), fn(x, y))
    assert counter.frame_count == 1
