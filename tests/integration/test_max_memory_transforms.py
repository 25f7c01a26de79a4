"""``max_memory=`` under torch.compile, torch.export, torch.func and on meta tensors
(issue 22): the sliced run gives torch.einsum's result (and gradients) there too."""
from __future__ import annotations

import pytest
import torch

import axisdot
from axisdot import cache as _cache
from axisdot.slicing import plan_for

pytestmark = pytest.mark.slow  # subprocesses, compiles or whole models: seconds each

EQUATION = "ab,cbe,ae->ac"
SHAPES = ((200, 10), (4, 10, 10), (200, 10))


def _operands():
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES[:2]]


def _bounded(a, c, bound=20_000):
    return axisdot.einsum(EQUATION, a, c, a, max_memory=bound)


def test_the_bounds_used_here_slice():
    plan = _cache.einsum_sized(EQUATION, SHAPES, "auto", None)
    assert plan_for(plan, 20_000, 8, (True,) * 3, False, (False,) * 3).slices == 4
    assert plan_for(plan, 80_000, 8, (True,) * 3, True, (False,) * 3).slices > 1


def test_sliced_einsum_under_torch_compile():
    a, c = _operands()
    compiled = torch.compile(_bounded, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(a, c), torch.einsum(EQUATION, a, c, a))


def test_sliced_einsum_gradients_under_torch_compile():
    a, c = (t.requires_grad_() for t in _operands())
    compiled = torch.compile(lambda a, c: _bounded(a, c, 80_000), fullgraph=True)
    got = torch.autograd.grad(compiled(a, c).sum(), (a, c))
    expected = torch.autograd.grad(torch.einsum(EQUATION, a, c, a).sum(), (a, c))
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


def test_sliced_einsum_under_torch_export():
    class Model(torch.nn.Module):
        def forward(self, a, c):
            return _bounded(a, c)

    a, c = _operands()
    program = torch.export.export(Model(), (a, c))
    torch.testing.assert_close(program.module()(a, c), torch.einsum(EQUATION, a, c, a))


def test_sliced_einsum_under_vmap_and_func_grad():
    a, c = _operands()
    batch = torch.randn(3, *SHAPES[0], dtype=torch.float64)
    got = torch.func.vmap(_bounded, in_dims=(0, None))(batch, c)
    torch.testing.assert_close(got, torch.stack([torch.einsum(EQUATION, x, c, x) for x in batch]))
    grad = torch.func.grad(lambda c: _bounded(a, c).sum())(c)
    leaf = c.clone().requires_grad_()
    (expected,) = torch.autograd.grad(torch.einsum(EQUATION, a, leaf, a).sum(), (leaf,))
    torch.testing.assert_close(grad, expected)


def test_sliced_einsum_on_meta_tensors():
    a, c = (torch.empty(s, device="meta") for s in ((20000, 100), (20, 100, 100)))
    out = axisdot.einsum(EQUATION, a, c, a, max_memory="64MiB")
    assert out.device.type == "meta" and tuple(out.shape) == (20000, 20)
