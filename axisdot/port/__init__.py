"""Port the contraction layers of a saved Keras model to axisdot modules.

The stages, one module each: :mod:`~axisdot.port.archive` reads the file (config, and
where the weights lie), :mod:`~axisdot.port.walk` walks the config (nested models too)
and places each layer's weights, :mod:`~axisdot.port.registry` turns each supported
Keras class (``Dot``, ``EinsumDense``, ``MultiHeadAttention``) into a module,
:mod:`~axisdot.port.hdf5` reads its weights through checks, :mod:`~axisdot.port.report`
prints the result for the command line. Keras itself is never imported, and nothing in
a model file is ever executed.

A model file is untrusted data: every size it declares is checked against
:mod:`~axisdot.port.limits` and against what it stores before anything is allocated,
nothing outside the file is read, and every refusal is a
:class:`~axisdot.ModelFileError`.

>>> import axisdot.port
>>> sorted(axisdot.port.PORTERS)
['Dot', 'EinsumDense', 'MultiHeadAttention']
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from .archive import ModelArchive, read_archive
from .limits import DEFAULT_LIMITS, Limits
from .registry import PORTERS, PortedLayer, Porter, build, load_weights, register
from .walk import LayerEntry, walk

__all__ = ["port", "load", "Limits", "PortedLayer", "Porter", "PORTERS", "register", "read_archive", "walk",
           "LayerEntry", "ModelArchive"]


def _entries(archive: ModelArchive) -> list[LayerEntry]:
    return [entry for entry in walk(archive.config, archive.limits.max_layers) if entry.class_name in PORTERS]


def port(path: Union[str, Path], limits: Limits = DEFAULT_LIMITS) -> list[PortedLayer]:
    """Every supported layer of the Keras model saved at ``path`` (a ``.keras`` file or a
    ``to_json()`` file), in config order, with its shapes, equations and weight shapes.
    Nothing is allocated: each ``module`` is built on the meta device (shapes without
    storage, whatever size the config declares). Use :func:`load` for modules with the
    file's weights, or give one its own: ``module.load_state_dict(state, assign=True)``."""
    archive = read_archive(path, limits)
    return [build(entry) for entry in _entries(archive)]


def load(path: Union[str, Path], limits: Limits = DEFAULT_LIMITS) -> list[PortedLayer]:
    """As :func:`port`, with each module's weights loaded from the ``.keras`` file (needs
    h5py: ``pip install "axisdot[port]"``). Weights are read layer by layer, each
    dataset only after its shape, type and storage were checked, so memory holds the
    ported layers' weights, never the whole file. Raises :class:`axisdot.ModelFileError`
    naming the file, the layer and the dataset when the file's weights are missing,
    do not fit the config, or break a rule of :mod:`~axisdot.port.hdf5`."""
    archive = read_archive(path, limits)
    entries = _entries(archive)
    ported = [build(entry) for entry in entries]
    if not any(PORTERS[e.class_name].slots for e in entries):
        return ported
    with archive.weights() as weights:
        for layer, entry in zip(ported, entries):
            load_weights(layer, entry, weights)
    return ported
