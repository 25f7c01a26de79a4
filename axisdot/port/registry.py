"""From Keras class name to the axisdot module that replaces the layer.

Each :class:`Porter` builds the module from a layer's config and recorded input shapes
(:meth:`Porter.build`) and copies its weights in from ``model.weights.h5``
(:meth:`Porter.load`); :func:`register` adds one for another class.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

import torch
from torch.nn.parameter import UninitializedParameter

from ..errors import AxisdotError, ModelFileError, ShapeError
from ..explanation import explain
from ..layers import Dot, EinsumDense, MultiHeadAttention, activations
from ..layers.constructor import constructor_line
from ..layers.keras_interop import load_keras_weights, weight_shapes
from .hdf5 import WeightsFile
from .walk import LayerEntry

__all__ = ["PortedLayer", "Porter", "PORTERS", "register"]

Shape = Optional[list[Optional[int]]]


@dataclass
class PortedLayer:
    """One Keras layer and its PyTorch replacement.

    ``module`` is the axisdot module (with the file's weights after
    :func:`axisdot.port.load`); ``equations`` the einsum equations it runs, by role;
    ``axisdot`` a line building the module; ``torch`` a line of plain PyTorch doing the
    same (None where there is no single line); ``weights`` the module's parameter shapes.
    Shapes and equations are None / empty when the file records no input shapes.
    """

    name: str
    class_name: str
    config: dict[str, Any]
    input_shapes: Optional[list[Shape]]
    equations: dict[str, str]
    output_shape: Shape
    axisdot: str
    torch: Optional[str]
    weights: dict[str, list[int]]
    module: torch.nn.Module = field(repr=False, compare=False)

    @property
    def equation(self) -> Optional[str]:
        """The layer's main contraction: the Dot's, the EinsumDense's, the attention scores'."""
        for key in ("dot", "dense", "scores"):
            if key in self.equations:
                return self.equations[key]
        return None

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "module"}
        data["equation"] = self.equation
        return data


def _shape(value: Any) -> Shape:
    return list(value) if isinstance(value, (list, tuple)) else None


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value


# -- Dot ------------------------------------------------------------------------------------


def _two_shapes(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(s, list) for s in value)


def _build_dot(entry: LayerEntry) -> PortedLayer:
    cfg = entry.config
    axes, normalize = _as_tuple(cfg["axes"]), cfg.get("normalize", False)
    built = entry.build_config.get("input_shape")
    shapes = built if _two_shapes(built) else entry.call_tensor_shapes()
    shapes = shapes if _two_shapes(shapes) else None
    module = Dot(axes, normalize)
    equations, out, code = {}, None, None
    if shapes is not None:
        e = explain(shapes[0], shapes[1], axes, normalize=normalize)
        equations, code = {"dot": e.equation}, e.code
        out = _shape(e.output_shape)
    return PortedLayer(entry.name, "Dot", {"axes": axes, "normalize": normalize}, shapes, equations, out,
                       constructor_line("Dot", module.get_config()), code, {}, module)


# -- EinsumDense ----------------------------------------------------------------------------


def _build_dense(entry: LayerEntry) -> PortedLayer:
    built = entry.build_config.get("input_shape")
    calls = entry.call_tensor_shapes()
    shape = built if isinstance(built, list) else (calls[0] if calls and isinstance(calls[0], list) else None)
    module = EinsumDense.from_config(entry.config, input_shape=shape)
    cfg = module.get_config()
    equations, out, code = {}, None, None
    if module.spec is not None:
        equation = module.spec_equation.explicit(len(module.spec.input_shape))
        equations = {"dense": equation}
        out = _shape(module.spec.output_shape)
        code = f'torch.einsum("{equation}", x, kernel)' + (" + bias" if module.bias is not None else "")
        code = activations.code(cfg["activation"], code)
    config = {k: cfg[k] for k in ("equation", "output_shape", "bias_axes", "activation")}
    if cfg.get("lora_rank"):
        config.update(lora_rank=cfg["lora_rank"], lora_alpha=cfg["lora_alpha"])
    return PortedLayer(entry.name, "EinsumDense", config, None if shape is None else [shape], equations, out,
                       constructor_line("EinsumDense", cfg), code, weight_shapes(module), module)


Slots = tuple[list[tuple[str, Any]], dict[str, torch.Tensor]]


def _dense_slots(module: EinsumDense, weights: WeightsFile, group: Any, layer: str, prefix: str = "") -> Slots:
    """EinsumDense saves its kernel, then its bias. Keras saves a LoRA update merged into
    the kernel and zeroes A and B on load: so do we."""
    names = ["kernel"] + (["bias"] if module.bias is not None else [])
    slots = [(prefix + name, dataset) for name, dataset in zip(names, weights.variables(group, layer, names))]
    zeros = {}
    if module.lora_enabled:
        for name in ("lora_kernel_a", "lora_kernel_b"):
            param = getattr(module, name)
            zeros[prefix + name] = torch.zeros(param.shape, dtype=param.dtype)
    return slots, zeros


# -- MultiHeadAttention ---------------------------------------------------------------------


def _build_attention(entry: LayerEntry) -> PortedLayer:
    shapes = entry.build_config.get("shapes_dict") or {}
    q, v, k = shapes.get("query_shape"), shapes.get("value_shape"), shapes.get("key_shape")
    if q is None:
        calls = entry.call_tensor_shapes()
        q, v = (calls + [None, None])[:2]
        k = calls[2] if len(calls) > 2 else None
    module = MultiHeadAttention.from_config(entry.config, query_shape=q, value_shape=v, key_shape=k)
    config = module.get_config()
    equations, out, inputs = {}, None, None
    if module.spec is not None:
        spec = module.spec
        equations = {"query": spec.query_projection[0], "key": spec.key_projection[0],
                     "value": spec.value_projection[0], "scores": spec.dot_product_equation,
                     "combine": spec.combine_equation, "output projection": spec.output_projection[0]}
        out = list(spec.query_shape[:-1]) + list(module.output_shape or spec.query_shape[-1:])
        inputs = [list(spec.query_shape), list(spec.value_shape)] + ([list(spec.key_shape)] if k is not None else [])
    return PortedLayer(entry.name, "MultiHeadAttention", config, inputs, equations, out,
                       constructor_line("MultiHeadAttention", config), None, weight_shapes(module), module)


def _attention_slots(module: MultiHeadAttention, weights: WeightsFile, group: Any, layer: str) -> Slots:
    """The four projections' (and the gate's) EinsumDense slots, from their subgroups."""
    if module.spec is None:
        raise ModelFileError(f"layer {layer!r}: the file records no input shapes for this MultiHeadAttention, "
                             f"so its projections cannot be built")
    subs = ["query_dense", "key_dense", "value_dense", "output_dense"] + (["gate_dense"] if module.use_gate else [])
    slots: list[tuple[str, Any]] = []
    zeros: dict[str, torch.Tensor] = {}
    for sub in subs:
        saved = "_gate_dense" if sub == "gate_dense" else sub
        child = None if group is None else weights.find_group(layer, saved, (f"_{saved}",), base=group)
        more, more_zeros = _dense_slots(getattr(module, sub), weights, child, f"{layer}/{sub}", f"{sub}.")
        slots += more
        zeros.update(more_zeros)
    return slots, zeros


@dataclass(frozen=True)
class Porter:
    """How one Keras class becomes an axisdot module."""

    class_name: str
    build: Callable[[LayerEntry], PortedLayer]
    #: where the module's weights lie in ``model.weights.h5``: ``(module, weights file,
    #: the layer's group, layer name) -> ([(state-dict key, dataset)], {key: tensor set
    #: without reading})``; None: a layer without weights.
    slots: Optional[Callable[[Any, WeightsFile, Any, str], Slots]] = None


PORTERS: dict[str, Porter] = {}


def register(porter: Porter) -> None:
    """Port layers of ``porter.class_name`` with it (replacing any earlier porter)."""
    PORTERS[porter.class_name] = porter


register(Porter("Dot", _build_dot))
register(Porter("EinsumDense", _build_dense, _dense_slots))
register(Porter("MultiHeadAttention", _build_attention, _attention_slots))


def build(entry: LayerEntry) -> PortedLayer:
    """The ported layer for a config entry, its module on the meta device (shapes, no
    storage: a config may declare any size), errors naming the layer."""
    try:
        with torch.device("meta"):
            return PORTERS[entry.class_name].build(entry)
    except ModelFileError:
        raise
    except (AxisdotError, KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as err:
        # the last four: a config value of a shape no Keras writes, or sizes no tensor can have
        raise ModelFileError(f"{entry.class_name} layer {entry.name!r}: {err}") from None


def load_weights(ported: PortedLayer, entry: LayerEntry, weights: WeightsFile) -> None:
    """Give the layer's module its weights from ``model.weights.h5``: every dataset is
    checked against the module's (meta) shapes before any is read, and the module's
    storage is the tensors read (``load_state_dict(assign=True)``): nothing is allocated
    that the file does not hold."""
    porter = PORTERS[entry.class_name]
    module = ported.module
    if porter.slots is not None:
        group = weights.find_group(entry.name, entry.h5_path)
        slots, zeros = porter.slots(module, weights, group, entry.name)
        own = module.state_dict(keep_vars=True)
        required = [(key, dataset, None if isinstance(own[key], UninitializedParameter) else tuple(own[key].shape))
                    for key, dataset in slots]
        state = weights.read(entry.name, required)
        try:
            load_keras_weights(module, {**state, **zeros}, where=f"{weights.source}: layer {entry.name!r}", assign=True)
        except ShapeError as err:
            raise ModelFileError(str(err)) from None
    ported.weights = weight_shapes(module)
