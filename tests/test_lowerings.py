"""The lowerings of a plan (axisdot.lowerings), one by one: each entry of the table that
applies to a layout is built directly and checked against torch.einsum in float64, on
drawn specs and sizes (size-0 and size-1 axes included); the table's order and the
layout's recipe are checked against their definitions."""
from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, strategies as st

from axisdot.errors import ShapeError
from axisdot.layout import layout
from axisdot.lowerings import LOWERINGS, Kind, RankMismatch, by_kind, choose
from axisdot.plan import Plan
from axisdot.spec import Spec

LETTERS = "abcdefghij"


#: (batch, contracted, x free, y free) counts, and whether the axes are in place, that a
#: kind's shapes have (its test filters what else its layout test refuses)
KIND_SHAPES = {
    Kind.ROW_DOT: ((0, 2), (1, 1), (0, 0), (0, 0), True),
    Kind.VECTOR_DOT: ((0, 2), (0, 3), (0, 0), (0, 0), None),
    Kind.OUTER: ((0, 2), (0, 0), (0, 2), (0, 2), None),
    Kind.VIEWS: ((0, 1), (1, 1), (0, 1), (0, 1), True),
    Kind.LEADING_AXES: ((0, 0), (1, 1), (0, 3), (1, 1), True),
    Kind.BATCH_VIEWS: ((2, 3), (1, 1), (1, 1), (1, 1), True),
    Kind.PERMUTE_BMM: ((0, 2), (0, 2), (0, 2), (0, 2), None),
}


@st.composite
def kind_specs(draw, kind: Kind) -> Spec:
    """A spec with the counts of axes ``kind`` takes: in place (each input's axes as
    batch, then contracted and free in either order), or else in any order."""
    (nb, nc, fx, fy) = (draw(st.integers(lo, hi)) for lo, hi in KIND_SHAPES[kind][:4])
    in_place = KIND_SHAPES[kind][4]
    if in_place is None:
        in_place = draw(st.booleans())
    roles_x = [("b", i) for i in range(nb)]
    roles_y = list(roles_x)
    c, f, g = [("c", i) for i in range(nc)], [("f", i) for i in range(fx)], [("g", i) for i in range(fy)]
    if in_place:
        roles_x += c + f if draw(st.booleans()) else f + c
        roles_y += c + g if draw(st.booleans()) else g + c
    else:
        roles_x = draw(st.permutations(roles_x + c + f))
        roles_y = draw(st.permutations(roles_y + draw(st.permutations(c)) + g))
    pairs = {kind: tuple(tuple(roles.index((kind, i)) for i in range(n)) for roles in (roles_x, roles_y))
             for kind, n in (("b", nb), ("c", nc))}
    return Spec(len(roles_x), len(roles_y), pairs["b"], pairs["c"], draw(st.booleans()))


def operands(data: st.DataObject, spec: Spec) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 operands whose paired axes agree, sizes drawn from 0 to 3."""
    size = st.integers(0, 3)
    x_shape = [data.draw(size) for _ in range(spec.x_rank)]
    y_shape = [data.draw(size) for _ in range(spec.y_rank)]
    for xa, ya in zip(spec.batch[0] + spec.contract[0], spec.batch[1] + spec.contract[1]):
        y_shape[ya] = x_shape[xa]
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    return (torch.randn(x_shape, generator=gen, dtype=torch.float64),
            torch.randn(y_shape, generator=gen, dtype=torch.float64))


def einsum_reference(spec: Spec, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """torch.einsum of the spec, with Keras's trailing size-1 axis where the spec asks."""
    x_letters = list(LETTERS[:spec.x_rank])
    y_letters = list(LETTERS[spec.x_rank:spec.x_rank + spec.y_rank])
    for xa, ya in zip(spec.batch[0] + spec.contract[0], spec.batch[1] + spec.contract[1]):
        y_letters[ya] = x_letters[xa]
    out = [x_letters[a] for a in spec.batch[0]] + [x_letters[a] for a in spec.x_free] + \
        [y_letters[a] for a in spec.y_free]
    result = torch.einsum(f"{''.join(x_letters)},{''.join(y_letters)}->{''.join(out)}", x, y)
    return result.unsqueeze(-1) if spec.keras_rank1 and spec.expands else result


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
@given(data=st.data())
def test_each_lowering_built_directly_matches_torch_einsum(kind, data):
    lowering = by_kind(kind)
    spec = data.draw(kind_specs(kind), label="spec")
    plan = Plan(spec, "test")
    assume(lowering.applies(plan.layout))
    _label, run = lowering.build(plan)
    x, y = operands(data, spec)
    expected = einsum_reference(spec, x, y)
    got = run(x, y)
    assert got.shape == expected.shape and got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    fast = lowering.build_fast(plan) if lowering.build_fast else None
    if fast is not None:
        torch.testing.assert_close(fast(x, y), expected, rtol=1e-12, atol=1e-12)
        with pytest.raises(RankMismatch):
            fast(x.unsqueeze(0), y.unsqueeze(0))


