"""The contract every axisdot layer keeps as a ``torch.nn.Module`` (issue 20), on the
model of Keras's ``run_layer_test`` (``keras/src/testing/test_case.py``): one table of
layers, the same checks for each. A new layer joins by adding a row to ``CASES``.

Checks: config round trip; lazy and eager builds agree; parameters visible before the
first call, so an optimizer made then trains every weight; ``.to(dtype)`` / ``.double()``
/ ``.to(device)`` before the first call honoured; strict state-dict round trips built
and unbuilt; ``copy.deepcopy``, ``pickle`` and ``torch.save`` (unbuilt and built);
``torch.func.functional_call``; ``torch.compile(fullgraph=True)``; ``axisdot.explain``
changes nothing. Expected values come from a second module given the same weights by
hand, never from the module under test's own internals.
"""
from __future__ import annotations

import copy
import io
import pickle
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
from torch._dynamo.testing import CompileCounter
from torch.nn.parameter import is_lazy

import axisdot
from axisdot import Dot, EinsumDense, MultiHeadAttention


@dataclass(frozen=True)
class Case:
    """One layer: how to make it unbuilt and built at construction, and its inputs."""

    make: Callable[..., torch.nn.Module]  #: unbuilt (lazy) where the layer has weights; factory kwargs
    make_built: Callable[..., torch.nn.Module]  #: built at construction
    shapes: tuple[tuple[int, ...], ...]  #: the input shapes, batch axis first
    weighted: bool = True

    def inputs(self, dtype: torch.dtype = torch.float32, device: str = "cpu", seed: int = 0) -> tuple:
        gen = torch.Generator().manual_seed(seed)
        return tuple(torch.randn(s, generator=gen, dtype=dtype).to(device) for s in self.shapes)


CASES = {
    "Dot": Case(lambda **_: Dot(axes=(2, 1), normalize=True), lambda **_: Dot(axes=(2, 1), normalize=True),
                ((2, 3, 5), (2, 5, 4)), weighted=False),
    "EinsumDense": Case(
        lambda **kw: EinsumDense("abc,cde->abde", (None, 4, 8), "gelu", "de", **kw),
        lambda **kw: EinsumDense("abc,cde->abde", (None, 4, 8), "gelu", "de", input_shape=(None, 5, 16), **kw),
        ((2, 5, 16),)),
    "MultiHeadAttention": Case(
        lambda **kw: MultiHeadAttention(2, 4, value_dim=3, use_gate=True, **kw),
        lambda **kw: MultiHeadAttention(2, 4, value_dim=3, use_gate=True, query_shape=(None, 5, 8),
                                        value_shape=(None, 7, 6), **kw),
        ((2, 5, 8), (2, 7, 6))),
}

layers = pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
weighted = pytest.mark.parametrize("case", [c for c in CASES.values() if c.weighted],
                                   ids=[n for n, c in CASES.items() if c.weighted])


def _same_weights(module: torch.nn.Module, like: torch.nn.Module) -> torch.nn.Module:
    """``module`` with ``like``'s weights copied in by name, by hand."""
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, value in like.named_parameters():
            params[name].copy_(value)
    return module


def _built(case: Case, **factory: Any) -> torch.nn.Module:
    module = case.make(**factory)
    module(*case.inputs(factory.get("dtype") or torch.float32))
    return module


def _snapshot(module: torch.nn.Module) -> dict[str, Any]:
    return {k: (type(v), None if is_lazy(v) else v.detach().clone()) for k, v in
            module.state_dict(keep_vars=True).items()}


def _equal_snapshots(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(a[k][0] is b[k][0] and (a[k][1] is None) == (b[k][1] is None)
                                        and (a[k][1] is None or torch.equal(a[k][1], b[k][1])) for k in a)


@layers
def test_a_config_round_trip_gives_the_same_layer(case):
    module = _built(case)
    again = type(module).from_config(module.get_config())
    assert again.get_config() == module.get_config()
    again(*case.inputs())  # builds it
    _same_weights(again, module)
    torch.testing.assert_close(again(*case.inputs(seed=1)), module(*case.inputs(seed=1)), rtol=0, atol=0)


@layers
def test_lazy_and_eager_builds_have_the_same_parameters_and_results(case):
    lazy, eager = case.make(), case.make_built()
    lazy_before = dict(lazy.named_parameters())
    assert all(is_lazy(p) for p in lazy_before.values())
    assert not any(is_lazy(p) for p in eager.parameters())
    lazy(*case.inputs())
    assert dict(lazy.named_parameters()) == lazy_before  # the same objects, now materialized
    shapes = {k: tuple(v.shape) for k, v in lazy.named_parameters()}
    assert shapes == {k: tuple(v.shape) for k, v in eager.named_parameters()}
    assert (len(shapes) > 0) == case.weighted
    _same_weights(eager, lazy)
    torch.testing.assert_close(eager(*case.inputs(seed=2)), lazy(*case.inputs(seed=2)), rtol=0, atol=0)


@layers
@pytest.mark.parametrize("move", ["double", "to(float64)", "dtype=float64"])
def test_a_dtype_set_before_the_first_call_is_honoured(case, move):
    module = case.make(dtype=torch.float64) if move == "dtype=float64" else case.make()
    module = module.double() if move == "double" else module.to(torch.float64) if move == "to(float64)" else module
    out = module(*case.inputs(torch.float64))
    assert out.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in module.parameters())
    reference = _same_weights(case.make_built(dtype=torch.float64), module)
    torch.testing.assert_close(out, reference(*case.inputs(torch.float64)), rtol=0, atol=0)


