"""The one fast path (axisdot.fast): written once from a template in front of each front
end's checked path, it keeps the public face of every front end, and its parts (the hit
counter, the entries) behave as documented; and the fast tables' warm calls against
cold ones (results, errors, promotion, cache statistics)."""
from __future__ import annotations

import inspect
import threading
import traceback
from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import axisdot
import axisdot.cache
from axisdot.fast import FastEntry, Hits, remembered
from axisdot.plan import Plan, RankMismatch
from axisdot.spec import Spec
from axisdot.testing import assert_matches, strategies as ads
from axisdot.testing.reference import reference_batch_dot, reference_einsum

SIGNATURES = {
    axisdot.dot: "(x: 'Any', y: 'Any' = None, axes: 'Axes' = -1, normalize: 'Union[bool, str]' = False)"
                 " -> 'torch.Tensor'",
    axisdot.batch_dot: "(x: 'Any', y: 'Any' = None, axes: 'Optional[Axes]' = None, semantics: 'str' = 'keras3')"
                       " -> 'torch.Tensor'",
    axisdot.tensordot: "(x: 'torch.Tensor', y: 'torch.Tensor', axes: 'Axes' = 2) -> 'torch.Tensor'",
    axisdot.dot_general: "(x: 'torch.Tensor', y: 'torch.Tensor', contract: 'Sequence[Sequence[int]]', "
                         "batch: 'Sequence[Sequence[int]]' = ((), ())) -> 'torch.Tensor'",
    axisdot.Dot.forward: "(self, x: 'Any', y: 'Any' = None) -> 'torch.Tensor'",
}


@pytest.mark.parametrize("fn", SIGNATURES, ids=lambda fn: fn.__qualname__)
def test_each_front_end_is_the_written_fast_path_with_its_public_face(fn):
    assert fn.__code__.co_filename.startswith("<axisdot fast path of ")
    assert str(inspect.signature(fn)) == SIGNATURES[fn]
    assert fn.__wrapped__.__code__.co_filename.endswith((".py",))
    if fn is not axisdot.Dot.forward:
        assert ">>> " in fn.__doc__ and fn.__wrapped__.__doc__ is None  # doctest runs it once


@pytest.mark.parametrize("call", [
    lambda: axisdot.dot(torch.ones(2, 3), torch.ones(2, 4), axes=1),
    lambda: axisdot.batch_dot(torch.ones(2, 3, 4), torch.ones(2, 5, 4), axes=(2, 1)),
    lambda: axisdot.tensordot(torch.ones(3, 4), torch.ones(5, 6), axes=1),
    lambda: axisdot.dot_general(torch.ones(2, 3), torch.ones(2, 4), contract=((1,), (1,))),
    lambda: axisdot.Dot(1)(torch.ones(2, 3), torch.ones(2, 4)),
], ids=["dot", "batch_dot", "tensordot", "dot_general", "Dot"])
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_an_error_from_the_fast_path_reads_as_the_checked_paths(call, warm):
    axisdot.cache_clear()
    if warm:  # the same axes objects with operands that fit, first
        with pytest.raises(axisdot.ShapeError):
            call()
    with pytest.raises(axisdot.ShapeError, match="equal sizes") as info:
        call()
    text = "".join(traceback.format_exception(info.value))
    assert "KeyError" not in text and "During handling" not in text


def test_the_written_source_shows_in_tracebacks():
    with pytest.raises(axisdot.ShapeError) as info:
        axisdot.dot(torch.ones(2, 3), torch.ones(2, 4), axes=1)
    text = "".join(traceback.format_exception(info.value))
    assert "<axisdot fast path of axisdot.api.dot>" in text and "_fastpath_dot_checked(x, y, axes, normalize)" in text


