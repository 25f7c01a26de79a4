"""Intermediates laid out for the step that reads them (issue 21): the layouts never
change a result, and a plan copies only where ``explain`` says it does (counted from the
aten ops a run on meta tensors makes), none at all where no copy is needed."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

import axisdot
from axisdot.testing import strategies as ads

from aten_log import AtenLog


@pytest.mark.slow
@pytest.mark.parametrize("n_operands", [1, 2, 3, 4, 5])
@given(data=st.data())
def test_layouts_never_change_a_result(n_operands, data):
    problem = data.draw(ads.einsum_problems(n_operands=n_operands, max_rank=4, max_side=4, max_letters=7,
                                            repeated=True, broadcast=True, ellipsis=True))
    operands = [data.draw(ads.tensors(s, dtype=torch.float64)) for s in problem.shapes]
    expected = torch.einsum(problem.equation, *operands)
    got = axisdot.einsum(problem.equation, *operands)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def _clones(equation, shapes):
    with AtenLog() as log:
        axisdot.einsum(equation, *[torch.empty(s, device="meta") for s in shapes])
    return log.ops.count("aten.clone.default")


def _reported(equation, shapes):
    report = axisdot.explain(equation, *[torch.empty(s, device="meta") for s in shapes])
    return sum(step.lowering.count("; copies ") for step in report.path)


NO_COPY_NEEDED = {
    # Bilinear: the outer product laid out b, i, j for the product with o, i, j (before: b, j, i, copied)
    "bilinear": ("bi,oij,bj->bo", [(512, 64), (128, 64, 64), (512, 64)]),
    # a Tucker-3 reconstruction: each factor applied to a core laid out for it (before: 2 copies)
    "tucker": ("abc,ai,bj,ck->ijk", [(32, 32, 32), (32, 16), (32, 16), (32, 16)]),
    "cupy-4834-with-bce": ("ab,bce,ae->ac", [(20000, 100), (100, 20, 100), (20000, 100)]),
    "chain": ("ij,jk,kl->il", [(64, 128), (128, 256), (256, 32)]),
    "attention": ("bhqd,bhkd,bhkv->bhqv", [(2, 4, 64, 32), (2, 4, 64, 32), (2, 4, 64, 32)]),
    "batched-chain": ("bij,bjk,bkl->bil", [(8, 32, 64), (8, 64, 16), (8, 16, 128)]),
    "two-projections": ("bsd,de,ef->bsf", [(8, 128, 256), (256, 512), (512, 256)]),
    "conv-like": ("nchw,kc,nkhw->nk", [(4, 16, 8, 8), (32, 16), (4, 32, 8, 8)]),
    "outer": ("bi,bj->bij", [(256, 128), (256, 128)]),
}


@pytest.mark.parametrize("name", list(NO_COPY_NEEDED))
def test_no_copy_where_none_is_needed(name):
    equation, shapes = NO_COPY_NEEDED[name]
    assert _clones(equation, shapes) == 0
    assert _reported(equation, shapes) == 0


def test_the_quadratic_form_copies_only_its_small_operand():
    """cupy#4834: the first intermediate (a, c, e: 100x the output) is written as the
    second step reads it; only c (20x100x100), whose letters no order serves, is copied."""
    equation, shapes = "ab,cbe,ae->ac", [(20000, 100), (20, 100, 100), (20000, 100)]
    report = axisdot.explain(equation, *[torch.empty(s, device="meta") for s in shapes])
    # the second step puts the vector first: (1, e) x (e, c) products, BLAS's fast batched form
    assert [s.equation for s in report.path] == ["ab,cbe->ace", "ae,ace->ac"]
    assert "copies cbe" in report.path[0].lowering and "copies" not in report.path[1].lowering
    assert _clones(equation, shapes) == 1


@given(data=st.data())
def test_explain_names_every_copy_a_run_makes(data):
    problem = data.draw(ads.einsum_problems(n_operands=(2, 5), max_rank=4, min_side=2, max_side=5, max_letters=7))
    assert _clones(problem.equation, problem.shapes) <= _reported(problem.equation, problem.shapes)


@pytest.mark.parametrize("equation, shapes, copies", [
    # y (110,592 elements) copied led by y, its last axis kept last; x (2,304) copied too
    ("jkbc,abcijk->ai", [(3, 3, 16, 16), (16, 16, 16, 3, 3, 3)], 2),
    ("bj,jkib->ki", [(64, 24), (24, 24, 24, 64)], 2),  # CCSDT singles' step
    ("aj,ijab->ib", [(64, 24), (24, 24, 64, 64)], 1),  # led by x, y's copy keeps its last axis last
    ("jkbc,abcijk->ai", [(2, 2, 3, 3), (3, 3, 3, 2, 2, 2)], 1),  # y below LED_BY_Y_MIN: led by x
], ids=["ccsdt-triples", "ccsdt-singles-step", "ccsdt-energy-step", "small-y"])
def test_explain_names_the_copies_of_the_layout_for_a_larger_y(equation, shapes, copies):
    assert _clones(equation, shapes) == _reported(equation, shapes) == copies


@pytest.mark.parametrize("equation, shapes, step", [
    ("ab,cbe,ae->ac", [(200, 10), (4, 10, 10), (200, 10)], "ae,ace->ac"),
    ("ae,cbe,ab->ac", [(200, 10), (4, 10, 10), (200, 10)], "ab,acb->ac"),
], ids=["cupy-4834", "cupy-4834-reordered"])
def test_a_step_of_matrices_times_vectors_puts_the_vector_first(equation, shapes, step):
    report = axisdot.explain(equation, *[torch.empty(s, device="meta") for s in shapes])
    assert step in [s.equation for s in report.path]
    operands = [torch.randn(s, dtype=torch.float64) for s in shapes]
    torch.testing.assert_close(axisdot.einsum(equation, *operands), torch.einsum(equation, *operands))
