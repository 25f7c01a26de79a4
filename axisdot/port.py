"""Find the ``Dot`` layers of a saved Keras model and say what replaces each in PyTorch.

Reads a Keras 3 ``.keras`` file (a zip holding ``config.json``) or the JSON of
``model.to_json()``; Keras itself is not needed. Nested functional models and
``Sequential`` wrappers are searched too.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from .errors import AxisdotError, ModelFileError
from .explanation import explain

__all__ = ["PortedDot", "load_model_config", "find_dot_layers", "port"]

Shape = Optional[list[Optional[int]]]


@dataclass(frozen=True)
class PortedDot:
    """One Keras ``Dot`` layer and its PyTorch replacements. Shapes and equation are
    None when the model file does not record the layer's input shapes."""

    name: str
    axes: Any
    normalize: bool
    input_shapes: Optional[list[Shape]]
    equation: Optional[str]
    output_shape: Shape
    axisdot: str
    torch: Optional[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_model_config(path: str | Path) -> dict[str, Any]:
    """The model's config: ``config.json`` of a ``.keras`` zip, or a ``to_json()`` file."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if "config.json" not in archive.namelist():
                    raise ModelFileError(f"{path}: a zip without config.json is not a Keras 3 .keras file")
                text = archive.read("config.json").decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        config = json.loads(text)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path}: not a .keras file or a model JSON ({err})") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: the JSON holds a {type(config).__name__}, not a model config")
    return config


def _layer_shapes(layer: dict[str, Any]) -> Optional[list[Shape]]:
    """Input shapes recorded for a layer: its build config, else the Keras tensors of
    its first call (their shapes are the inbound layers' output shapes)."""
    built = (layer.get("build_config") or {}).get("input_shape")
    if isinstance(built, list) and len(built) == 2 and all(isinstance(s, list) for s in built):
        return built
    for node in layer.get("inbound_nodes") or []:
        args = node.get("args") if isinstance(node, dict) else None
        if args and isinstance(args[0], list) and len(args[0]) == 2:
            shapes = [(t.get("config") or {}).get("shape") if isinstance(t, dict) else None for t in args[0]]
            if all(isinstance(s, list) for s in shapes):
                return shapes
    return None


def _walk(node: Any, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        config = node.get("config") if isinstance(node.get("config"), dict) else {}
        name = config.get("name") or node.get("name")
        if node.get("class_name") == "Dot" and "axes" in config:
            yield prefix + str(name), node
            return
        if isinstance(config.get("layers"), list) and name:  # a (nested) model
            prefix = f"{prefix}{name}/"
        for value in node.values():
            yield from _walk(value, prefix)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, prefix)


def _as_tuple(axes: Any) -> Any:
    return tuple(_as_tuple(a) for a in axes) if isinstance(axes, list) else axes


def find_dot_layers(config: dict[str, Any]) -> list[PortedDot]:
    """Every Dot layer in a model config, in the order the config lists them."""
    found = []
    for name, layer in _walk(config, ""):
        cfg = layer["config"]
        axes, normalize = _as_tuple(cfg["axes"]), bool(cfg.get("normalize", False))
        shapes = _layer_shapes(layer)
        line = f"axisdot.Dot(axes={axes!r}, normalize={normalize!r})"
        equation = out = code = None
        if shapes is not None:
            try:
                e = explain(shapes[0], shapes[1], axes, normalize=normalize)
            except AxisdotError as err:
                raise ModelFileError(f"Dot layer {name!r}: {err}") from None
            equation, code = e.equation, e.code
            out = list(e.output_shape) if e.output_shape is not None else None
        found.append(PortedDot(name, axes, normalize, shapes, equation, out, line, code))
    return found


def port(path: str | Path) -> list[PortedDot]:
    """The Dot layers of the Keras model saved at ``path``."""
    return find_dot_layers(load_model_config(path))
