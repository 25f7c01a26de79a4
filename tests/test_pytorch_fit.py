"""axisdot as a first-class PyTorch op: torch.compile with dynamic shapes, export,
ONNX, vmap, meta and fake tensors, odd layouts and sizes."""
from __future__ import annotations

import io
import weakref

import numpy as np
import pytest
import torch
from torch._dynamo.testing import CompileCounter
from torch.utils._python_dispatch import TorchDispatchMode

import axisdot
from axisdot.testing.reference import reference_batch_dot, reference_dot, reference_einsum
from aten_log import AtenLog

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


def test_vmap_over_an_extra_leading_axis_equals_the_loop():
    gen = torch.Generator().manual_seed(0)
    xs, ys = torch.randn(5, 3, 4, 6, generator=gen), torch.randn(5, 3, 2, 6, generator=gen)
    for fn in (lambda a, b: axisdot.dot(a, b, -1), lambda a, b: axisdot.dot(a, b, -1, normalize=True),
               lambda a, b: axisdot.einsum("bij,bkj->bik", a, b), lambda a, b: axisdot.batch_dot(a, b, (2, 2))):
        looped = torch.stack([fn(xs[i], ys[i]) for i in range(5)])
        torch.testing.assert_close(torch.func.vmap(fn)(xs, ys), looped)


def test_func_grad_and_jacrev_agree_with_autograd():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64), torch.randn(2, 4, 5, generator=gen, dtype=torch.float64)
    grad = torch.func.grad(lambda a: axisdot.dot(a, y, (2, 1)).sum())(x)
    torch.testing.assert_close(grad, y.sum(2).unsqueeze(1).expand(2, 3, 4))  # d/dx sum_ijk x_bij y_bjk
    jac = torch.func.jacrev(lambda a: axisdot.dot(a, y, (2, 1)))(x)
    assert jac.shape == (2, 3, 5, 2, 3, 4)
    torch.testing.assert_close(jac[1, 2, 4, 1, 2], y[1, :, 4])


def test_meta_tensors_give_the_shape_of_a_huge_contraction_without_memory():
    x, y = torch.empty(10**6, 512, 64, device="meta"), torch.empty(10**6, 64, 256, device="meta")
    out = axisdot.dot(x, y, (2, 1))
    assert out.device.type == "meta" and tuple(out.shape) == (10**6, 512, 256)
    assert tuple(axisdot.einsum("bij,bjk,bkl->bil", x, y, torch.empty(10**6, 256, 3, device="meta")).shape) == (10**6, 512, 3)


def test_fake_tensors_pass_through():
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    with FakeTensorMode():
        out = axisdot.dot(torch.empty(8, 3, 4), torch.empty(8, 5, 4), -1, normalize=True)
    assert isinstance(out, FakeTensor) and tuple(out.shape) == (8, 3, 5)


COPIES = ("aten.clone", "aten.copy_", "aten._to_copy", "aten.contiguous")


@pytest.mark.parametrize("make, axes", [
    (lambda g: (torch.randn(4, 3, 5, generator=g), torch.randn(4, 5, 6, generator=g)), (2, 1)),
    (lambda g: (torch.randn(4, 3, 5, generator=g), torch.randn(4, 6, 5, generator=g)), (2, 2)),
    (lambda g: (torch.randn(4, 5, 3, generator=g).transpose(1, 2), torch.randn(4, 5, 6, generator=g)), (2, 1)),
    (lambda g: (torch.randn(4, 3, 5, generator=g), torch.randn(4, 6, 5, generator=g).transpose(1, 2)), (2, 1)),
    (lambda g: (torch.randn(4, 6, 10, 8, generator=g), torch.randn(4, 8, 3, 2, generator=g)), (3, 1)),
    (lambda g: (torch.randn(1, 3, 5, generator=g).expand(4, 3, 5), torch.randn(4, 5, 6, generator=g)), (2, 1)),
    (lambda g: (torch.randn(4, 7, generator=g), torch.randn(4, 7, generator=g)), 1),
], ids=["matmul", "attention", "x-transposed-view", "y-transposed-view", "rank4-contiguous", "x-expanded", "vectors"])
def test_views_reach_the_kernel_without_a_copy(make, axes):
    x, y = make(torch.Generator().manual_seed(0))
    with AtenLog() as log:
        out = axisdot.dot(x, y, axes)
    assert not [op for op in log.ops if op.startswith(COPIES)], log.ops
    np.testing.assert_allclose(out.numpy(), reference_dot(x, y, axes), atol=1e-5)


