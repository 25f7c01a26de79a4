"""Port the contraction layers of a saved Keras model to axisdot modules.

The stages, one module each: :mod:`~axisdot.port.archive` reads the file (config and
weights), :mod:`~axisdot.port.walk` walks the config (nested models too) and places
each layer's weights, :mod:`~axisdot.port.registry` turns each supported Keras class
(``Dot``, ``EinsumDense``, ``MultiHeadAttention``) into a module and loads its weights
(:mod:`~axisdot.port.weights`), :mod:`~axisdot.port.report` prints the result for the
command line. Keras itself is never imported.

>>> import axisdot.port
>>> sorted(axisdot.port.PORTERS)
['Dot', 'EinsumDense', 'MultiHeadAttention']
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from .archive import ModelArchive, read_archive
from .registry import PORTERS, PortedLayer, Porter, build, load_weights, register
from .walk import LayerEntry, walk

__all__ = ["port", "load", "PortedLayer", "Porter", "PORTERS", "register", "read_archive", "walk", "LayerEntry",
           "ModelArchive"]


def _entries(archive: ModelArchive) -> list[LayerEntry]:
    return [entry for entry in walk(archive.config) if entry.class_name in PORTERS]


def port(path: Union[str, Path]) -> list[PortedLayer]:
    """Every supported layer of the Keras model saved at ``path`` (a ``.keras`` file or a
    ``to_json()`` file), in config order, each with its module built from the config
    (weights initialized, not loaded: see :func:`load`)."""
    archive = read_archive(path)
    return [build(entry) for entry in _entries(archive)]


def load(path: Union[str, Path]) -> list[PortedLayer]:
    """As :func:`port`, with each module's weights loaded from the ``.keras`` file (needs
    h5py: ``pip install "axisdot[port]"``). Raises :class:`axisdot.ModelFileError`
    naming the layer and the weight when the file's weights are missing or do not fit
    the config."""
    archive = read_archive(path)
    entries = _entries(archive)
    ported = [build(entry) for entry in entries]
    if not any(PORTERS[e.class_name].load for e in entries):
        return ported
    with archive.h5() as h5:
        for layer, entry in zip(ported, entries):
            load_weights(layer, entry, h5)
    return ported
