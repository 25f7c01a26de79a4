"""The lowerings of a plan (axisdot.lowerings), one by one: each entry of the table that
applies to a layout is built directly and checked against torch.einsum in float64, on
drawn specs and sizes (size-0 and size-1 axes included); the table's order and the
layout's recipe are checked against their definitions."""
from __future__ import annotations

import contextlib
import weakref
from unittest import mock

import numpy as np
import pytest
import torch
from aten_log import AtenLog
from hypothesis import assume, given, strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import axisdot
from axisdot.errors import ShapeError
from axisdot.layout import layout
from axisdot.lowerings import LOWERINGS, Kind, RankMismatch, by_kind, choose
from axisdot.plan import Plan
from axisdot.spec import Spec
from axisdot.testing.reference import reference_dot

LETTERS = "abcdefghijklmnop"  # two inputs of up to 6 axes each (PERMUTE_BMM)


def size_thresholds_off():
    """The lowerings' size thresholds set so that every size takes the route for large
    ones (the drawn sizes here stay far below them)."""
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.multiple("axisdot.lowerings", _SWAP_MIN=-1, _MUL_MIN=-1))
    stack.enter_context(mock.patch("axisdot.layout.LED_BY_Y_MIN", 0))  # read by y_leads
    return stack


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


@pytest.mark.parametrize("large", [False, True], ids=["sizes-as-drawn", "large-size-routes"])
@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
@given(data=st.data())
def test_each_lowering_built_directly_matches_torch_einsum(kind, large, data):
    lowering = by_kind(kind)
    spec = data.draw(kind_specs(kind), label="spec")
    plan = Plan(spec, "test")
    assume(lowering.applies(plan.layout))
    x, y = operands(data, spec)
    expected = einsum_reference(spec, x, y)
    with size_thresholds_off() if large else contextlib.nullcontext():
        _label, run = lowering.build(plan)  # a build may hold a threshold
        got = run(x, y)
    assert got.shape == expected.shape and got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    fast = lowering.build_fast(plan) if lowering.build_fast else None
    if fast is not None:
        torch.testing.assert_close(fast(x, y), expected, rtol=1e-12, atol=1e-12)
        with pytest.raises(RankMismatch):
            fast(x.unsqueeze(0), y.unsqueeze(0))


@given(data=st.data())
def test_the_general_lowering_with_one_contracted_element_multiplies_and_matches_torch_einsum(data):
    # every contracted size 1 (pytorch#41467's bic,bicf->bif): the broadcast product, not a bmm
    spec = data.draw(kind_specs(Kind.PERMUTE_BMM), label="spec")
    plan = Plan(spec, "test")
    assume(plan.kind is Kind.PERMUTE_BMM and spec.contract[0] and spec.x_rank + spec.y_rank <= len(LETTERS))
    x, y = operands(data, spec)
    index_x, index_y = [slice(None)] * x.ndim, [slice(None)] * y.ndim
    for xa, ya in zip(*spec.contract):
        index_x[xa], index_y[ya] = slice(0, 1), slice(0, 1)
    x, y = x[tuple(index_x)].contiguous(), y[tuple(index_y)].contiguous()
    assume(all(x.shape[xa] == 1 for xa in spec.contract[0]))  # a drawn size 0 stays 0
    with AtenLog() as log, size_thresholds_off():
        got = plan.run(x, y)
    torch.testing.assert_close(got, einsum_reference(spec, x, y), rtol=1e-12, atol=1e-12)
    assert "aten.bmm.default" not in log.ops and "aten.mul.Tensor" in log.ops