def test_channels_last_and_sliced_inputs_give_the_reference_values():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=gen).to(memory_format=torch.channels_last)
    y = torch.randn(2, 10, 4, 3, generator=gen)[:, ::2]
    for axes in [(1, 3), (2, 2), ((1, 2), (3, 2))]:
        np.testing.assert_allclose(axisdot.dot(x, y, axes).numpy(), reference_dot(x, y, axes), atol=1e-5)


@pytest.mark.parametrize("x_shape, y_shape, axes, expected", [
    ((0, 3, 4), (0, 4, 5), (2, 1), (0, 3, 5)),
    ((0, 4), (0, 4), 1, (0, 1)),
    ((2, 3, 0), (2, 0, 5), (2, 1), (2, 3, 5)),
    ((2, 0), (2, 0), 1, (2, 1)),
], ids=["batch-0", "batch-0-vectors", "contracted-0", "contracted-0-vectors"])
def test_zero_sizes_give_empty_or_zero_results_and_gradients(x_shape, y_shape, axes, expected):
    x = torch.randn(x_shape, requires_grad=True)
    y = torch.randn(y_shape, requires_grad=True)
    out = axisdot.dot(x, y, axes)
    assert tuple(out.shape) == expected and bool((out == 0).all())
    out.sum().backward()
    assert x.grad.shape == x.shape and y.grad.shape == y.shape
    assert bool((x.grad == 0).all()) and bool((y.grad == 0).all())


def test_contractions_needing_more_than_52_letters_run():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((2,) + (1,) * 26 + (2, 2, 3), generator=gen, dtype=torch.float64)
    y = torch.randn((2, 3) + (1,) * 26 + (2, 2), generator=gen, dtype=torch.float64)
    out = axisdot.dot(x, y, (29, 1))
    assert out.ndim == 57
    np.testing.assert_allclose(out.numpy(), reference_dot(x, y, (29, 1)), atol=1e-12)
    with pytest.raises(axisdot.EquationError, match="52 letters"):
        axisdot.equation(x, y, (29, 1))


# ---- normalize, as each framework defines it ----------------------------------------------

def numpy_normalized(a: np.ndarray, axes: tuple[int, ...], mode: str) -> np.ndarray:
    square_sum = (a * a).sum(axis=axes, keepdims=True)
    if mode == "keras3":
        return a * np.minimum(1 / np.sqrt(np.maximum(square_sum, 1e-300)), 1e7)
    if mode == "tf_keras":
        return a / np.sqrt(np.maximum(square_sum, 1e-12))
    return a / np.maximum(np.sqrt(square_sum), 1e-12)


