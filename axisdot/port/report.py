"""The text report of ``axisdot port``."""
from __future__ import annotations

from typing import Optional, Sequence

from ..render import shape_text
from .hidden import NotPorted
from .registry import PortedLayer

__all__ = ["report"]


def _shape(shape: Optional[Sequence[Optional[int]]]) -> str:
    return "unknown" if shape is None else shape_text(shape, unknown="None")


def _not_ported(skipped: Sequence[NotPorted]) -> str:
    lines = [f"not ported: {len(skipped)} layer{'s' if len(skipped) != 1 else ''} holding weights"]
    lines += [f"  {item.name}  ({item.class_name}): {item.reason}" for item in skipped]
    return "\n".join(lines)


def report(layers: Sequence[PortedLayer], not_ported: Sequence[NotPorted] = ()) -> str:
    """One block per layer: its path, class, input shapes, equations, output shape, the
    axisdot line and the plain PyTorch line; then the layers not ported, with why."""
    if not layers:
        found = "no Dot, EinsumDense or MultiHeadAttention layers found"
        return f"{found}\n\n{_not_ported(not_ported)}" if not_ported else found
    blocks = []
    for layer in layers:
        rows = []
        if layer.class_name == "Dot":
            rows.append(("axes", f"{layer.config['axes']!r}   normalize {layer.config['normalize']}"))
        inputs = ", ".join(_shape(s) for s in layer.input_shapes) if layer.input_shapes \
            else "unknown: the file records no input shapes"
        rows.append(("inputs", inputs))
        if not layer.equations:
            rows.append(("equation", "unknown without input shapes"))
        elif len(layer.equations) == 1:
            rows.append(("equation", next(iter(layer.equations.values()))))
        else:
            rows += [(f"{role}", eq) for role, eq in layer.equations.items()]
        rows.append(("output", _shape(layer.output_shape)))
        if layer.weights:
            rows.append(("weights", ", ".join(f"{k} {shape_text(v)}" for k, v in layer.weights.items())))
        rows.append(("axisdot", layer.axisdot))
        if layer.torch is not None or layer.class_name == "Dot":
            rows.append(("torch", layer.torch or "unknown without input shapes"))
        width = max(len(k) for k, _ in rows)
        blocks.append("\n".join([f"{layer.name}  ({layer.class_name})"] + [f"  {k:<{width}}  {v}" for k, v in rows]))
    if not_ported:
        blocks.append(_not_ported(not_ported))
    return "\n\n".join(blocks)
