"""cotengra's optimizers as ``optimize=`` (issue 21; cotengra is an optional extra,
``pip install axisdot[cotengra]``): a plain ``HyperOptimizer`` searches once per
equation and shapes, its path runs as found, and a sliced tree is refused clearly."""
from __future__ import annotations

import opt_einsum
import pytest
import torch

import axisdot

from test_einsum_networks import regular_graph

ctg = pytest.importorskip("cotengra")

EQUATION, SHAPES = regular_graph(20, 3, 3, seed=3)


class CountingHyperOptimizer(ctg.HyperOptimizer):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.searches = 0

    def __call__(self, *args, **kwargs):
        self.searches += 1
        return super().__call__(*args, **kwargs)


def _operands(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(s, generator=gen, dtype=torch.float64) for s in shapes]


def test_a_hyper_optimizer_searches_once_per_shape_and_its_path_runs():
    optimizer = CountingHyperOptimizer(max_repeats=8, methods=["greedy"], progbar=False)
    ops = _operands(SHAPES)
    expected = torch.as_tensor(opt_einsum.contract(EQUATION, *[t.numpy() for t in ops]))
    for _ in range(3):
        torch.testing.assert_close(axisdot.einsum(EQUATION, *ops, optimize=optimizer), expected, rtol=1e-9, atol=0)
    assert optimizer.searches == 1
    path = [s.operands for s in axisdot.explain(EQUATION, *ops, optimize=optimizer).path]
    assert optimizer.searches == 1  # explain reads the cached plan
    ours = opt_einsum.contract_path(EQUATION, *SHAPES, shapes=True, optimize=path)[1].opt_cost
    theirs = opt_einsum.contract_path(EQUATION, *SHAPES, shapes=True, optimize=optimizer.tree.get_path())[1].opt_cost
    assert ours == theirs  # the path cotengra found, as it found it

def test_a_sliced_tree_is_refused_naming_the_sliced_letters():
    optimizer = ctg.HyperOptimizer(max_repeats=8, methods=["greedy"], progbar=False,
                                   slicing_opts={"target_size": 2**4})
    with pytest.raises(axisdot.AxisdotError, match=r"chose to slice the contraction over .* slices"):
        axisdot.einsum(EQUATION, *_operands(SHAPES), optimize=optimizer)
