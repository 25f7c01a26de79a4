"""torch's transforms and tensor subclasses: ``vmap``, ``torch.func``, meta and fake tensors."""
from __future__ import annotations

import torch

import axisdot


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
