"""The cold two-operand einsum (a plan-cache miss) takes short roads: the plain-equation
parse, the one-pass analysis of a step's letters, a step that is its Plan, and the Plan's
layouts computed inline. Each is checked here against the general definitions it
replaces (written out plainly below) and, end to end, against torch.einsum on calls made
with every cache empty."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, strategies as st

import axisdot
import axisdot.cache as _cache
from axisdot.einsum_parse import Subscripts, parse
from axisdot.einsum_plan import RankedEinsum, _diagonals, _shared
from axisdot.einsum_steps import _pairwise, build_step
from axisdot.errors import EquationError
from axisdot.plan import Plan
from axisdot.spec import AXES, Spec
from axisdot.testing import strategies as ads

LETTERS = "abcdeijk"


def _clear() -> None:
    _cache.einsum_ranked.cache_clear()
    _cache.einsum_subscripts.cache_clear()
    _cache.einsum_step.cache_clear()


# -- the general definitions, written plainly ------------------------------------------------

def reference_free(rank: int, used: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a for a in range(rank) if a not in used)


def reference_pairwise(a: str, b: str, out: str):
    """None when a term needs a reduction first; else the spec of a,b->out and the
    letter order its plan returns (batch, a's free, b's free)."""
    if len(set(a)) != len(a) or len(set(b)) != len(b) or any(c not in b + out for c in a) \
            or any(c not in a + out for c in b):
        return None
    batch = [(i, b.index(c)) for i, c in enumerate(a) if c in b and c in out]
    contract = [(i, b.index(c)) for i, c in enumerate(a) if c in b and c not in out]
    spec = Spec(len(a), len(b), (tuple(i for i, _ in batch), tuple(j for _, j in batch)),
                (tuple(i for i, _ in contract), tuple(j for _, j in contract)))
    natural = "".join([c for c in a if c in b and c in out] + [c for c in a if c not in b]
                      + [c for c in b if c not in a])
    return spec, natural


def reference_layouts(spec: Spec):
    """x_perm, x_cf, y_perm, y_cf as the Plan defines them, with max and min."""
    (xb, yb), (xc, yc) = spec.batch, spec.contract
    if len(xc) > 1 and list(xc) != sorted(xc):
        order = sorted(range(len(xc)), key=xc.__getitem__)
        xc, yc = tuple(xc[i] for i in order), tuple(yc[i] for i in order)
    fx, fy = spec.x_free, spec.y_free
    x_cf = bool(fx and xc) and max(xc) < min(fx)
    y_cf = not (fy and yc and max(fy) < min(yc))
    x_perm = xb + (xc + fx if x_cf else fx + xc)
    y_perm = yb + (yc + fy if y_cf else fy + yc)

    def perm_or_none(perm):
        return None if all(i == p for i, p in enumerate(perm)) else perm

    return perm_or_none(x_perm), x_cf, perm_or_none(y_perm), y_cf


def reference_lowering(spec: Spec, x_perm, x_cf, y_perm) -> str:
    nb, nc = len(spec.batch[0]), len(spec.contract[0])
    in_place = x_perm is None and y_perm is None
    if not (spec.x_free or spec.y_free):
        return "vector dot"
    if not nc:
        return "broadcast product (an outer product: no axis contracted)"
    if in_place and nb <= 1 and nc == 1 and len(spec.x_free) <= 1 and len(spec.y_free) <= 1:
        return "torch.mv on views" if not (spec.x_free and spec.y_free) and nb == 0 else \
            ("torch.bmm on views" if nb else "torch.mm on views")
    if in_place and nb == 0 and nc == 1 and not x_cf and spec.y_rank == 2:
        return "torch.matmul on views (leading axes folded)"
    return "torch.bmm after permute/reshape"


# -- drawn equations ------------------------------------------------------------------------

@st.composite
def pair_steps(draw, repeated: bool = True):
    """Two terms and an output over a few letters: repeated letters and letters that
    must be summed out of one term alone come up too (unless ``repeated`` is False)."""
    term = st.text(LETTERS, min_size=0, max_size=5)
    a, b = draw(term), draw(term)
    if not repeated:
        a, b = "".join(dict.fromkeys(a)), "".join(dict.fromkeys(b))
    letters = sorted(set(a + b))
    out = "".join(draw(st.permutations(letters))[:draw(st.integers(0, len(letters)))]) if letters else ""
    return a, b, out


@st.composite
def specs(draw):
    """Any valid dot_general spec of ranks up to 5, axes paired in any order."""
    x_rank, y_rank = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    n = draw(st.integers(0, min(x_rank, y_rank)))
    xs = draw(st.permutations(range(x_rank)))[:n]
    ys = draw(st.permutations(range(y_rank)))[:n]
    k = draw(st.integers(0, n))
    return Spec(x_rank, y_rank, (tuple(xs[:k]), tuple(ys[:k])), (tuple(xs[k:]), tuple(ys[k:])),
                draw(st.booleans()))


# -- the short roads against the general definitions ----------------------------------------

@given(pair_steps())
def test_the_one_pass_step_analysis_is_the_general_one(step):
    a, b, out = step
    got, expected = _pairwise(a, b, out), reference_pairwise(a, b, out)
    assert (got is None) == (expected is None)
    if got is not None:
        (spec, natural), (ref_spec, ref_natural) = got, expected
        assert spec == ref_spec and natural == ref_natural
        # the free axes it found as it went are the ones a Spec derives
        assert (spec.x_free, spec.y_free) == (reference_free(len(a), ref_spec.batch[0] + ref_spec.contract[0]),
                                              reference_free(len(b), ref_spec.batch[1] + ref_spec.contract[1]))


@given(specs())
def test_a_plan_lays_its_inputs_out_as_the_general_rule_says(spec):
    used_x, used_y = spec.batch[0] + spec.contract[0], spec.batch[1] + spec.contract[1]
    assert (spec.x_free, spec.y_free) == (reference_free(spec.x_rank, used_x), reference_free(spec.y_rank, used_y))
    plan = Plan(spec, "test")
    x_perm, x_cf, y_perm, y_cf = reference_layouts(spec)
    lay = plan.layout
    assert (lay.x_perm, lay.x_cf, lay.y_perm, lay.y_cf) == (x_perm, x_cf, y_perm, y_cf)
    assert lay.pairs == tuple(zip(used_x, used_y))
    nb, nc = len(spec.batch[0]), len(spec.contract[0])
    assert lay.sum_dims == tuple(range(nb, nb + nc))
    assert lay.expands == spec.expands and lay.keepdim == (spec.expands and nc == 1)
    assert plan.lowering == reference_lowering(spec, x_perm, x_cf, y_perm)


@given(st.lists(st.text(LETTERS, min_size=0, max_size=4), min_size=1, max_size=4), st.data())
def test_the_plain_parse_is_the_general_one(terms, data):
    letters = sorted(set("".join(terms)))
    out = "".join(data.draw(st.permutations(letters))[:data.draw(st.integers(0, len(letters)))]) if letters else ""
    equation = ",".join(terms) + "->" + out
    ranks = tuple(len(t) for t in terms)
    # a leading space keeps an equation off the plain road: the general road parses it
    general = parse(" " + equation, ranks)
    got = parse(equation, ranks)
    assert (got.inputs, got.output, got.ellipsis, got.equation) == \
        (general.inputs, general.output, general.ellipsis, general.equation)
    assert got.written == equation and got == Subscripts(general.inputs, general.output, equation)


@pytest.mark.parametrize("equation, ranks, message", [
    ("ij,jk->ii", (2, 2), "output letter 'i' appears more than once"),
    ("ij,jk->iz", (2, 2), "output letter 'z' is not in any input"),
    ("ij,jk->ik", (2, 3), "subscript 'jk' has 2 letters but operand 1 has rank 3"),
    ("ij,jk->ik", (2,), "the equation has 2 operand terms but 1 operands were given"),
    ("ij,jk,kl->il", (2, 2, 3), "subscript 'kl' has 2 letters but operand 2 has rank 3"),
    ("ij,jk,kl->ijj", (2, 2, 2), "output letter 'j' appears more than once"),
])
def test_the_plain_road_leaves_a_bad_equation_to_the_general_one(equation, ranks, message):
    with pytest.raises(EquationError, match=message):
        parse(equation, ranks)


@given(pair_steps())
def test_a_step_that_is_one_plan_is_that_plan(step):
    a, b, out = step
    fn, label = build_step(f"{a},{b}->{out}")
    expected = reference_pairwise(a, b, out)
    assert isinstance(fn, Plan) == (expected is not None and expected[1] == out)
    if isinstance(fn, Plan):
        assert fn.spec == expected[0] and label == fn.describe() and not fn.refuse_bool
        assert str(fn.call) == f"einsum step {a},{b}->{out}"


@given(pair_steps())
def test_a_ranked_einsum_reads_what_its_plan_knows(step):
    a, b, out = step
    sub = parse(f"{a},{b}->{out}", (len(a), len(b)))
    ranked = RankedEinsum(sub, build_step, lambda operands: None)
    # the general definitions of what a two-operand call checks
    assert ranked.diagonals == _diagonals(sub.inputs)
    assert set(ranked.shared) == set(_shared(a, b))
    assert ranked.int_sensitive == (not set(a + b) <= set(out))
    assert (ranked.direct is not None) == isinstance(ranked.fn, Plan)


# -- end to end: cold calls against torch.einsum --------------------------------------------

_DTYPES = [torch.float64, torch.float32, torch.int64, torch.int32, torch.bool]


@given(st.sampled_from(_DTYPES), st.data())
def test_a_cold_two_operand_einsum_gives_torch_einsums_result(dtype, data):
    # integer sums of empty tensors follow no dtype rule in torch (see test_einsum_properties)
    problem = data.draw(ads.einsum_problems(n_operands=2, max_rank=4, min_side=0 if dtype.is_floating_point else 1,
                                            max_side=3))
    operands = [data.draw(ads.tensors(s, dtype=dtype, bound=2.0)) for s in problem.shapes]
    _clear()
    try:
        expected = torch.einsum(problem.equation, *operands)
    except RuntimeError:  # torch refuses (a bool matrix product): so does axisdot, or it widens
        return
    got = axisdot.einsum(problem.equation, *operands)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if dtype.is_floating_point:
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    else:
        assert torch.equal(got, expected)


@given(ads.einsum_problems(n_operands=2, max_rank=3, max_side=3, broadcast=True))
def test_a_cold_plain_plan_hands_broadcasting_to_the_sized_plan(problem):
    gen = torch.Generator().manual_seed(0)
    operands = [torch.randn(s, generator=gen, dtype=torch.float64) for s in problem.shapes]
    _clear()
    torch.testing.assert_close(axisdot.einsum(problem.equation, *operands), torch.einsum(problem.equation, *operands))


def test_a_cold_call_builds_each_part_once_and_a_second_call_finds_it():
    x, w = torch.ones(2, 8, 16), torch.ones(16, 16)
    axisdot.cache_clear()
    axisdot.einsum("bij,jk->bik", x, w)
    axisdot.einsum("bij,jk->bik", x, w)
    details = _cache.cache_details()
    assert [(details[k].misses, details[k].hits) for k in ("einsum_ranked", "einsum_subscripts", "einsum_step")] \
        == [(1, 1), (1, 0), (1, 0)]
    assert isinstance(_cache.einsum_step("bij,jk->bik")[0], Plan)
    axisdot.cache_clear()


# -- the values the roads are made of -------------------------------------------------------

def test_subscripts_stay_a_frozen_value_whatever_road_made_them():
    plain = parse("bij,jk->bik", (3, 2))
    general = Subscripts(("bij", "jk"), "bik", "bij,jk->bik")
    assert plain == general and hash(plain) == hash(general) and repr(plain) == "Subscripts('bij,jk->bik')"
    assert plain.equation == general.equation == "bij,jk->bik"
    assert [f.name for f in dataclasses.fields(plain)] == ["inputs", "output", "written", "ellipsis"]
    assert dataclasses.replace(plain, output="bk").equation == "bij,jk->bk"
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.output = "ik"  # type: ignore[misc]


def test_axes_ranges_are_shared_up_to_64_and_made_beyond():
    for n in range(100):
        assert AXES[n] == tuple(range(n))
    assert AXES[3] is AXES[3] and 70 not in AXES
