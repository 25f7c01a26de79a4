"""Reliability: the parsers fuzzed with arbitrary objects and strings (every outcome a
correct result or an AxisdotError), and the caches bounded under load."""
from __future__ import annotations

import gc
import os

import numpy as np
import opt_einsum
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import axisdot
from axisdot.cache import MAXSIZE, cache_details
from axisdot.testing.reference import reference_dot, reference_einsum

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-10, 10), st.integers(min_value=2**62, max_value=2**200),
    st.floats(allow_nan=True), st.text(max_size=4), st.binary(max_size=3), st.complex_numbers(),
    st.integers(-5, 5).map(np.int64), st.integers(-5, 5).map(np.int8), st.booleans().map(np.bool_),
    st.integers(-3, 3).map(np.array), st.lists(st.integers(-3, 3), max_size=3).map(np.array),
    st.integers(-3, 3).map(torch.tensor), st.just(Ellipsis), st.just(slice(1, 2)),
)
AXES = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
                                                     st.dictionaries(st.integers(0, 3), inner, max_size=2)),
                    max_leaves=8)

X, Y = torch.randn(3, 4, 5, dtype=torch.float64), torch.randn(3, 5, 4, dtype=torch.float64)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(axes=AXES)
def test_any_object_as_axes_gives_a_result_or_an_axisdot_error(axes):
    for call in (lambda: axisdot.dot(X, Y, axes), lambda: axisdot.batch_dot(X, Y, axes),
                 lambda: axisdot.tensordot(X, Y, axes), lambda: axisdot.dot_general(X, Y, axes),
                 lambda: axisdot.dot_general(X, Y, ((2,), (1,)), axes), lambda: axisdot.batch_dot(X, Y, axes, semantics="legacy"),
                 lambda: axisdot.explain(X, Y, axes, mode="tensordot"), lambda: axisdot.Dot((2, 1), normalize=axes)(X, Y),
                 lambda: axisdot.Dot(axes)(X, Y), lambda: axisdot.explain(X, Y, axes),
                 lambda: axisdot.equation(X, Y, axes), lambda: axisdot.dot(X, Y, 2, normalize=axes)):
        try:
            out = call()
        except axisdot.AxisdotError:
            continue
        assert isinstance(out, (torch.Tensor, str, axisdot.Explanation))
    try:
        out = axisdot.dot(X, Y, axes)
    except axisdot.AxisdotError:
        return
    np.testing.assert_allclose(out.numpy(), reference_dot(X, Y, axes), atol=1e-12)  # accepted means right


EQUATIONS = st.one_of(st.text(max_size=12), st.text(alphabet="ijk.-> ,", max_size=14),
                      st.text(alphabet="ijkIJ...->,", max_size=16))
OPERANDS = [torch.randn(2, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)]


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(equation=EQUATIONS, n=st.integers(0, 2))
def test_any_string_as_an_einsum_equation_gives_a_result_or_an_axisdot_error(equation, n):
    operands = OPERANDS[:n]
    try:
        out = axisdot.einsum(equation, *operands)
    except axisdot.AxisdotError:
        return
    # accepted means right; opt_einsum is the reference (it takes any letter, as axisdot does)
    expected = opt_einsum.contract(equation, *[t.numpy() for t in operands])
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to read the process's memory")
def test_a_hundred_thousand_einsum_shape_patterns_keep_the_cache_and_memory_bounded():
    # three operands: the path depends on the shapes, so every pattern is a new path entry
    axisdot.cache_clear()
    ops = [torch.empty(n, 2, device="meta") for n in range(1, 2 * MAXSIZE + 1)]  # shapes only, no data
    v = torch.empty(2, device="meta")
    for t in ops:  # warm up: fill the cache and let allocators settle
        axisdot.einsum("ij,j,j->i", t, v, v)
    gc.collect()
    before = rss_bytes()
    for n in range(2 * MAXSIZE + 1, 100_001):
        axisdot.einsum("ij,j,j->i", torch.empty(n, 2, device="meta"), v, v)
    gc.collect()
    grown = rss_bytes() - before
    info = cache_details()["einsum_sized"]
    assert info.currsize <= info.maxsize == MAXSIZE
    assert info.misses == 100_000
    assert grown < 32 * 2**20, f"memory grew by {grown / 2**20:.1f} MiB over 10^5 patterns"
