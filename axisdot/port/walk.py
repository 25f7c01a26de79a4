"""Walk a Keras model config: every layer, in nested functional and Sequential models
too, with its path name (``outer/inner/scores``) and the place of its weights in
``model.weights.h5``.

Keras 3 stores a layer's weights under ``layers/<slot>`` of its model's group, where the
slot is the snake_case of the layer's class name, numbered ``_1``, ``_2``, ... in the
order of the model's layers (a functional model counts its InputLayers but not the raw
``keras.ops`` calls in its config; a Sequential model leaves out its leading
InputLayer); a nested model's own layers follow under its slot. Layer names never
appear in these paths. (``keras/src/saving/saving_lib.py``.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..errors import ModelFileError

__all__ = ["LayerEntry", "walk", "snake_case"]


def snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: ``MultiHeadAttention`` -> ``multi_head_attention``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass(frozen=True)
class LayerEntry:
    """One layer of a model config."""

    name: str  #: path of layer names, ``outer/inner/scores``
    class_name: str
    config: dict[str, Any]
    h5_path: str  #: the layer's group in ``model.weights.h5``, e.g. ``layers/functional/layers/dot``
    node: dict[str, Any] = field(repr=False, compare=False)  #: the raw config entry

    @property
    def build_config(self) -> dict[str, Any]:
        return _dict(self.node.get("build_config"))

    def call_tensor_shapes(self) -> list[Any]:
        """The shapes of the Keras tensors of the layer's first call, in argument order."""
        nodes = self.node.get("inbound_nodes")
        for node in nodes if isinstance(nodes, list) else []:
            if not isinstance(node, dict):
                continue
            shapes: list[Any] = []

            def collect(value: Any) -> None:
                if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
                    shapes.append(_dict(value.get("config")).get("shape"))
                elif isinstance(value, list):
                    for item in value:
                        collect(item)

            collect(node.get("args") or [])
            kwargs = _dict(node.get("kwargs"))
            for key in ("value", "key"):
                if key in kwargs:
                    collect(kwargs[key])
            return shapes
        return []


def _dict(value: Any) -> dict[str, Any]:
    """``value`` where it is a dict, else an empty one (a config is untrusted data)."""
    return value if isinstance(value, dict) else {}


def _is_operation(entry: dict[str, Any]) -> bool:
    return str(entry.get("module", "")).startswith("keras.src.ops")


def _is_model(entry: dict[str, Any]) -> bool:
    return isinstance(_dict(entry.get("config")).get("layers"), list)


def walk(model: dict[str, Any], max_layers: int = 100_000) -> Iterator[LayerEntry]:
    """Every layer of ``model`` (a model config), depth first, in config order; a
    :class:`~axisdot.ModelFileError` past ``max_layers`` layers (nested ones included)."""
    config = _dict(model.get("config"))
    yield from _walk(model, f"{config.get('name') or model.get('name') or 'model'}/", "", [max_layers], max_layers)


def _walk(model: dict[str, Any], prefix: str, h5_prefix: str, left: list[int], max_layers: int
          ) -> Iterator[LayerEntry]:
    layers = _dict(model.get("config")).get("layers")
    if not isinstance(layers, list):
        return
    left[0] -= len(layers)
    if left[0] < 0:
        raise ModelFileError(f"the model config lists more than {max_layers} layers, over the bound "
                             f"(axisdot.port.Limits.max_layers); refused")
    sequential = model.get("class_name") == "Sequential"
    slots: dict[str, int] = {}
    for index, entry in enumerate(layers):
        if not isinstance(entry, dict) or _is_operation(entry):
            continue
        class_name = str(entry.get("class_name"))
        if sequential and index == 0 and class_name == "InputLayer":
            continue
        slot = snake_case(class_name)
        if slot in slots:
            slots[slot] += 1
            slot = f"{slot}_{slots[slot]}"
        else:
            slots[slot] = 0
        config = _dict(entry.get("config"))
        name = str(config.get("name") or entry.get("name") or slot)
        path = f"{h5_prefix}layers/{slot}"
        if _is_model(entry):
            yield from _walk(entry, f"{prefix}{name}/", f"{path}/", left, max_layers)
        else:
            yield LayerEntry(prefix + name, class_name, config, path, entry)