def test_hits_count_every_hit_and_no_read_under_threads():
    hits = Hits()
    reads: list[int] = []

    def hit_and_read() -> None:
        for i in range(5000):
            next(hits.counter)
            if i % 500 == 0:
                reads.append(hits.value)

    threads = [threading.Thread(target=hit_and_read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hits.value == 4 * 5000 and hits.value == 4 * 5000
    assert all(1 <= r <= 4 * 5000 for r in reads)
    hits.reset()
    assert hits.value == 0
    for _ in range(7):
        next(hits.counter)
    assert hits.value == 7


def _plan(x_rank: int, y_rank: int) -> Plan:
    return Plan(Spec(x_rank, y_rank, ((0,), (0,)), ((1,), (1,)), True), "test")


def test_an_entry_gathers_the_plans_of_each_pair_of_ranks_and_picks_by_them():
    gen = torch.Generator().manual_seed(0)
    shapes = {2: (3, 4), 3: (3, 4, 2)}
    entry = None
    for ranks in [(3, 3), (2, 2), (3, 2), (2, 3)]:
        entry = remembered(entry, (1, 1), _plan(*ranks))
        assert isinstance(entry, FastEntry) and (1, 1) == entry.key and ranks in entry.plans
    assert sorted(entry.plans) == [(2, 2), (2, 3), (3, 2), (3, 3)]
    for xr, yr in entry.plans:
        x = torch.randn(shapes[xr], generator=gen, dtype=torch.float64)
        y = torch.randn(shapes[yr], generator=gen, dtype=torch.float64)
        np.testing.assert_allclose(entry.run(x, y).numpy(), reference_batch_dot(x, y, (1, 1)), atol=1e-12)
    with pytest.raises(RankMismatch):
        entry.run(torch.ones(3, 4, 2, 2), torch.ones(3, 4))
    fresh = remembered(entry, (1, 1), _plan(2, 2), extra=((0,), (0,)))  # another extra: a new entry
    assert list(fresh.plans) == [(2, 2)] and fresh.extra == ((0,), (0,))


@pytest.mark.parametrize("pair_form", [False, True], ids=["Dot(x, y)", "Dot([x, y])"])
def test_a_dot_module_runs_its_entry_across_ranks_and_counts_its_hits(pair_form):
    gen = torch.Generator().manual_seed(2)
    m = axisdot.Dot(axes=(1, 1))
    operands = [(torch.randn(2, 3, 4, generator=gen, dtype=torch.float64),
                 torch.randn(2, 3, 5, generator=gen, dtype=torch.float64)),
                (torch.randn(2, 3, generator=gen, dtype=torch.float64),
                 torch.randn(2, 3, generator=gen, dtype=torch.float64))]
    axisdot.cache_clear()
    for _ in range(3):
        for x, y in operands:
            out = m([x, y]) if pair_form else m(x, y)
            np.testing.assert_allclose(out.numpy(), reference_batch_dot(x, y, (1, 1)), atol=1e-12)
    assert sorted(m._fast.plans) == [(2, 2), (3, 3)]
    assert (axisdot.cache_info().misses, axisdot.cache_info().hits) == (2, 4)


FRONT_ENDS: dict[str, tuple[Callable[..., st.SearchStrategy], Callable[..., Any]]] = {
    "dot": (lambda: ads.dot_problems(max_rank=4, max_side=3), axisdot.dot),
    "batch_dot": (lambda: ads.batch_dot_problems(max_rank=4, max_side=3), axisdot.batch_dot),
    "tensordot": (lambda: ads.tensordot_problems(max_rank=4, max_side=3), axisdot.tensordot),
    "dot_general": (lambda: ads.dot_general_problems(max_rank=4, max_side=3), axisdot.dot_general),
}


DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.int32, torch.complex64, torch.bool]


def outcome(call: Callable[[], Any]) -> tuple:
    """What a call gives: its result (as a comparable tuple), or its error's type and words."""
    try:
        out = call()
    except Exception as err:  # noqa: BLE001 - compared, not hidden
        return ("error", type(err), str(err))
    return ("value", out.dtype, tuple(out.shape), out.detach().cpu().resolve_conj().numpy().tobytes())


def warm_and_cold(call: Callable[[], Any]) -> tuple[tuple, tuple]:
    """The outcome with the caches as the earlier calls left them, then with empty ones."""
    warm = outcome(call)
    axisdot.cache_clear()
    return warm, outcome(call)


def tensor(data: st.DataObject, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    t = data.draw(ads.tensors(shape, dtype=dtype))
    if data.draw(st.booleans(), label="transposed view") and t.ndim > 1:
        t = t.mT.contiguous().mT
    return t


def other_operands(data: st.DataObject, x: torch.Tensor, y: torch.Tensor) -> tuple[Any, Any]:
    """Operands for a later call with the same axes: a changed size, another rank, other
    or mixed dtypes, a Keras pair form, or the same shapes again."""
    change = data.draw(st.sampled_from(["same", "sizes", "one size", "rank", "dtype", "mixed", "pair"]),
                       label="change")
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    xs, ys = tuple(x.shape), tuple(y.shape)
    if change == "sizes":
        xs, ys = (tuple(data.draw(st.integers(0, 3)) for _ in s) for s in (xs, ys))
    elif change == "one size" and xs:
        k = data.draw(st.integers(0, len(xs) - 1))
        xs = xs[:k] + (xs[k] + 1,) + xs[k + 1:]
    elif change == "rank":
        xs = xs + (2,) if data.draw(st.booleans()) else xs[1:]
        ys = ys + (2,) if data.draw(st.booleans()) else ys
    elif change == "pair":
        return [x, y], None
    x2 = tensor(data, xs, dtype if change in ("dtype", "mixed") else x.dtype)
    y2 = tensor(data, ys, dtype if change == "dtype" else y.dtype)
    return x2, y2


@pytest.mark.parametrize("func", FRONT_ENDS)
@given(data=st.data())
def test_a_warm_call_is_the_cold_call(func, data):
    strategy, fn = FRONT_ENDS[func]
    problem = data.draw(strategy())
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64, torch.int64]), label="first dtype")
    x, y = tensor(data, problem.x_shape, dtype), tensor(data, problem.y_shape, dtype)
    axisdot.cache_clear()
    assert_matches(fn, problem, operands=[x, y])  # the first call fills the table ...
    assert_matches(fn, problem, operands=[x, y])  # ... the second is served from it
    for _ in range(data.draw(st.integers(1, 3), label="later calls")):
        x2, y2 = other_operands(data, x, y)
        if y2 is None:  # Keras's pair form: dot([x, y], axes)
            if func not in ("dot", "batch_dot"):
                continue
            warm, cold = warm_and_cold(lambda: fn(x2, **problem.kwargs))
        else:
            warm, cold = warm_and_cold(lambda: problem.call(fn, x2, y2))
        assert warm == cold, (problem, warm[:3], cold[:3])
        problem.call(fn, x, y)  # the first operands again: the table as before, or marked


