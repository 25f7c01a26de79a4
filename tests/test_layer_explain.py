"""Each layer explains itself (issue 19): ``layer.explain(*shapes)`` is what
``axisdot.explain(layer, *shapes)`` gives, the same report as before explain moved into
the layers (recorded in ``layer_explain_reports.json`` by the code before the move), and
explaining never builds or changes the layer. Five cases were recorded again on
2026-12-07 after three deliberate fixes, their diff read to be those and nothing else: a
projection without a bias no longer says "then the bias" ("dense ellipsis", "dense lora",
"attention, key", "attention, no bias"), the gate projection is reported ("attention,
gate"), and LoRA's weights are listed ("dense lora"); the weights are also checked against
the built layer's parameters below."""
from __future__ import annotations

import re

import json
import pathlib
import sys

import pytest
import torch
from torch.nn.parameter import is_lazy

import axisdot
from axisdot import Dot, EinsumDense, MultiHeadAttention
from axisdot.layers.constructor import constructor_line

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from layer_explain_cases import CASES, normalized, without_cache_state  # noqa: E402

RECORDED = json.loads((pathlib.Path(__file__).parent / "layer_explain_reports.json").read_text())
cases = pytest.mark.parametrize("name", list(CASES), ids=list(CASES))


def _header(module):
    return constructor_line(type(module).__name__, module.get_config())


STEP = re.compile(r"^\s+\d+\. operands ")
MEMORY = re.compile(r"^\s+memory\s")  # the peak of temporaries, added by issue 22 after the recording
MEMORY_KEYS = ("peak_memory", "memory_dtype", "sliced", "slices", "extra_flops")
ADDED_KEYS = ("path_origin",)  # who chose an einsum's path, added by issue 21 after the recording


def _steps_apart(text: str) -> tuple[list[str], list[str]]:
    """A report's lines without its einsum path steps (and memory lines), and the steps
    (stripped)."""
    lines = [line for line in text.splitlines() if not MEMORY.match(line)]
    return [line for line in lines if not STEP.match(line)], [line.strip() for line in lines if STEP.match(line)]


def _without_paths(data: dict) -> dict:
    dropped = ("path", *MEMORY_KEYS, *ADDED_KEYS)
    return {**data, "layer": None, "parts": {role: {k: v for k, v in part.items() if k not in dropped}
                                             for role, part in data["parts"].items()}}


@cases
def test_a_layer_s_report_is_the_one_recorded_before_explain_moved_into_the_layer(name):
    make, shapes = CASES[name]
    module = make()
    e = axisdot.explain(module, *shapes)
    recorded = RECORDED[name]
    # every line but the first, and every field but the layer's line, as recorded; the
    # einsum path steps apart: the planner lays intermediates out anew since (issue 21),
    # so each part's steps are the ones the einsum's own explain gives for its equation
    got, steps = _steps_apart(normalized(str(e)))
    assert got[1:] == _steps_apart(recorded["report"])[0][1:]
    data = without_cache_state(e.to_dict())
    assert _without_paths(data) == _without_paths(recorded["data"])
    own = {role: axisdot.explain(part["equation"], *part["input_shapes"]) for role, part in data["parts"].items()
           if part.get("path")}  # the einsum parts (a Dot's contraction is a plan of its own, with no path)
    fields = [re.split(r"\s{3,}", line) for line in steps]  # operands, equation, FLOPs, the layer's lowering
    assert [f[:3] for f in fields] == [re.split(r"\s{3,}", line)[:3] for role in own
                                       for line in _steps_apart(str(own[role]))[1]]
    # the lowering as recorded; the copies it names after a ";" are issue 21's (tests/test_einsum_layouts.py)
    assert [f[3].split(";")[0] for f in fields] == [re.split(r"\s{3,}", line)[3].split(";")[0]
                                                    for line in _steps_apart(recorded["report"])[1]]

    def steps_of(path: list) -> list:
        return [{k: v for k, v in step.items() if k != "lowering"} for step in path]
    assert {role: steps_of(data["parts"][role]["path"]) for role in own} == \
        {role: steps_of(without_cache_state(own[role].to_dict())["path"]) for role in own}
    # the memory lines and fields: the einsum's own, part by part
    memory = [line.strip() for line in str(e).splitlines() if MEMORY.match(line)]
    assert memory == [line.strip() for role in own for line in str(own[role]).splitlines() if MEMORY.match(line)]
    assert {role: {k: data["parts"][role][k] for k in MEMORY_KEYS} for role in own} == \
        {role: {k: own[role].to_dict()[k] for k in MEMORY_KEYS} for role in own}
    # the first line is now the constructor line: the same whether the layer is built or not
    assert e.layer == _header(module) == str(e).splitlines()[0]
    assert "unbuilt" not in e.layer and "kernel=" not in e.layer