@given(data=st.data())
def test_the_general_lowering_with_a_larger_y_matches_torch_einsum(data):
    # a y larger than x takes the layout led by y where y is copied (sizes 2-4 against x's 0-2)
    spec = data.draw(kind_specs(Kind.PERMUTE_BMM), label="spec")
    plan = Plan(spec, "test")
    assume(plan.kind is Kind.PERMUTE_BMM and spec.x_rank + spec.y_rank <= len(LETTERS))
    x_shape = [data.draw(st.integers(0, 2)) for _ in range(spec.x_rank)]
    y_shape = [data.draw(st.integers(2, 4)) for _ in range(spec.y_rank)]
    for xa, ya in zip(spec.batch[0] + spec.contract[0], spec.batch[1] + spec.contract[1]):
        y_shape[ya] = x_shape[xa]
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    x, y = (torch.randn(s, generator=gen, dtype=torch.float64) for s in (x_shape, y_shape))
    y = y if y.ndim < 2 or data.draw(st.booleans()) else y.mT.contiguous().mT  # contiguous, or strided
    with size_thresholds_off():
        got = plan.run(x, y)
    torch.testing.assert_close(got, einsum_reference(spec, x, y), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("equation, y_perm, x_perm", [
    ("jkbc,abcijk->ai", (0, 3, 1, 2, 4, 5), (2, 3, 0, 1)),  # CCSDT: y's last axis contracted
    ("kc,fkcg->fg", (1, 2, 0, 3), None),  # y's last axis free: (contracted, free)
    ("kc,ckf->f", (0, 1, 2), (1, 0)),  # y in place when led by y: x copied instead
    ("bkc,bfck->bf", (0, 1, 2, 3), (0, 2, 1)),
], ids=["ccsdt-triples", "last-axis-free", "y-in-place", "y-in-place-batch"])
def test_the_layout_led_by_y_keeps_y_last_axis_last(equation, y_perm, x_perm):
    from axisdot.einsum_steps import pairwise
    (a, b), out = equation.split("->")[0].split(","), equation.split("->")[1]
    spec, _ = pairwise(a, b, out)
    lay = layout(spec, led_by_y=True)
    assert (lay.y_perm or tuple(range(len(b)))) == y_perm and lay.x_perm == x_perm
    assert layout(spec).y_perm is not None  # led by x, y is copied


@pytest.mark.parametrize("equation, taken", [
    ("jkbc,abcijk->ai", True),  # CCSDT triples: led by x, the copy of y moves its last axis
    ("bj,jkib->ki", True),  # CCSDT singles' first step: the same
    ("aj,ijab->ib", False),  # CCSDT energy's first step: led by x, y's last axis stays last
    ("kc,fkcg->fg", False),  # the same
    ("bkc,bfck->bf", True),  # led by y, y is in place
], ids=["ccsdt-triples", "ccsdt-singles", "ccsdt-energy", "last-axis-last", "y-in-place"])
def test_the_layout_for_a_larger_y_is_taken_only_where_y_copy_would_move_its_last_axis(equation, taken):
    from axisdot.einsum_steps import pairwise
    from axisdot.layout import larger_y_layout
    (a, b), out = equation.split("->")[0].split(","), equation.split("->")[1]
    spec, _ = pairwise(a, b, out)
    by_y = larger_y_layout(spec, layout(spec))
    assert (by_y is not None) == taken
    if taken:
        assert by_y == layout(spec, led_by_y=True)


def test_one_contracted_element_keeps_bmm_refusals_of_bool_and_mixed_dtypes():
    plan = Plan(Spec(3, 4, ((0, 1), (0, 1)), ((2,), (2,))), "test")  # bic,bicf->bif
    assert plan.kind is Kind.PERMUTE_BMM
    x, y = torch.ones(2, 3, 1, dtype=torch.bool), torch.ones(2, 3, 1, 4, dtype=torch.bool)
    with pytest.raises(axisdot.AxisdotError, match="bool"):
        plan(x, y)
    mixed = plan(x.double(), y.float())  # promoted as for any other size (recover())
    assert mixed.dtype == torch.float64 and mixed.shape == (2, 3, 4) and bool((mixed == 1).all())


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
def test_one_contracted_element_in_einsum_matches_numpy_with_gradients(grad):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(50, 7, 1, generator=gen, dtype=torch.float64, requires_grad=grad)
    y = torch.randn(50, 7, 1, 3, generator=gen, dtype=torch.float64)
    out = axisdot.einsum("bic,bicf->bif", x, y)
    np.testing.assert_allclose(out.detach().numpy(), np.einsum("bic,bicf->bif", x.detach().numpy(), y.numpy()),
                               rtol=1e-12)
    if grad:  # d(sum of out)/dx[b, i, 0] = sum over f of y[b, i, 0, f]
        out.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), y.sum(-1).numpy(), rtol=1e-12)


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


COPIES = ("aten.clone", "aten.copy_", "aten._to_copy", "aten.contiguous")