@st.composite
def pair_contractions(draw: st.DrawFn) -> ads.EinsumProblem:
    """Two-operand equations of the matrix-product kind (batch, contracted and free
    letters in any order, each at most once per operand), the ones a fast-table entry
    runs as one torch call; einsum_problems draws them rarely."""
    letters = iter("abcdefgh")
    batch, contracted, x_free, y_free = ([next(letters) for _ in range(draw(st.integers(0, 2)))] for _ in range(4))
    x_term = draw(st.permutations(batch + contracted + x_free))
    y_term = draw(st.permutations(batch + contracted + y_free))
    output = batch + x_free + y_free
    if draw(st.booleans()):
        output = draw(st.permutations(output))
    size = {c: draw(st.sampled_from([2, 3, 1, 0])) for c in batch + contracted + x_free + y_free}  # 2 first
    return ads.EinsumProblem(f"{''.join(x_term)},{''.join(y_term)}->{''.join(output)}",
                             (tuple(size[c] for c in x_term), tuple(size[c] for c in y_term)))


@given(problem=st.one_of(pair_contractions(), ads.einsum_problems(n_operands=2, max_rank=3, max_side=3,
                                                                  broadcast=True, ellipsis=True)),
       data=st.data())
def test_a_warm_einsum_is_the_cold_einsum(problem, data):
    x, y = (tensor(data, s, torch.float32) for s in problem.shapes)
    axisdot.cache_clear()
    for _ in range(2):  # the first call fills the table, the second is served from it
        np.testing.assert_allclose(axisdot.einsum(*problem.args([x, y])).numpy(),
                                   reference_einsum(*problem.args([x, y])), rtol=1e-5, atol=1e-5)
    for _ in range(data.draw(st.integers(1, 3), label="later calls")):
        x2, y2 = other_operands(data, x, y)
        if y2 is None:
            continue
        warm, cold = warm_and_cold(lambda: axisdot.einsum(*problem.args([x2, y2])))
        assert warm == cold, (problem, warm[:3], cold[:3])
        axisdot.einsum(*problem.args([x, y]))


