"""``axisdot.explain`` of a layer: the contractions a Dot, EinsumDense or
MultiHeadAttention module runs for given input shapes, with its weights and FLOPs.

Each contraction is explained by the same code as ``axisdot.explain(equation, *shapes)``
(:mod:`axisdot.explanation`), with the operands named for their role in the layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

from .errors import AxisdotTypeError, ShapeError
from .explanation import Explanation, build_explanation
from .render import shape_text

__all__ = ["LayerExplanation", "explain_layer"]


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


def _full(shape: Any, name: str, layer: str) -> tuple[int, ...]:
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


def _contraction(equation: str, shapes: Sequence[tuple[int, ...]], names: Sequence[str]) -> Explanation:
    return _named(build_explanation(equation, *shapes), names)


def _dense(module: Any, input_shape: tuple[int, ...]) -> tuple[tuple[str, Explanation], tuple[int, ...], dict]:
    spec = module.analyze(input_shape)
    equation = module.spec_equation.explicit(len(input_shape))
    part = _contraction(equation, [input_shape, spec.kernel_shape], ["input", "kernel"])
    lowering = module.plan_for(spec).lowering_for(input_shape)  # what the layer runs: F.linear where it can
    part = replace(part, lowering=lowering, path=tuple(replace(step, lowering=lowering) for step in part.path))
    weights = {"kernel": spec.kernel_shape}
    if spec.bias_shape is not None:
        weights["bias"] = spec.bias_shape
    return ("dense", part), tuple(spec.output_shape), weights  # type: ignore[arg-type]


def explain_layer(module: Any, *shapes: Any) -> LayerExplanation:
    """The report for ``module`` on inputs of these shapes (batch axis included)."""
    from .layers import Dot, EinsumDense, MultiHeadAttention

    name = type(module).__name__
    if isinstance(module, Dot):
        if len(shapes) != 2:
            raise AxisdotTypeError(f"explain(Dot): give the shapes of x and y, got {len(shapes)} shapes")
        e = build_explanation(shapes[0], shapes[1], module.axes, normalize=module.normalize)
        out = tuple(e.output_shape or ())
        return LayerExplanation(f"axisdot.Dot(axes={module.axes!r}, normalize={module.normalize!r})",
                                (("dot", e),), {}, out, e.flops or 0)  # type: ignore[arg-type]
    if isinstance(module, EinsumDense):
        if len(shapes) != 1:
            raise AxisdotTypeError(f"explain(EinsumDense): give the input shape, got {len(shapes)} shapes")
        part, out, weights = _dense(module, _full(shapes[0], "input", name))
        notes = []
        if module.bias_axes:
            notes.append(f"then the bias {shape_text(weights['bias'])} is added (broadcast over the output)")
        if module.activation_name != "linear":
            notes.append(f"then the activation {module.activation_name!r}")
        if module.lora_enabled:
            notes.append(f"the kernel is kernel + {module.lora_alpha}/{module.lora_rank} * lora_kernel_a @ lora_kernel_b")
        return LayerExplanation(f"axisdot.EinsumDense({module.extra_repr()})", (part,), weights, out,
                                part[1].flops or 0, tuple(notes))
    if isinstance(module, MultiHeadAttention):
        if not 1 <= len(shapes) <= 3:
            raise AxisdotTypeError("explain(MultiHeadAttention): give the query shape, and the value and key "
                                   "shapes when they differ")
        query = _full(shapes[0], "query", name)
        value = _full(shapes[1], "value", name) if len(shapes) > 1 else query
        key = _full(shapes[2], "key", name) if len(shapes) > 2 else value
        built = module.spec
        if built is not None and built.query_shape[1:] != query[1:] and None not in built.query_shape[1:]:
            raise ShapeError(f"explain(MultiHeadAttention): the layer is built for queries {built.query_shape}, "
                             f"got {query}")
        spec, layers = module.projections(query, value, key)  # unbuilt copies: explaining never builds the layer
        parts, weights = [], {}
        projected = {}
        for role in ("query", "key", "value"):
            sub, shape = layers[f"{role}_dense"]
            (_, e), out, w = _dense(sub, tuple(shape))  # type: ignore[arg-type]
            parts.append((f"{role} projection", e))
            projected[role] = out
            weights.update({f"{role}_dense.{k}": v for k, v in w.items()})
        scores = _contraction(spec.dot_product_equation, [projected["key"], projected["query"]], ["key", "query"])
        parts.append(("scores", scores))
        combined = _contraction(spec.combine_equation, [tuple(scores.output_shape), projected["value"]],  # type: ignore[arg-type]
                                ["scores", "value"])
        parts.append(("combine", combined))
        (_, e), out, w = _dense(layers["output_dense"][0], tuple(combined.output_shape))  # type: ignore[arg-type]
        parts.append(("output projection", e))
        weights.update({f"output_dense.{k}": v for k, v in w.items()})
        fused = len(query) == 3 and module.dropout == 0.0
        notes = (f"softmax over the scores' axes {spec.softmax_axes}, masks as Keras applies them",
                 "runs as torch.nn.functional.scaled_dot_product_attention (as Keras fuses it) unless the scores "
                 "are returned" if fused else "runs the scores and combine equations as planned contractions")
        return LayerExplanation(f"axisdot.MultiHeadAttention({module.extra_repr()})", tuple(parts), weights, out,
                                sum(p.flops or 0 for _, p in parts), notes)
    raise AxisdotTypeError(f"explain: cannot explain a {name}; give a Dot, EinsumDense or MultiHeadAttention module, "
                           f"x and y (with axes), or an einsum equation with operands")