@pytest.mark.parametrize("make, axes", [
    (lambda g: (torch.randn(4, 3, 5, generator=g), torch.randn(4, 5, 6, generator=g)), (2, 1)),
    (lambda g: (torch.randn(4, 3, 5, generator=g), torch.randn(4, 6, 5, generator=g)), (2, 2)),
    (lambda g: (torch.randn(4, 5, 3, generator=g).transpose(1, 2), torch.randn(4, 5, 6, generator=g)), (2, 1)),
    (lambda g: (torch.randn(4, 3, 5, generator=g), torch.randn(4, 6, 5, generator=g).transpose(1, 2)), (2, 1)),
    (lambda g: (torch.randn(4, 6, 10, 8, generator=g), torch.randn(4, 8, 3, 2, generator=g)), (3, 1)),
    (lambda g: (torch.randn(1, 3, 5, generator=g).expand(4, 3, 5), torch.randn(4, 5, 6, generator=g)), (2, 1)),
    (lambda g: (torch.randn(4, 7, generator=g), torch.randn(4, 7, generator=g)), 1),
    (lambda g: (torch.randn(4, 3, 5, generator=g), torch.randn(4, 5, generator=g)), (2, 1)),
    (lambda g: (torch.randn(4, 5, 3, generator=g), torch.randn(4, 5, generator=g)), (1, 1)),
], ids=["matmul", "attention", "x-transposed-view", "y-transposed-view", "rank4-contiguous", "x-expanded", "vectors",
        "matrix-vector", "transposed-matrix-vector"])
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
    (lambda x, y: axisdot.einsum("Nc,Nc->N", x, y), [(1048576, 2), (1048576, 2)]),
    (lambda x, y: axisdot.einsum("Nc,Nc->N", x, y), [(262144, 8), (262144, 8)]),
    (lambda x, y: axisdot.einsum("bic,bicf->bif", x, y), [(1000, 100, 1), (1000, 100, 1, 3)]),
], ids=["vector-dot", "Dot-module", "tensordot-full", "einsum-rowdot", "vector-dot-row-tiles",
        "vector-dot-column-tiles", "bmm", "bmm-transposed", "article", "einsum-linear", "row-dots-two-columns",
        "row-dots-short-rows", "one-contracted-element"])
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


@pytest.mark.parametrize("shape", [(1048576, 2), (1048576, 1), (262144, 8), (65536, 31)],
                         ids=["two-columns", "one-column", "short-rows", "rows-of-31"])
def test_vector_dots_of_short_rows_allocate_nothing_but_their_output(shape):
    # pytorch#101249's row dots: torch.einsum (a bmm) holds no temporary, nor does axisdot
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    axisdot.einsum("Nc,Nc->N", x, y)
    with Allocations() as alloc:
        out = axisdot.einsum("Nc,Nc->N", x, y)
    assert alloc.peak == out.numel() * out.element_size()
    np.testing.assert_allclose(out.numpy(), np.einsum("nc,nc->n", x.double().numpy(), y.double().numpy()),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 64, 64), (1000, 4, 4), (3, 100, 2), (2, 3, 4)])
@pytest.mark.parametrize("front_end", ["dot", "einsum"])
def test_matrices_times_vectors_match_torch_einsum_on_either_side_of_the_bound(front_end, shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(shape[0], shape[2], generator=gen, dtype=torch.float64, requires_grad=True)
    run = (lambda: axisdot.dot(x, y, (2, 1))) if front_end == "dot" else \
        (lambda: axisdot.einsum("bij,bj->bi", x, y))
    with AtenLog() as log:
        got = run()
    bmm = [shapes for op, shapes in zip(log.ops, log.shapes) if op == "aten.bmm.default"]
    b, m, k = shape
    swapped = x.numel() > 4096
    assert bmm == [((b, 1, k), (b, k, m))] if swapped else [((b, m, k), (b, k, 1))]
    expected = torch.einsum("bij,bj->bi", x, y)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    grad = torch.randn(expected.shape, generator=gen, dtype=torch.float64)
    got_grads = torch.autograd.grad(got, (x, y), grad)
    torch.testing.assert_close(got_grads, torch.autograd.grad(expected, (x, y), grad), rtol=1e-12, atol=1e-12)
