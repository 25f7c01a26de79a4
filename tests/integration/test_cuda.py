"""The tests that mean something on a GPU, run on CUDA when there is one: values against
the references in float32, float16 and bfloat16, dtype promotion, integers, no copies of
views, torch.compile, and the layers (skipped with the reason on a machine without CUDA)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch._dynamo.testing import CompileCounter

import axisdot
from axisdot.testing import assert_matches
from axisdot.testing import strategies as ads
from axisdot.testing.reference import reference_dot
from aten_log import AtenLog

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available())")
CUDA = "cuda"
LOW = {torch.float16: 2e-2, torch.bfloat16: 1.5e-1}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@settings(max_examples=40)
@given(problem=ads.dot_problems(max_rank=5, max_side=4), data=st.data())
def test_dot_matches_the_reference_on_cuda(dtype, problem, data):
    x = data.draw(ads.tensors(problem.x_shape, dtype=dtype)).to(CUDA)
    y = data.draw(ads.tensors(problem.y_shape, dtype=dtype)).to(CUDA)
    got = axisdot.dot(x, y, problem.axes)
    assert got.device.type == CUDA and got.dtype == dtype
    assert_matches(axisdot.dot, problem, operands=[x, y], atol=LOW.get(dtype, 1e-4) * 8)


@settings(max_examples=40)
@given(problem=ads.einsum_problems(n_operands=(1, 4), repeated=True, broadcast=True, ellipsis=True,
                                   implicit=True), data=st.data())
def test_einsum_matches_the_reference_on_cuda(problem, data):
    ops = [data.draw(ads.tensors(s, dtype=torch.float32)).to(CUDA) for s in problem.shapes]
    assert_matches(axisdot.einsum, problem, operands=ops, atol=1e-4)


def test_mixed_dtypes_follow_torch_promotion_on_cuda():
    x = torch.randn(4, 3, 5, device=CUDA, dtype=torch.float16)
    y = torch.randn(4, 5, 2, device=CUDA, dtype=torch.float32)
    got = axisdot.dot(x, y, (2, 1))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, torch.bmm(x.float(), y), rtol=1e-3, atol=1e-3)


def test_integers_give_exact_results_or_a_clear_refusal_on_cuda():
    x = torch.randint(-3, 4, (4, 3, 5), device=CUDA)
    y = torch.randint(-3, 4, (4, 5, 2), device=CUDA)
    try:
        got = axisdot.dot(x, y, (2, 1))
    except axisdot.OperandError as err:  # CUDA has no integer matmul: said plainly
        assert "torch.int64" in str(err) and "cuda" in str(err)
    else:
        np.testing.assert_array_equal(got.cpu().numpy(), reference_dot(x.cpu(), y.cpu(), (2, 1)))
    v = torch.randint(-3, 4, (6, 5), device=CUDA)
    np.testing.assert_array_equal(axisdot.dot(v, v, 1).cpu().numpy(), reference_dot(v.cpu(), v.cpu(), 1))


def test_operands_on_two_devices_are_refused():
    with pytest.raises(axisdot.OperandError, match="cpu"):
        axisdot.dot(torch.ones(2, 3), torch.ones(2, 3, device=CUDA), 1)


def test_views_reach_the_kernel_without_a_copy_on_cuda():
    x = torch.randn(8, 16, 32, device=CUDA)
    y = torch.randn(8, 24, 32, device=CUDA)
    with AtenLog() as log:
        axisdot.dot(x, y, (2, 2))
    assert not any("copy" in op or "clone" in op or "contiguous" in op for op in log.ops), log.ops


def test_compile_makes_one_graph_for_every_size_on_cuda():
    counter = CompileCounter()
    fn = torch.compile(lambda a, b: axisdot.dot(a, b, (2, 1)), fullgraph=True, dynamic=True, backend=counter)
    for b, m in ((3, 5), (7, 11), (13, 17)):
        a, c = torch.randn(b, m, 4, device=CUDA), torch.randn(b, 4, 6, device=CUDA)
        torch.testing.assert_close(fn(a, c), torch.bmm(a, c))
    assert counter.frame_count == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_layers_on_cuda_equal_their_cpu_results(dtype):
    torch.manual_seed(0)
    dense = axisdot.EinsumDense("abc,cde->abde", (None, 4, 8), bias_axes="de", activation="gelu",
                                input_shape=(None, 5, 16))
    mha = axisdot.MultiHeadAttention(num_heads=2, key_dim=8, query_shape=(None, 6, 16))
    x = torch.randn(3, 5, 16)
    q = torch.randn(3, 6, 16)
    mask = torch.rand(3, 6, 6) > 0.3
    tol = LOW.get(dtype, 1e-4) * 4
    for module, args, kwargs in ((dense, (x,), {}), (mha, (q, q), {"attention_mask": mask}),
                                 (mha, (q, q), {"attention_mask": mask, "return_attention_scores": True})):
        expected = module(*args, **kwargs)
        on_gpu = module.to(CUDA, dtype)
        got = on_gpu(*[a.to(CUDA, dtype) for a in args], **{k: v.to(CUDA) if isinstance(v, torch.Tensor) else v
                                                             for k, v in kwargs.items()})
        module.to("cpu", torch.float32)
        for g, e in zip(got if isinstance(got, tuple) else (got,), expected if isinstance(expected, tuple) else (expected,)):
            torch.testing.assert_close(g.float().cpu(), e, atol=tol, rtol=tol)


def test_max_memory_holds_on_cuda_forward_and_backward():
    """issue 22's bound measured as CUDA's allocator sees it: the peak over the operands
    and the output stays under max_memory, forward and backward (cupy#4834's case)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 100, generator=gen).to(CUDA).requires_grad_()
    c = torch.randn(20, 100, 100, generator=gen).to(CUDA).requires_grad_()
    bound = 2 * 2**20
    expected = torch.einsum("ab,cbe,ae->ac", a, c, a)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = axisdot.einsum("ab,cbe,ae->ac", a, c, a, max_memory=bound)
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() - base - out.numel() * out.element_size() <= bound
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-3)
    grad = torch.ones_like(out)
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out.backward(grad)
    torch.cuda.synchronize()
    grads = (a.numel() + c.numel()) * a.element_size()
    assert torch.cuda.max_memory_allocated() - base - grads <= bound
