"""Gradients: gradcheck and gradgradcheck in float64 for every front end."""
from __future__ import annotations

import pytest
import torch

import axisdot


def leaf(*shape: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)


CALLS = {
    "dot": (lambda x, y: axisdot.dot(x, y, axes=(2, 1)), (2, 3, 4), (2, 4, 5)),
    "dot-rank1": (lambda x, y: axisdot.dot(x, y, axes=1), (3, 4), (3, 4)),
    "dot-normalize": (lambda x, y: axisdot.dot(x, y, axes=-1, normalize=True), (2, 3, 4), (2, 5, 4)),
    "dot-multi-axis-normalize": (lambda x, y: axisdot.dot(x, y, ((1, 2), (2, 1)), normalize=True), (2, 3, 4), (2, 4, 3)),
    "batch_dot": (lambda x, y: axisdot.batch_dot(x, y), (2, 3, 4), (2, 4, 5)),
    "tensordot": (lambda x, y: axisdot.tensordot(x, y, 1), (3, 4), (4, 2)),
    "dot_general": (lambda x, y: axisdot.dot_general(x, y, ((0,), (1,)), ((2,), (0,))), (4, 3, 2), (2, 4)),
    "einsum": (lambda x, y: axisdot.einsum("bij,bjk,bkl->bil", x, y, y.transpose(1, 2)), (2, 3, 4), (2, 4, 4)),
    "Dot": (axisdot.Dot(axes=(1, 1), normalize=True), (3, 4, 2), (3, 4, 5)),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_gradcheck_and_gradgradcheck_pass_in_float64(name):
    fn, xs, ys = CALLS[name]
    x, y = leaf(*xs, seed=0), leaf(*ys, seed=1)
    assert torch.autograd.gradcheck(fn, (x, y))
    assert torch.autograd.gradgradcheck(fn, (x, y))