def test_the_einsum_table_serves_matrix_products():
    x, w = torch.randn(2, 8, 16), torch.randn(16, 16)
    axisdot.cache_clear()
    for _ in range(3):
        torch.testing.assert_close(axisdot.einsum("bij,jk->bik", x, w), torch.einsum("bij,jk->bik", x, w))
    assert axisdot.cache.cache_details()["einsum_ranked"].hits == 2
    assert ("bij,jk->bik", 3, 2) in axisdot.cache.FAST["einsum_ranked"]


def test_an_equal_axes_of_another_type_never_hits_the_table():
    x, y = torch.ones(2, 3, 4), torch.ones(2, 4, 5)
    axisdot.cache_clear()
    for _ in range(2):
        axisdot.batch_dot(x, y, (2, 1))
    with pytest.raises(axisdot.AxesTypeError, match="bool"):
        axisdot.batch_dot(x, y, (2, True))  # == (2, 1), and hashes as it does
    same = axisdot.batch_dot(x, y, (np.int64(2), np.int32(1)))  # canonical: the same plan
    torch.testing.assert_close(same, torch.bmm(x, y), rtol=0, atol=0)


def test_an_axes_seen_with_varying_ranks_picks_its_plan_by_them():
    axes = (1, 1)
    a3, b3 = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 3, 5, dtype=torch.float64)
    a2, b2 = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    axisdot.cache_clear()
    for _ in range(3):
        torch.testing.assert_close(axisdot.batch_dot(a3, b3, axes), torch.bmm(a3.mT, b3))
        torch.testing.assert_close(axisdot.batch_dot(a2, b2, axes), (a2 * b2).sum(1, keepdim=True))
    assert sorted(axisdot.cache.FAST["batch_dot"][axes].plans) == [(2, 2), (3, 3)]
    assert (axisdot.cache_info().misses, axisdot.cache_info().hits) == (2, 4)
    with pytest.raises(axisdot.ShapeError):  # a refusal for known ranks is the plan's own
        axisdot.batch_dot(a3, torch.randn(2, 4, 5, dtype=torch.float64), axes)


@pytest.mark.parametrize("ranks", [[(3, 3), (2, 2)], [(3, 3), (3, 2)], [(3, 3), (2, 3), (3, 2), (2, 2)]],
                         ids=["by x rank", "by y rank", "by both"])
def test_each_pair_of_ranks_gets_its_own_plan(ranks):
    axes = (1, 1)
    gen = torch.Generator().manual_seed(0)
    sides = {2: (2, 3), 3: (2, 3, 4)}
    operands = [(torch.randn(sides[a], generator=gen, dtype=torch.float64),
                 torch.randn(sides[b], generator=gen, dtype=torch.float64)) for a, b in ranks]
    axisdot.cache_clear()
    for _ in range(3):
        for x, y in operands:
            np.testing.assert_allclose(axisdot.batch_dot(x, y, axes).numpy(), reference_batch_dot(x, y, axes),
                                       atol=1e-12)
    assert sorted(axisdot.cache.FAST["batch_dot"][axes].plans) == sorted(ranks)
    assert axisdot.cache_info().misses == len(ranks)