@cases
def test_axisdot_explain_of_a_layer_is_the_layer_s_own_explain(name):
    make, shapes = CASES[name]
    module = make()
    assert without_cache_state(axisdot.explain(module, *shapes).to_dict()) == \
        without_cache_state(module.explain(*shapes).to_dict())


def _state(module):
    """What explaining must leave as it was: which parameters exist, are lazy, their
    shapes, dtypes and values, the submodules, the build state and the hooks."""
    params = [(name, is_lazy(p), None if is_lazy(p) else (tuple(p.shape), p.dtype, p.detach().clone()))
              for name, p in module.named_parameters()]
    return dict(params=params, count=sum(0 if is_lazy(p) else p.numel() for p in module.parameters()),
                modules=[(name, type(m).__name__) for name, m in module.named_modules()],
                built=getattr(module, "spec", None), repr=repr(module), hooks=len(module._forward_pre_hooks),
                lazy=module.has_uninitialized_params() if hasattr(module, "has_uninitialized_params") else None)


def _same(a, b):
    for (na, la, va), (nb, lb, vb) in zip(a["params"], b["params"]):
        assert (na, la) == (nb, lb)
        if va is not None:
            assert va[:2] == vb[:2] and torch.equal(va[2], vb[2]), na
    assert len(a["params"]) == len(b["params"])
    assert {k: v for k, v in a.items() if k != "params"} == {k: v for k, v in b.items() if k != "params"}


@cases
def test_explaining_never_builds_or_changes_the_layer(name):
    make, shapes = CASES[name]
    module = make()
    before = _state(module)
    module.explain(*shapes)
    axisdot.explain(module, *shapes)
    _same(_state(module), before)


@pytest.mark.parametrize("module, shapes, fragment", [
    (Dot(1), [(2, 3)], "give the shapes of x and y, got 1"),
    (EinsumDense("ab,bc->ac", 4), [(2, 3), (2, 3)], "give the input shape, got 2"),
    (MultiHeadAttention(2, 4), [], "give the query shape"),
    (EinsumDense("ab,bc->ac", 4), [(None, 3)], "None is not a size"),
    (MultiHeadAttention(2, 4), [(2, 5, 8), "value"], "the value shape must be a tuple of sizes"),
], ids=["Dot, one shape", "EinsumDense, two shapes", "MHA, none", "EinsumDense, None", "MHA, a string"])
def test_a_layer_refuses_shapes_it_cannot_explain_with_a_type_error_naming_it(module, shapes, fragment):
    for explain in (module.explain, lambda *s: axisdot.explain(module, *s)):
        with pytest.raises(axisdot.AxisdotTypeError, match=fragment):
            explain(*shapes)


def test_a_built_layer_refuses_to_explain_inputs_it_does_not_take():
    dense = EinsumDense("abc,cd->abd", (None, 4), input_shape=(None, 5, 16))
    with pytest.raises(axisdot.ShapeError, match=r"needs a kernel of shape \(12, 4\)"):
        dense.explain((2, 5, 12))
    mha = MultiHeadAttention(2, 4, query_shape=(None, 5, 8))
    with pytest.raises(axisdot.ShapeError, match="built for queries"):
        mha.explain((2, 5, 6))


def test_a_module_that_cannot_explain_itself_is_named():
    with pytest.raises(axisdot.AxisdotTypeError, match="cannot explain a Linear"):
        axisdot.explain(torch.nn.Linear(2, 3), (2, 2))


@cases
def test_a_reports_weights_are_the_built_layers_parameters(name):
    """Independent of the recording: the weights a report lists, by name and shape, are
    the parameters the layer has once it has run on inputs of those shapes."""
    make, shapes = CASES[name]
    module = make()
    e = module.explain(*shapes)
    inputs = [torch.rand(s) for s in shapes]
    if isinstance(module, MultiHeadAttention) and len(inputs) == 1:
        inputs *= 2  # self-attention: the query is the value
    module(*inputs)
    assert e.weights == {n: tuple(p.shape) for n, p in module.named_parameters()}


@cases
def test_a_lowering_names_no_bias_where_the_part_has_none(name):
    make, shapes = CASES[name]
    data = make().explain(*shapes).to_dict()
    for role, part in data["parts"].items():
        prefix = {"dense": "", "query projection": "query_dense.", "key projection": "key_dense.",
                  "value projection": "value_dense.", "gate projection": "gate_dense.",
                  "output projection": "output_dense."}.get(role)
        if prefix is not None and f"{prefix}bias" not in data["weights"]:
            assert "bias" not in part["lowering"], role
