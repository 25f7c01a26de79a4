"""Read a saved Keras model: its config (``config.json`` of a ``.keras`` zip, or the JSON
of ``model.to_json()``) and, in a ``.keras`` file, its weights (``model.weights.h5``).
Keras is not needed; h5py (the ``port`` extra) only when the weights are read.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import ModelFileError

__all__ = ["ModelArchive", "read_archive"]

_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class ModelArchive:
    """A model file's config and, for a ``.keras`` file, its weights file's bytes."""

    path: Path
    config: dict[str, Any]
    weights: Optional[bytes]  #: ``model.weights.h5``; None for a ``to_json()`` file

    def h5(self) -> Any:
        """The weights as an open, read-only ``h5py.File``."""
        if self.weights is None:
            raise ModelFileError(f"{self.path}: a model JSON holds no weights; save the model with "
                                 f"model.save('model.keras') to port its weights")
        try:
            import h5py
        except ImportError:
            raise ModelFileError('reading Keras weights needs h5py: pip install "axisdot[port]"') from None
        return h5py.File(io.BytesIO(self.weights), "r")


def _is_model_config(config: Any) -> bool:
    """A Keras model or layer serialization: ``class_name`` and a ``config`` dict."""
    return isinstance(config, dict) and isinstance(config.get("class_name"), str) \
        and isinstance(config.get("config"), dict)


def read_archive(path: "str | Path") -> ModelArchive:
    """The model file at ``path``: a Keras 3 ``.keras`` zip or a ``to_json()`` file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except OSError as err:
        raise ModelFileError(f"{path}: cannot be read ({err.strerror or err})") from None
    weights = None
    if head == _ZIP_MAGIC:
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if "config.json" not in names:
                    raise ModelFileError(f"{path}: a zip without config.json is not a Keras 3 .keras file")
                text = archive.read("config.json").decode("utf-8")
                if "model.weights.h5" in names:
                    weights = archive.read("model.weights.h5")
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, UnicodeDecodeError) as err:
            raise ModelFileError(f"{path}: the .keras archive is corrupt (truncated or damaged: {err})") from None
    else:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFileError(f"{path}: not a .keras file or a model JSON (binary content)") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: not a .keras file or a model JSON ({err})") from None
    if not _is_model_config(config):
        what = type(config).__name__ if not isinstance(config, dict) else "JSON without a model's class_name and config"
        raise ModelFileError(f"{path}: not a Keras model (a {what}); give a .keras file or the JSON of "
                             f"model.to_json()")
    return ModelArchive(path, config, weights)