@pytest.mark.parametrize("side", [0, 1], ids=["x rank picks", "y rank picks"])
def test_ranks_between_and_beyond_the_seen_ones_find_their_own_plans(side):
    """The run that picks by rank indexes a list by it: a rank in a gap of that list
    (3, between 2 and 4) or past its end (5) is not a rank seen yet, and gets its own plan."""
    axes = (1, 1)
    gen = torch.Generator().manual_seed(1)
    shape = {2: (2, 3), 3: (2, 3, 4), 4: (2, 3, 4, 2), 5: (2, 3, 2, 1, 2)}
    pair = (lambda r: (r, 3)) if side == 0 else (lambda r: (3, r))
    axisdot.cache_clear()
    for ranks in [pair(2), pair(4), pair(2), pair(3), pair(5), pair(3), pair(5), pair(4)]:
        x, y = (torch.randn(shape[r], generator=gen, dtype=torch.float64) for r in ranks)
        np.testing.assert_allclose(axisdot.batch_dot(x, y, axes).numpy(), reference_batch_dot(x, y, axes),
                                   atol=1e-12)
    assert sorted(axisdot.cache.FAST["batch_dot"][axes].plans) == sorted(pair(r) for r in (2, 3, 4, 5))
    assert (axisdot.cache_info().misses, axisdot.cache_info().hits) == (4, 4)


@pytest.mark.parametrize("func, args", [
    ("dot", ((2, 1),)), ("batch_dot", ((2, 1),)), ("tensordot", (((2,), (1,)),)),
    ("dot_general", (((2,), (1,)), ((0,), (0,)))),
])
def test_every_call_counts_one_hit_or_one_miss(func, args):
    fn = getattr(axisdot, func)
    x, y = torch.ones(2, 3, 4), torch.ones(2, 4, 5)
    axisdot.cache_clear()
    for _ in range(5):
        fn(x, y, *args)
    with pytest.raises(axisdot.ShapeError):  # a refusal after the plan was found is a hit too
        fn(x, torch.ones(2, 3, 5), *args)
    assert (axisdot.cache_info().misses, axisdot.cache_info().hits) == (1, 5)
    assert axisdot.cache.cache_details()[func].hits == 5


def test_einsum_hits_are_counted_once():
    x, w = torch.ones(2, 8, 16), torch.ones(16, 16)
    axisdot.cache_clear()
    for _ in range(4):
        axisdot.einsum("bij,jk->bik", x, w)
    assert (axisdot.cache_info().misses, axisdot.cache_info().hits) == (1, 3)
    # mixed dtypes leave the table: a hit of the ranked plan, which builds a sized one
    axisdot.einsum("bij,jk->bik", x, w.double())
    assert (axisdot.cache_info().misses, axisdot.cache_info().hits) == (2, 4)


def test_cache_clear_empties_the_tables():
    x = torch.ones(2, 3)
    axisdot.dot(x, x, 1)
    axisdot.einsum("ij,kj->ik", x, x)
    axisdot.cache_clear()
    assert not any(axisdot.cache.FAST.values())
    axisdot.dot(x, x, 1)
    info = axisdot.cache_info()
    assert (info.hits, info.misses, info.currsize) == (0, 1, 1)


@pytest.mark.parametrize("form", ["two", "pair"])
def test_a_dot_module_whose_input_ranks_change_is_the_function(form):
    m = axisdot.Dot(axes=-1)
    gen = torch.Generator().manual_seed(0)
    calls = [((2, 3), (2, 3)), ((2, 4, 3), (2, 5, 3)), ((2, 3), (2, 3)), ((2, 4, 3), (2, 4)), ((2, 3), (2, 4))]
    for xs, ys in calls * 2:
        x, y = torch.randn(xs, generator=gen, dtype=torch.float64), torch.randn(ys, generator=gen, dtype=torch.float64)
        mine = outcome(lambda: m(x, y) if form == "two" else m([x, y]))
        assert mine == outcome(lambda: axisdot.dot(x, y, -1)), (xs, ys)
