"""The layers a config cannot see into: custom classes (a KerasHub backbone, its
``TransformerEncoder``, a user's registered layer) save their constructor arguments, not
the layers they build. Without Keras they are named, with the variables their weights
hold (counted through the checked reader, :mod:`~axisdot.port.hdf5`: no data is read),
so that a model is never reported as holding no contraction layer while it holds
weights.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import ModelFileError
from .archive import ModelArchive
from .registry import PORTERS
from .walk import LayerEntry, walk

__all__ = ["NotPorted", "hidden_layers", "not_ported"]


@dataclass(frozen=True)
class NotPorted:
    """A layer axisdot did not port, and why."""

    name: str  #: its path in the model
    class_name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "class_name": self.class_name, "reason": self.reason}


def _is_custom(node: dict[str, Any]) -> bool:
    """A class from outside Keras (KerasHub's, a user's registered class)."""
    module = node.get("module")
    return bool(node.get("registered_name")) or (isinstance(module, str) and not module.startswith("keras"))


def hidden_layers(archive: ModelArchive) -> list[LayerEntry]:
    """The custom layers (or a custom model) whose configs do not list their sublayers:
    the config cannot say what they hold."""
    config = archive.config
    if not isinstance(config["config"].get("layers"), list):  # the model itself: a KerasHub backbone, ...
        name = str(config["config"].get("name") or config["class_name"])
        return [LayerEntry(name, str(config.get("registered_name") or config["class_name"]), config["config"], "",
                           config)] if _is_custom(config) else []
    return [e for e in walk(config, archive.limits.max_layers) if e.class_name not in PORTERS and _is_custom(e.node)]


def _count(weights: Any, hidden: list[LayerEntry], counts: dict[str, Optional[int]]) -> None:
    for entry in hidden:
        group = weights.find_group(entry.name, entry.h5_path) if entry.h5_path else weights.group("", "")
        counts[entry.name] = None if group is None else weights.count_variables(group, entry.name)


def not_ported(archive: ModelArchive, hidden: list[LayerEntry], why: str, weights: Any = None) -> list[NotPorted]:
    """Each hidden layer, with the variables its weights hold where the file has weights
    (counted through the checked reader: no data is read). ``weights``: the archive's
    :class:`~axisdot.port.hdf5.WeightsFile` where the caller has it open already (so its
    checks run once). A weights file that breaks a rule leaves the counts out."""
    counts: dict[str, Optional[int]] = {entry.name: None for entry in hidden}
    if weights is not None or archive.weights_member is not None:
        opened = contextlib.nullcontext(weights) if weights is not None else archive.weights()
        with contextlib.suppress(ModelFileError), opened as file:
            _count(file, hidden, counts)
    out = []
    for entry in hidden:
        n = counts[entry.name]
        held = "" if n is None else f"; its weights hold {n} variable{'s' if n != 1 else ''}"
        out.append(NotPorted(entry.name, str(entry.node.get("registered_name") or entry.class_name),
                             f"a custom class whose config does not list its sublayers{held}: {why}"))
    return [item for item, entry in zip(out, hidden) if counts[entry.name] != 0]