@pytest.mark.parametrize("mode", ["keras3", "tf_keras", "torch"])
@pytest.mark.parametrize("axes", [-1, (2, 1), ((1, 2), (2, 1))], ids=["int", "pair", "multi-axis"])
def test_each_normalize_mode_follows_its_frameworks_formula(mode, axes):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64) * 1e-4
    y = torch.randn(3, 5, 4, generator=gen, dtype=torch.float64) if axes != -1 else torch.randn(3, 6, 5, generator=gen, dtype=torch.float64)
    x[0] = 0.0  # an all-zero row
    ax, ay = {-1: ((2,), (2,)), (2, 1): ((2,), (1,)), ((1, 2), (2, 1)): ((1, 2), (2, 1))}[axes]
    expected = reference_dot(numpy_normalized(x.numpy(), ax, mode), numpy_normalized(y.numpy(), ay, mode), axes)
    np.testing.assert_allclose(axisdot.dot(x, y, axes, normalize=mode).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("mode", [True, "keras3", "tf_keras", "torch"])
def test_normalize_gradients_stay_finite_on_all_zero_rows(mode):
    x = torch.zeros(2, 3, requires_grad=True)
    y = torch.randn(2, 3, requires_grad=True)
    axisdot.dot(x, y, 1, normalize=mode).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


def test_keras3_and_true_are_the_same_mode_and_modes_travel_through_dot_and_explain():
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(axisdot.dot(x, y, 1, normalize=True), axisdot.dot(x, y, 1, normalize="keras3"))
    module = axisdot.Dot.from_config({"axes": 1, "normalize": "tf_keras"})
    assert module.get_config() == {"axes": 1, "normalize": "tf_keras"}
    torch.testing.assert_close(module(x, y), axisdot.dot(x, y, 1, normalize="tf_keras"))
    e = axisdot.explain(x, y, 1, normalize="torch")
    assert e.normalize == "torch" and "torch.nn.functional.normalize" in str(e)
    got = eval(e.code, {"torch": torch, "x": x, "y": y})  # noqa: S307
    torch.testing.assert_close(got, axisdot.dot(x, y, 1, normalize="torch"))
    with pytest.raises(axisdot.ArgumentError, match="tf_keras"):  # a str, but not a mode: ValueError
        axisdot.dot(x, y, 1, normalize="l2")
    with pytest.raises(axisdot.AxisdotTypeError):  # not a bool or a str: TypeError
        axisdot.Dot(axes=1, normalize=1)


# ---- legacy batch_dot (Keras 2.2.4 / tf.keras 1.x) --------------------------------------------

def legacy_inputs(x_shape, y_shape):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(x_shape, generator=gen, dtype=torch.float64), torch.randn(y_shape, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("x_shape, y_shape, axes, legacy_shape, keras3_shape, equation", [
    ((4, 10, 1152), (4, 10, 1152, 16), [2, 2], (4, 10, 16), (4, 10, 10, 16), "bik,bikj->bij"),
    ((4, 10, 16), (4, 10, 1152, 16), [2, 3], (4, 10, 1152), (4, 10, 10, 1152), "bik,bilk->bil"),
], ids=["capsnet-u-hat", "capsnet-agreement"])
def test_legacy_batch_dot_reproduces_the_keras_224_shapes(x_shape, y_shape, axes, legacy_shape, keras3_shape, equation):
    x, y = legacy_inputs(x_shape, y_shape)
    legacy = axisdot.batch_dot(x, y, axes, semantics="legacy")
    assert tuple(legacy.shape) == legacy_shape
    assert tuple(axisdot.batch_dot(x, y, axes).shape) == keras3_shape
    # what the old code computed, written out by hand as an einsum and run in NumPy
    np.testing.assert_allclose(legacy.numpy(), reference_einsum(equation, x, y), atol=1e-10)


@pytest.mark.parametrize("x_shape, y_shape, axes", [
    ((3, 4, 5), (3, 5, 6), (2, 1)), ((3, 4, 5), (3, 6, 5), (2, 2)), ((3, 5, 4), (3, 5, 6), (1, 1)),
    ((3, 5), (3, 5), 1), ((3, 4, 5), (3, 5), (2, 1)),
], ids=["matmul", "attention", "transposed-x", "vectors", "matrix-vector"])
def test_legacy_batch_dot_agrees_with_keras_3_where_the_rules_did_not_change(x_shape, y_shape, axes):
    x, y = legacy_inputs(x_shape, y_shape)
    np.testing.assert_allclose(axisdot.batch_dot(x, y, axes, semantics="legacy").numpy(),
                               reference_batch_dot(x, y, axes), atol=1e-10)


def test_legacy_batch_dot_refuses_what_keras_224_could_not_run():
    x, y = legacy_inputs((3, 4, 5), (3, 6, 7))
    with pytest.raises(axisdot.ShapeError, match="Keras 2.2.4 fails here too"):
        axisdot.batch_dot(x, y, (2, 1), semantics="legacy")
    with pytest.raises(axisdot.ArgumentError, match="'keras3' or 'legacy'"):
        axisdot.batch_dot(x, y, (2, 1), semantics="keras2")


def test_explain_shows_which_batch_dot_rule_ran():
    legacy = axisdot.explain((4, 10, 1152), (4, 10, 1152, 16), [2, 2], mode="batch_dot", semantics="legacy")
    assert legacy.output_shape == (4, 10, 16) and "legacy Keras 2.2.4" in str(legacy)
    x, y = legacy_inputs((4, 10, 1152), (4, 10, 1152, 16))
    torch.testing.assert_close(eval(legacy.code, {"torch": torch, "x": x, "y": y}),  # noqa: S307
                               axisdot.batch_dot(x, y, [2, 2], semantics="legacy"))
    assert axisdot.explain((4, 10, 1152), (4, 10, 1152, 16), [2, 2], mode="batch_dot").output_shape == (4, 10, 10, 16)


class Allocations(TorchDispatchMode):
    """Storages the ops inside the block create: ``bytes`` all of them together,
    ``peak`` the most alive at once (a storage lives until its last tensor, views
    included, is freed)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = self.live = self.peak = 0
        self._holders: dict[int, int] = {}  # data pointer -> tensors that hold it

    def _release(self, ptr: int, nbytes: int) -> None:
        self._holders[ptr] -= 1
        if not self._holders[ptr]:
            del self._holders[ptr]
            self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {a.untyped_storage().data_ptr() for a in torch.utils._pytree.tree_leaves((args, kwargs))
                  if isinstance(a, torch.Tensor)}
        for t in torch.utils._pytree.tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            ptr, nbytes = t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()
            if ptr not in inputs and ptr not in self._holders:  # a new storage
                self.bytes += nbytes
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                self._holders[ptr] = 0
            if ptr in self._holders:  # a new storage, or a view of one made here
                self._holders[ptr] += 1
                weakref.finalize(t, self._release, ptr, nbytes)
        return out


@pytest.mark.parametrize("x_shape, y_shape, axes", [
    ((4, 8, 5, 16), (4, 16, 6, 3), (3, 1)),
    ((4, 8, 5, 16), (4, 6, 3, 16), -1),
    ((4, 8, 16), (4, 16, 6), (2, 1)),
    ((64, 32), (64, 32), 1),
], ids=["article-3-1", "article-minus-1", "matmul", "vectors"])
def test_no_broadcast_product_is_materialized(x_shape, y_shape, axes):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(x_shape, generator=gen), torch.randn(y_shape, generator=gen)
    with Allocations() as alloc:
        out = axisdot.dot(x, y, axes)
    inputs_and_output = (x.numel() + y.numel() + out.numel()) * 4
    broadcast_product = out.numel() * x.shape[-1] * 4 if x.ndim > 2 else None
    assert alloc.bytes <= inputs_and_output, (alloc.bytes, inputs_and_output)
    if broadcast_product is not None:
        assert alloc.bytes < broadcast_product / 4


@pytest.mark.parametrize("call, inputs", [
    (lambda x, y: axisdot.dot(x, y, 1), [(4096, 1024), (4096, 1024)]),
    (lambda x, y: axisdot.Dot(axes=1)(x, y), [(4096, 1024), (4096, 1024)]),
    (lambda x, y: axisdot.tensordot(x, y, 2), [(2048, 1024), (2048, 1024)]),
    (lambda x, y: axisdot.einsum("bi,bi->b", x, y), [(4096, 1024), (4096, 1024)]),
    (lambda x, y: axisdot.dot(x, y, 1), [(16384, 256), (16384, 256)]),
    (lambda x, y: axisdot.dot(x, y, 1), [(3, 600001, torch.float16), (3, 600001, torch.float16)]),
    (lambda x, y: axisdot.dot(x, y, (2, 1)), [(32, 64, 128), (32, 128, 256)]),
    (lambda x, y: axisdot.dot(x, y, (2, 2)), [(32, 64, 128), (32, 256, 128)]),
    (lambda x, y: axisdot.dot(x, y, (3, 1)), [(32, 64, 10, 128), (32, 128, 32, 15)]),
    (lambda x, y: axisdot.einsum("bij,jk->bik", x, y), [(64, 128, 256), (256, 64)]),
], ids=["vector-dot", "Dot-module", "tensordot-full", "einsum-rowdot", "vector-dot-row-tiles",
        "vector-dot-column-tiles", "bmm", "bmm-transposed", "article", "einsum-linear"])
def test_no_lowering_allocates_more_than_its_output_plus_1_mib(call, inputs):
    """Issue 13's memory target: beyond its inputs, a call holds its output and at most
    1 MiB more at any moment (a vector dot's elementwise product of 16 MiB included)."""
    gen = torch.Generator().manual_seed(0)
    x, y = (torch.randn(s[:2], generator=gen, dtype=s[2]) if len(s) == 3 and isinstance(s[2], torch.dtype)
            else torch.randn(s, generator=gen) for s in inputs)  # a shape, or (rows, columns, dtype)
    call(x, y)  # plans built outside the log
    with Allocations() as alloc:
        out = call(x, y)
    budget = out.numel() * out.element_size() + 2**20
    assert alloc.peak <= budget, f"{alloc.peak / 2**20:.2f} MiB alive at once, output {out.numel() * 4 / 2**20:.2f} MiB"


# Vector dots above 1 MiB of product: each route of the lowering (one bmm of row views for
# rows of BMM_MIN_ROW or more, row tiles with a remainder for shorter rows, column tiles
# where a row alone is over 1 MiB and no bmm is taken, a full contraction, a layout no
# view flattens) against NumPy in float64, forward and backward, eagerly and under vmap
# and torch.compile.
LARGE_VECTOR_DOTS = {
    "row-bmm": (lambda x, y: axisdot.dot(x, y, 1), (300, 1000), (300, 1000), ([1], [1])),
    "row-bmm-batch": (lambda x, y: axisdot.einsum("bij,bij->bi", x, y), (3, 100, 1000), (3, 100, 1000), ([2], [2])),
    "row-tiles": (lambda x, y: axisdot.dot(x, y, 1), (3001, 400), (3001, 400), ([1], [1])),
    "row-tiles-batch": (lambda x, y: axisdot.einsum("bij,bij->bi", x, y), (3, 1000, 401), (3, 1000, 401), ([2], [2])),
    "full": (lambda x, y: axisdot.tensordot(x, y, 2), (600, 601), (600, 601), ([0, 1], [0, 1])),
    "einsum-rows": (lambda x, y: axisdot.einsum("bij,bij->b", x, y), (5, 300, 200), (5, 300, 200), ([1, 2], [1, 2])),
}


def _expected_rows(x: torch.Tensor, y: torch.Tensor, axes: tuple[list[int], list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The sums of products over ``axes`` (the other axes paired, in order) in float64,
    and a float32 rounding bound for each: 1e-6 of the sum of the products' magnitudes."""
    xs, ys = x.double().numpy(), y.double().numpy()
    letters = "abcdefgh"[:x.ndim]
    out = "".join(letters[a] for a in range(x.ndim) if a not in axes[0])
    eq = f"{letters},{letters}->{out}"
    return np.einsum(eq, xs, ys), 1e-6 * np.einsum(eq, np.abs(xs), np.abs(ys))


def _assert_rows(out: torch.Tensor, expected: tuple[np.ndarray, np.ndarray], dtype: torch.dtype) -> None:
    values, bound = expected
    got = out.detach().double().numpy().reshape(values.shape)
    scale = {torch.float32: 1.0, torch.float64: 1e-8, torch.float16: 1500.0}[dtype]  # float16: its rounding, 2**-11
    assert np.all(np.abs(got - values) <= scale * bound + 1e-12), np.max(np.abs(got - values) / bound)


@pytest.mark.parametrize("case", sorted(LARGE_VECTOR_DOTS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
def test_large_vector_dots_match_numpy(case, dtype, grad):
    call, xs, ys, axes = LARGE_VECTOR_DOTS[case]
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(xs, generator=gen, dtype=dtype), torch.randn(ys, generator=gen, dtype=dtype)
    x.requires_grad_(grad)
    out = call(x, y)
    _assert_rows(out, _expected_rows(x.detach(), y, axes), dtype)
    if grad:  # d(sum of out)/dx = y
        out.sum().backward()
        torch.testing.assert_close(x.grad, y)


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
def test_large_vector_dot_in_column_tiles(grad):
    # a row alone is over 1 MiB and half precision takes no bmm (2-10x slower on the CPU)
    gen = torch.Generator().manual_seed(4)
    x, y = (torch.rand(3, 600001, generator=gen, dtype=torch.float16) - 0.5 for _ in range(2))
    x.requires_grad_(grad)
    out = axisdot.dot(x, y, 1)
    _assert_rows(out, _expected_rows(x.detach(), y, ([1], [1])), torch.float16)
    if grad:
        out.sum().backward()
        torch.testing.assert_close(x.grad, y)


def test_the_large_vector_dot_routes_are_the_ones_described():
    seen = {}
    for name in ("row-bmm", "row-tiles"):
        call, xs, ys, _ = LARGE_VECTOR_DOTS[name]
        with AtenLog() as log:
            call(torch.ones(xs), torch.ones(ys))
        seen[name] = log.ops
    assert "aten.bmm.default" in seen["row-bmm"] and "aten.mul.Tensor" not in seen["row-bmm"]
    assert "aten.mul.Tensor" in seen["row-tiles"] and "aten.bmm.default" not in seen["row-tiles"]


def test_large_vector_dot_on_a_layout_no_view_flattens():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, 1000, 300, generator=gen).transpose(1, 2)  # (4, 300, 1000), no (4, 300000) view
    y = torch.randn(4, 300, 1000, generator=gen)
    _assert_rows(axisdot.batch_dot(x, y, ((1, 2), (1, 2))), _expected_rows(x, y, ([1, 2], [1, 2])), torch.float32)


def test_large_vector_dot_under_vmap_and_compile():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(2, 300, 1000, generator=gen), torch.randn(2, 300, 1000, generator=gen)
    expected = _expected_rows(x, y, ([2], [2]))
    _assert_rows(torch.func.vmap(lambda a, b: axisdot.dot(a, b, 1))(x, y), expected, torch.float32)
    compiled = torch.compile(lambda a, b: axisdot.einsum("bij,bij->bi", a, b), backend="aot_eager", fullgraph=True)
    _assert_rows(compiled(x, y), expected, torch.float32)
