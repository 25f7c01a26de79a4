"""The one fast path (axisdot.fast): written once from a template in front of each front
end's checked path, it keeps the public face of every front end, and its parts (the hit
counter, the entries) behave as documented. Warm-against-cold behaviour of the tables is
test_fast_tables.py's."""
from __future__ import annotations

import inspect
import threading
import traceback

import numpy as np
import pytest
import torch

import axisdot
from axisdot.fast import FastEntry, Hits, remembered
from axisdot.plan import Plan, RankMismatch
from axisdot.spec import Spec
from axisdot.testing.reference import reference_batch_dot

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