@given(spec=st.sampled_from(Kind).flatmap(kind_specs))
def test_the_general_lowering_applies_to_every_layout_with_an_output_axis_and_a_plan_takes_the_first(spec):
    lay = layout(spec)
    has_output_axis = bool(spec.batch[0] or spec.x_free or spec.y_free) or (spec.keras_rank1 and spec.expands)
    assert LOWERINGS[-1].kind is Kind.PERMUTE_BMM and LOWERINGS[-1].applies(lay) == has_output_axis
    assert has_output_axis or by_kind(Kind.VECTOR_DOT).applies(lay)
    first = next(entry for entry in LOWERINGS if entry.applies(lay))
    assert choose(lay) is first and Plan(spec, "test").kind is first.kind


def test_the_table_holds_each_kind_once_most_specific_first():
    assert [entry.kind for entry in LOWERINGS] == [
        Kind.ROW_DOT, Kind.VECTOR_DOT, Kind.OUTER, Kind.VIEWS, Kind.LEADING_AXES, Kind.BATCH_VIEWS, Kind.PERMUTE_BMM]
    assert {kind for kind in Kind if kind.elementwise} == {Kind.ROW_DOT, Kind.VECTOR_DOT, Kind.OUTER}


@pytest.mark.parametrize("kind, spec", [
    (Kind.ROW_DOT, Spec(2, 2, ((0,), (0,)), ((1,), (1,)), True)),
    (Kind.VECTOR_DOT, Spec(3, 3, ((0,), (0,)), ((2, 1), (1, 2)), True)),
    (Kind.OUTER, Spec(2, 2, ((0,), (0,)), ((), ()))),
    (Kind.VIEWS, Spec(3, 3, ((0,), (0,)), ((2,), (1,)))),
    (Kind.LEADING_AXES, Spec(3, 2, ((), ()), ((2,), (0,)))),
    (Kind.BATCH_VIEWS, Spec(4, 4, ((0, 1), (0, 1)), ((3,), (3,)))),
    (Kind.PERMUTE_BMM, Spec(3, 3, ((1,), (2,)), ((0,), (1,)))),
], ids=lambda v: v.name if isinstance(v, Kind) else "")
def test_each_kind_is_the_one_chosen_for_its_shapes_and_refuses_mismatched_sizes(kind, spec):
    plan = Plan(spec, "test")
    assert plan.kind is kind
    x_shape, y_shape = [2] * spec.x_rank, [2] * spec.y_rank
    xa, ya = (spec.batch[0] + spec.contract[0])[-1], (spec.batch[1] + spec.contract[1])[-1]
    y_shape[ya] = 3  # the last pair disagrees
    x, y = torch.ones(x_shape, dtype=torch.float64), torch.ones(y_shape, dtype=torch.float64)
    with pytest.raises((ShapeError, RuntimeError)):  # the lowering's own check, or torch's refusal ...
        plan.run(x, y)
    with pytest.raises(ShapeError, match=f"x axis {xa} \\(size 2\\) with y axis {ya} \\(size 3\\)"):
        plan(x, y)  # ... which the plan's recovery says in axisdot's words
