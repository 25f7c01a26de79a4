"""``axisdot.equation``: the einsum equation of a contraction, readable, deterministic,
and what ``torch.einsum`` runs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import axisdot
from axisdot.testing.reference import reference_dot


@pytest.mark.parametrize(
    "x, y, axes, expected",
    [
        ((32, 64, 10, 128), (32, 128, 32, 15), (3, 1), "bijk,bklm->bijlm"),
        ((32, 64, 10, 128), (32, 32, 15, 128), -1, "bijk,blmk->bijlm"),
        ((8, 5, 7), (8, 7, 3), (2, 1), "bij,bjk->bik"),
        ((8, 16), (8, 16), 1, "bi,bi->b"),
        (3, 3, ((1, 2), (2, 1)), "bij,bji->b"),
    ],
    ids=["article-3-1", "article-minus-1", "matmul", "vectors", "ranks-multi-axis"],
)
def test_equation_letters_are_readable_and_deterministic(x, y, axes, expected):
    assert axisdot.equation(x, y, axes) == expected
    assert axisdot.equation(x, y, axes) == expected


@pytest.mark.parametrize(
    "x_shape, y_shape, axes",
    [((2, 3, 4), (2, 4, 5), (2, 1)), ((2, 3), (2, 3), 1), ((2, 3, 4, 5), (2, 5, 3), ((1, 3), (2, 1))),
     ((4, 2, 3), (4, 6, 3), -1)],
    ids=["matmul", "rank1", "multi-axis", "negative"],
)
def test_torch_einsum_with_the_equation_reproduces_dot(x_shape, y_shape, axes):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(x_shape, generator=gen, dtype=torch.float64), torch.randn(y_shape, generator=gen, dtype=torch.float64)
    via_einsum = torch.einsum(axisdot.equation(x, y, axes), x, y)
    expected = reference_dot(x, y, axes)
    np.testing.assert_allclose(via_einsum.reshape(expected.shape).numpy(), expected, atol=1e-12)
    assert via_einsum.ndim == expected.ndim or (via_einsum.ndim == 1 and expected.shape[1:] == (1,))


def test_equation_takes_tensors_shapes_and_ranks_alike():
    x, y = torch.ones(2, 3, 4), torch.ones(2, 4, 5)
    assert axisdot.equation(x, y, (2, 1)) == axisdot.equation((2, 3, 4), [2, 4, 5], (2, 1)) == axisdot.equation(3, 3, (2, 1))


def test_dot_runs_contractions_that_need_more_than_52_letters():
    x, y = torch.ones((1,) * 30), torch.ones((1,) * 30)
    assert tuple(axisdot.dot(x, y, (29, 29)).shape) == (1,) * 57