@layers
def test_a_dtype_move_after_building_moves_every_weight(case):
    module = _built(case)
    expected = _same_weights(case.make_built(dtype=torch.float64), module)(*case.inputs(torch.float64))
    module.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in module.parameters())
    torch.testing.assert_close(module(*case.inputs(torch.float64)), expected, rtol=0, atol=0)


@layers
@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))])
def test_a_device_set_before_the_first_call_is_honoured(case, device):
    module = case.make().to(device)
    out = module(*case.inputs(device=device))
    assert out.device.type == device and all(p.device.type == device for p in module.parameters())
    reference = _same_weights(case.make_built(), module.cpu())
    torch.testing.assert_close(out.cpu(), reference(*case.inputs()), rtol=1e-5, atol=1e-5)


@layers
@pytest.mark.parametrize("source, target", [("built", "unbuilt"), ("built", "built"), ("unbuilt", "unbuilt")])
def test_state_dicts_load_strictly_built_or_not(case, source, target):
    src = _built(case) if source == "built" else case.make()
    dst = _built(case) if target == "built" else case.make()
    if target == "built" and case.weighted:  # make sure the load, not chance, sets the values
        with torch.no_grad():
            for p in dst.parameters():
                p.fill_(7.0)
    result = dst.load_state_dict(src.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert _equal_snapshots(_snapshot(dst), _snapshot(src))
    if source == "built":
        torch.testing.assert_close(dst(*case.inputs(seed=3)), src(*case.inputs(seed=3)), rtol=0, atol=0)
    else:  # both still lazy: the first call builds and initializes
        assert tuple(dst(*case.inputs()).shape) == tuple(_built(case)(*case.inputs()).shape)


@weighted
def test_loading_a_state_dict_of_other_shapes_is_refused_on_the_first_call(case):
    src = _built(case)
    wrong = {k: torch.zeros(tuple(n + 1 for n in v.shape)) for k, v in src.state_dict().items()}
    dst = case.make()
    dst.load_state_dict(wrong)
    with pytest.raises(axisdot.ShapeError, match="shape"):
        dst(*case.inputs())


@layers
def test_an_optimizer_made_before_the_first_call_trains_every_weight(case):
    module = case.make()
    params = list(module.parameters())
    assert (len(params) > 0) == case.weighted  # a Dot has no weights: nothing to train
    if not params:
        return
    optimizer = torch.optim.SGD(params, lr=0.1)
    out = module(*case.inputs())
    before = {k: v.detach().clone() for k, v in module.named_parameters()}
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(4))).sum().backward()
    optimizer.step()
    assert {k for k, v in module.named_parameters() if not torch.equal(v, before[k])} == set(before)


def _torch_save(module: torch.nn.Module) -> torch.nn.Module:
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


COPIES = {"deepcopy": copy.deepcopy, "pickle": lambda m: pickle.loads(pickle.dumps(m)), "torch.save": _torch_save}


@layers
@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("state", ["unbuilt", "built"])
def test_a_copy_is_an_independent_equal_layer(case, how, state):
    module = _built(case) if state == "built" else case.make()
    twin = COPIES[how](module)
    assert type(twin) is type(module) and twin.get_config() == module.get_config()
    assert _equal_snapshots(_snapshot(twin), _snapshot(module))
    if state == "unbuilt":
        twin(*case.inputs())
        assert all(is_lazy(p) for p in module.parameters())  # building the copy leaves the original unbuilt
        return
    torch.testing.assert_close(twin(*case.inputs(seed=5)), module(*case.inputs(seed=5)), rtol=0, atol=0)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)
    assert all(not torch.equal(a, b) for a, b in zip(twin.parameters(), module.parameters()))


@layers
def test_functional_call_uses_the_weights_it_is_given(case):
    module = _built(case)
    other = _built(case)  # different random weights
    given = {k: v.detach() for k, v in other.named_parameters()}
    x = case.inputs(seed=6)
    torch.testing.assert_close(torch.func.functional_call(module, given, x), other(*x), rtol=0, atol=0)
    if case.weighted:
        assert not torch.equal(module(*x), other(*x))


@layers
@pytest.mark.parametrize("state", ["unbuilt", "built"])
def test_torch_compile_fullgraph_gives_the_eager_result(case, state):
    module = _built(case) if state == "built" else case.make()  # unbuilt: the compiled call builds it
    counter = CompileCounter()
    compiled = torch.compile(module, fullgraph=True, backend=counter)
    x = case.inputs(seed=7)
    out = compiled(*x)
    assert not any(is_lazy(p) for p in module.parameters())
    torch.testing.assert_close(out, _same_weights(case.make_built(), module)(*x))
    assert counter.frame_count == 1


@layers
@pytest.mark.parametrize("state", ["unbuilt", "built"])
def test_explain_never_changes_the_layer(case, state):
    module = _built(case) if state == "built" else case.make()
    before = _snapshot(module)
    hooks = len(module._forward_pre_hooks)
    axisdot.explain(module, *case.shapes)
    assert _equal_snapshots(_snapshot(module), before) and len(module._forward_pre_hooks) == hooks
