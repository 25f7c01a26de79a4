"""The plan cache: keyed by ranks and axes (never sizes), bounded, safe under threads."""
from __future__ import annotations

import gc
import threading
import tracemalloc

import numpy as np
import pytest
import torch

import axisdot
import axisdot.cache
from axisdot.cache import MAXSIZE, cache_details
from axisdot.testing.reference import reference_dot, reference_einsum


@pytest.fixture(autouse=True)
def empty_cache():
    axisdot.cache_clear()
    yield
    axisdot.cache_clear()


def test_cache_info_reads_like_functools_lru_cache():
    info = axisdot.cache_info()
    details = cache_details()
    plans = [name for name in details if name not in ("einsum_subscripts", "einsum_step")]
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (0, 0, MAXSIZE * len(plans), 0)
    assert all(d.maxsize == MAXSIZE and d.currsize == 0 for d in details.values())


def test_an_unknown_kind_of_plan_cannot_be_asked_for():
    # each kind of plan has its own typed entry; there is no tag that could be mistyped
    assert not hasattr(axisdot.cache, "compiled")
    with pytest.raises(TypeError):
        axisdot.cache.dot_plan("dot_general", 2, 2, 1)


def test_new_batch_sizes_and_side_lengths_do_not_compile_again():
    for batch, side in [(2, 3), (7, 3), (1, 11), (0, 5), (64, 1)]:
        axisdot.dot(torch.ones(batch, side, 4), torch.ones(batch, 4, side + 1), axes=(2, 1))
    info = axisdot.cache_info()
    assert (info.misses, info.hits, info.currsize) == (1, 4, 1)


@pytest.mark.parametrize("same_as_first", [(2, 1), [2, 1], (np.int64(2), np.int32(1))], ids=repr)
def test_equivalent_axes_spellings_share_a_plan(same_as_first):
    x, y = torch.ones(2, 3, 4), torch.ones(2, 4, 5)
    axisdot.dot(x, y, axes=(2, 1))
    axisdot.dot(x, y, axes=same_as_first)
    assert axisdot.cache_info().currsize == 1


def test_a_bool_axis_never_hits_the_plan_of_the_int_it_equals():
    x = torch.ones(2, 3)
    axisdot.dot(x, x, axes=1)
    with pytest.raises(axisdot.AxesTypeError):
        axisdot.dot(x, x, axes=True)


def test_each_front_end_has_its_own_entries():
    x = torch.ones(2, 3)
    axisdot.dot(x, x, 1)
    axisdot.batch_dot(x, x, 1)
    axisdot.tensordot(x, x, 0)
    assert axisdot.cache_info().currsize == 3


def test_two_operand_einsum_plans_are_keyed_by_equation_and_ranks_only():
    a, b = torch.ones(2, 3), torch.ones(3, 4)
    for _ in range(3):
        axisdot.einsum("ij,jk->ik", a, b)
    for n in (5, 7, 300):  # a new size builds nothing
        axisdot.einsum("ij,jk->ik", torch.ones(n, 3), torch.ones(3, n))
    info = axisdot.cache_info()
    assert (info.misses, info.hits) == (1, 5)
    assert cache_details()["einsum_sized"].currsize == 0


def test_three_operand_paths_are_keyed_by_shapes_in_a_cache_of_their_own():
    x = torch.ones(2, 3)
    axisdot.dot(x, x, 1)
    for n in range(1, 6):
        axisdot.einsum("ij,jk,kl->il", torch.ones(n, 3), torch.ones(3, 4), torch.ones(4, 2))
    axisdot.einsum("ij,jk,kl->il", torch.ones(2, 3), torch.ones(3, 4), torch.ones(4, 2))
    details = cache_details()
    assert (details["einsum_sized"].misses, details["einsum_sized"].hits) == (5, 1)
    assert details["einsum_subscripts"].misses == 1  # parsed once, for its ranks
    assert details["dot"].currsize == 1


def test_the_cache_stays_bounded():
    for n in range(MAXSIZE + 50):
        axisdot.einsum("i,i,i->", torch.ones(n), torch.ones(n), torch.ones(n))
    assert axisdot.cache_info().currsize == MAXSIZE
    assert axisdot.cache_info().misses == MAXSIZE + 50


def test_path_entries_never_evict_two_operand_plans():
    x = torch.ones(2, 3)
    axisdot.dot(x, x, 1)
    axisdot.einsum("ij,jk->ik", x, x.T)
    for n in range(MAXSIZE + 10):
        axisdot.einsum("i,i,i->", torch.ones(n), torch.ones(n), torch.ones(n))
    details = cache_details()
    assert details["dot"].currsize == 1 and details["einsum_ranked"].currsize == 1
    before = axisdot.cache_info().hits
    axisdot.dot(x, x, 1)
    axisdot.einsum("ij,jk->ik", x, x.T)
    assert axisdot.cache_info().hits == before + 2


def test_threads_sharing_the_cache_get_correct_results():
    gen = torch.Generator().manual_seed(3)
    jobs = []
    for i in range(16):
        x = torch.randn(i % 4 + 1, 3, 4, generator=gen, dtype=torch.float64)
        y = torch.randn(i % 4 + 1, 5, 4, generator=gen, dtype=torch.float64)
        jobs.append((x, y, [-1, (2, 2), ((1, 2), (1, 2))][i % 3] if i % 3 != 2 else -1))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                for x, y, axes in jobs:
                    np.testing.assert_allclose(axisdot.dot(x, y, axes).numpy(), reference_dot(x, y, axes), atol=1e-12)
                a = torch.ones(2, 3, dtype=torch.float64)
                np.testing.assert_allclose(axisdot.einsum("ij,kj->ik", a, a).numpy(), reference_einsum("ij,kj->ik", a, a))
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    info = axisdot.cache_info()
    assert info.hits + info.misses == 8 * 50 * (len(jobs) + 1)
    assert info.currsize <= 3


@pytest.mark.slow
def test_shape_patterns_past_the_bound_keep_the_cache_and_memory_bounded():
    """Twice the cache's bound of new shape patterns after it has turned over under
    tracemalloc: the cache stays at its bound and the Python heap does not grow with the
    patterns (a pattern kept costs about 1.8 KB; 256 bytes kept per pattern would be
    512 KiB). The turnover comes first because the entries made before tracing began
    are freed untraced while their replacements are traced. The bound is what is
    proved: 100,000 patterns (this test's first form, 91 s) prove no more."""
    # three operands: the path depends on the shapes, so every pattern is a new path entry
    axisdot.cache_clear()
    v = torch.empty(2, device="meta")
    patterns = iter(range(1, 10**6))

    def run(count: int) -> None:
        for _ in range(count):
            axisdot.einsum("ij,j,j->i", torch.empty(next(patterns), 2, device="meta"), v, v)

    run(MAXSIZE)  # fill the cache
    tracemalloc.start()
    try:
        run(2 * MAXSIZE)  # turn it over: every entry is now one made under tracing
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        run(2 * MAXSIZE)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    info = cache_details()["einsum_sized"]
    assert info.currsize <= info.maxsize == MAXSIZE
    assert info.misses == 5 * MAXSIZE
    assert grown < 2**19, f"the heap grew by {grown / 2**10:.0f} KiB over {2 * MAXSIZE} patterns past the bound"
