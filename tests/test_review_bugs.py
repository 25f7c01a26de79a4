"""Bugs found in the review of the code before the layers and einsum work (issue 9), each
with the test that failed before its fix."""
from __future__ import annotations

import sys
import threading

import pytest
import torch

import axisdot
from axisdot.errors import ShapeError, with_context
from axisdot.testing import assert_matches
from axisdot.testing.strategies import EinsumProblem
from aten_log import AtenLog


@pytest.mark.parametrize("mode", [True, "keras3", "tf_keras", "torch"])
def test_normalize_in_float16_neither_overflows_nor_leaves_float16(mode):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, generator=gen, dtype=torch.float64) * 100  # squares far beyond float16's range
    y = torch.randn(4, 6, generator=gen, dtype=torch.float64) * 100
    x[0] = 0  # an all-zero row: the clamps matter here
    got = axisdot.dot(x.half(), y.half(), axes=1, normalize=mode)
    assert got.dtype == torch.float16 and bool(torch.isfinite(got).all())
    expected = axisdot.dot(x.half().double(), y.half().double(), axes=1, normalize=mode)
    torch.testing.assert_close(got.double(), expected, atol=2e-3, rtol=2e-3)
    module = axisdot.Dot(axes=1, normalize=mode).half()
    torch.testing.assert_close(module(x.half(), y.half()), got)


def test_explain_of_dot_general_refuses_what_the_call_refuses():
    x, y = torch.ones(2, 3), torch.ones(2, 3)
    with pytest.raises(axisdot.AxesError, match="batch must be a pair") as call:
        axisdot.dot_general(x, y, ((1,), (1,)), None)
    with pytest.raises(axisdot.AxesError, match="batch must be a pair") as explained:
        axisdot.explain(x, y, mode="dot_general", contract=((1,), (1,)), batch=None)
    assert type(explained.value) is type(call.value)
    # and what the call accepts, explain accepts: batch left out means no batch axes
    e = axisdot.explain(x, y, mode="dot_general", contract=((1,), (1,)))
    assert e.output_shape == tuple(axisdot.dot_general(x, y, ((1,), (1,))).shape)


def test_context_added_to_an_error_keeps_its_cause():
    cause = KeyError("the reason")
    try:
        try:
            raise cause
        except KeyError as err:
            raise ShapeError("a refusal") from err
    except ShapeError as err:
        extended = with_context(err, ["  more context"])
    assert type(extended) is ShapeError and extended.__cause__ is cause
    assert str(extended) == "a refusal\n  more context"
    # through the public API: a dtype torch cannot multiply keeps torch's own error as the cause
    u = torch.ones(3, dtype=torch.uint16)
    with pytest.raises(axisdot.OperandError) as info:
        axisdot.einsum("i,i->", u, u)
    assert isinstance(info.value.__cause__, (RuntimeError, NotImplementedError))


def test_legacy_batch_dot_computes_its_product_once():
    x, y = torch.randn(5, 7), torch.randn(5, 7)
    with AtenLog() as ops:
        out = axisdot.batch_dot(x, y, 1, semantics="legacy")
    assert sum(1 for c in ops.ops if c.startswith("aten.mul")) == 1, ops.ops
    torch.testing.assert_close(out, (x * y).sum(1, keepdim=True))


def test_explanation_cached_is_right_while_other_threads_use_the_cache():
    stop = threading.Event()
    x = torch.ones(2, 3)

    def hammer() -> None:  # cache hits, as fast as they come
        while not stop.is_set():
            axisdot.dot(x, x, 1)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        wrong = []
        for rank in range(2, 24):
            axisdot.cache_clear()
            e = axisdot.explain(rank, rank, (1, 1))  # a plan nobody has built yet
            if e.cached:
                wrong.append(rank)
            if not axisdot.explain(rank, rank, (1, 1)).cached:
                wrong.append(-rank)
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(old)
    assert not wrong, f"cached misreported for ranks {wrong}"


def test_assert_matches_takes_the_widest_tolerance_the_operands_need():
    problem = EinsumProblem("ij,jk->ik", ((3, 64), (64, 2)))
    gen = torch.Generator().manual_seed(1)
    operands = [torch.rand(3, 64, generator=gen, dtype=torch.float64),
                torch.rand(64, 2, generator=gen).half()]

    def in_half(equation, a, b):  # a port that computes in the narrower operand's dtype
        return torch.einsum(equation, a.half(), b).double()

    assert_matches(in_half, problem, operands=operands)  # float16's tolerance, not float64's
    with pytest.raises(AssertionError, match="does not match"):
        assert_matches(lambda eq, a, b: torch.einsum(eq, a, b.double()) + 0.5, problem, operands=operands)



def test_no_public_name_is_shadowed_by_a_module():
    import importlib
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(axisdot.__path__)}
    for info in pkgutil.walk_packages(axisdot.__path__, "axisdot."):  # import every module, as doctests do
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    for name in axisdot.__all__:
        value = getattr(axisdot, name)
        assert name not in modules or isinstance(value, type(axisdot)), f"axisdot.{name} is also a module"
        assert not isinstance(value, type(axisdot)), f"axisdot.{name} is a module, not the public function"
    import axisdot.explanation as m  # the implementation modules have their own names

    assert m.explain is axisdot.explain
