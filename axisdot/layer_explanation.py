"""The report of ``explain`` for a layer: the contractions a Dot, EinsumDense or
MultiHeadAttention module runs for given input shapes, with its weights and FLOPs.

Each layer's ``explain`` method works its shapes out from its torch-free spec
(:mod:`axisdot.spec`, :mod:`axisdot.dense_spec`, :mod:`axisdot.attention_spec`) and
hands them to the functions here; each contraction is explained by the same code as
``axisdot.explain(equation, *shapes)`` (:mod:`axisdot.explanation`), with the operands
named for their role in the layer. Nothing here knows the layer classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping, Optional, Sequence, Union

from .attention_spec import AttentionSpec
from .dense_spec import DenseSpec
from .errors import AxisdotTypeError
from .explanation import Explanation, build_explanation
from .render import shape_text

__all__ = ["LayerExplanation", "DensePart", "attention_explanation", "dense_explanation", "dot_explanation",
           "full_shape"]


@dataclass(frozen=True)
class LayerExplanation:
    """What a layer runs: its contractions (``parts``, by role), weights and cost."""

    layer: str
    parts: tuple[tuple[str, Explanation], ...]
    weights: dict[str, tuple[int, ...]]
    output_shape: tuple[int, ...]
    flops: int
    notes: tuple[str, ...] = field(default=())

    @property
    def equations(self) -> dict[str, Optional[str]]:
        return {role: e.equation for role, e in self.parts}

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "parts": {role: e.to_dict() for role, e in self.parts},
                "weights": {k: list(v) for k, v in self.weights.items()},
                "output_shape": list(self.output_shape), "flops": self.flops, "notes": list(self.notes)}

    def __str__(self) -> str:
        lines = [self.layer]
        if self.weights:
            lines.append("  weights   " + ", ".join(f"{k} {shape_text(v)}" for k, v in self.weights.items()))
        lines.append(f"  output    {shape_text(self.output_shape)}")
        lines.append(f"  cost      {self.flops:,} FLOPs in its contractions")
        lines += [f"  note      {note}" for note in self.notes]
        for role, e in self.parts:
            lines += ["", f"[{role}]"] + ["  " + line if line else line for line in str(e).splitlines()]
        return "\n".join(lines)


@dataclass(frozen=True)
class DensePart:
    """What one EinsumDense (a layer, or an attention's projection) runs on inputs of
    one shape: its equation written out for that rank, its shapes and its lowering."""

    equation: str
    spec: DenseSpec
    lowering: str


def full_shape(shape: Any, name: str, layer: str) -> tuple[int, ...]:
    """``shape`` as a tuple of sizes, or an error naming the layer and the input."""
    if not isinstance(shape, (tuple, list)) or any(not isinstance(n, int) or isinstance(n, bool) for n in shape):
        raise AxisdotTypeError(f"explain({layer}): the {name} shape must be a tuple of sizes (None is not a size "
                               f"here: give the batch size too), got {shape!r}")
    return tuple(shape)


def _named(e: Explanation, names: Sequence[str]) -> Explanation:
    inputs = tuple(replace(op, name=name) for op, name in zip(e.inputs, names))
    code = e.code
    for i, name in enumerate(names):
        code = code.replace(f", {'abcdefghijklmnopqrstuvwxyz'[i]}", f", {name}", 1) if "einsum(" in code else code
    return replace(e, inputs=inputs, code=code)


def _contraction(equation: str, shapes: Sequence[Sequence[Union[int, None]]], names: Sequence[str]) -> Explanation:
    return _named(build_explanation(equation, *shapes), names)


def _dense(part: DensePart) -> tuple[Explanation, dict[str, tuple[int, ...]]]:
    """The explained contraction of a dense part, its lowering the layer's own, and its weights."""
    e = _contraction(part.equation, [part.spec.input_shape, part.spec.kernel_shape], ["input", "kernel"])
    e = replace(e, lowering=part.lowering, path=tuple(replace(step, lowering=part.lowering) for step in e.path))
    weights = {"kernel": part.spec.kernel_shape}
    if part.spec.bias_shape is not None:
        weights["bias"] = part.spec.bias_shape
    return e, weights


def dense_explanation(layer: str, part: DensePart, notes: Sequence[str] = (),
                      more_weights: Mapping[str, tuple[int, ...]] = MappingProxyType({})) -> LayerExplanation:
    """The report of an EinsumDense (``layer``: its constructor line); ``more_weights``:
    weights beyond the kernel and bias (LoRA's), by name."""
    e, weights = _dense(part)
    weights.update(more_weights)
    return LayerExplanation(layer, (("dense", e),), weights, tuple(part.spec.output_shape),  # type: ignore[arg-type]
                            e.flops or 0, tuple(notes))


def dot_explanation(layer: str, x: Any, y: Any, axes: Any, normalize: Union[bool, str]) -> LayerExplanation:
    """The report of a Dot (``layer``: its constructor line) on inputs of these shapes."""
    e = build_explanation(x, y, axes, normalize=normalize)
    return LayerExplanation(layer, (("dot", e),), {}, tuple(e.output_shape or ()), e.flops or 0)


def attention_explanation(layer: str, spec: AttentionSpec, projections: Mapping[str, DensePart],
                          notes: Sequence[str] = ()) -> LayerExplanation:
    """The report of a MultiHeadAttention (``layer``: its constructor line): its
    ``query_dense``, ``key_dense``, ``value_dense`` (and ``gate_dense``, where the layer
    gates) and ``output_dense`` projections (``projections``, by those names) around the
    scores and combine equations of ``spec``."""
    parts, weights = [], {}
    roles = ("query", "key", "value") + (("gate",) if "gate_dense" in projections else ())
    for role in roles:
        e, w = _dense(projections[f"{role}_dense"])
        parts.append((f"{role} projection", e))
        weights.update({f"{role}_dense.{k}": v for k, v in w.items()})
    shape = {role: projections[f"{role}_dense"].spec.output_shape for role in ("query", "key", "value")}
    scores = _contraction(spec.dot_product_equation, [shape["key"], shape["query"]], ["key", "query"])
    combined = _contraction(spec.combine_equation, [scores.output_shape, shape["value"]],  # type: ignore[list-item]
                            ["scores", "value"])
    output, w = _dense(projections["output_dense"])
    parts += [("scores", scores), ("combine", combined), ("output projection", output)]
    weights.update({f"output_dense.{k}": v for k, v in w.items()})
    out = tuple(projections["output_dense"].spec.output_shape)
    return LayerExplanation(layer, tuple(parts), weights, out,  # type: ignore[arg-type]
                            sum(p.flops or 0 for _, p in parts), tuple(notes))
