"""Port the contraction layers of a saved Keras model to axisdot modules.

The stages, one module each: :mod:`~axisdot.port.archive` reads the file (config, and
where the weights lie), :mod:`~axisdot.port.walk` walks the config (nested models too)
and places each layer's weights, :mod:`~axisdot.port.registry` turns each supported
Keras class (``Dot``, ``EinsumDense``, ``MultiHeadAttention``) into a module,
:mod:`~axisdot.port.hdf5` reads its weights through checks, :mod:`~axisdot.port.hidden`
names the custom layers whose configs hide what they hold, :mod:`~axisdot.port.live`
ports those through Keras where it is installed, :mod:`~axisdot.port.report` prints the
result for the command line. Nothing in a model file is ever executed; Keras is
imported only for models of custom classes.

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
from typing import Iterable, Optional, Union

from ..errors import ModelFileError
from .archive import ModelArchive, read_archive
from .limits import DEFAULT_LIMITS, Limits
from .hidden import NotPorted, hidden_layers, not_ported
from .live import PACKAGES, custom_packages, keras_can_build, load_live
from .registry import PORTERS, PortedLayer, Porter, build, load_weights, register
from .walk import LayerEntry, walk

__all__ = ["port", "load", "Limits", "Ported", "NotPorted", "PortedLayer", "Porter", "PORTERS", "PACKAGES",
           "register", "read_archive", "walk", "LayerEntry", "ModelArchive"]


class Ported(list):  # type: ignore[type-arg]
    """The ported layers (a list of :class:`PortedLayer`), and in ``not_ported`` the
    layers holding weights that were not ported, each with the reason."""

    def __init__(self, layers: Iterable[PortedLayer] = (), not_ported: Iterable[NotPorted] = ()) -> None:
        super().__init__(layers)
        self.not_ported: list[NotPorted] = list(not_ported)


def _port(path: Union[str, Path], limits: Limits, weights: bool, keras: Optional[bool],
          packages: Iterable[str]) -> Ported:
    archive = read_archive(path, limits)
    hidden = hidden_layers(archive)
    why = "load it with Keras installed to port what they hold"
    if hidden and keras is not False:
        modules = [e.node.get("module") for e in hidden if isinstance(e.node.get("module"), str)]
        reason = keras_can_build(custom_packages(modules), packages)
        if reason is None:
            return Ported(*load_live(archive, packages))
        if keras:
            raise ModelFileError(f"{archive.path}: cannot load the model with Keras: {reason}")
        why = reason
    entries = [entry for entry in walk(archive.config, limits.max_layers) if entry.class_name in PORTERS]
    ported = [build(entry) for entry in entries]
    if weights and any(PORTERS[e.class_name].slots for e in entries):
        with archive.weights() as file:  # opened (and its checks run) once, for both
            for layer, entry in zip(ported, entries):
                load_weights(layer, entry, file)
            return Ported(ported, not_ported(archive, hidden, why, file) if hidden else ())
    return Ported(ported, not_ported(archive, hidden, why) if hidden else ())


def port(path: Union[str, Path], limits: Limits = DEFAULT_LIMITS, *, keras: Optional[bool] = None,
         packages: Iterable[str] = ()) -> Ported:
    """Every supported layer of the Keras model saved at ``path`` (a ``.keras`` file or a
    ``to_json()`` file), in model order, with its shapes, equations and weight shapes.

    From the config alone, nothing is allocated: each ``module`` is built on the meta
    device (shapes without storage, whatever size the config declares); use
    :func:`load` for modules with the file's weights, or give one its own:
    ``module.load_state_dict(state, assign=True)``.

    A model with custom layers whose configs do not list their sublayers (KerasHub's
    backbones and blocks) is loaded by Keras in safe mode where Keras and the classes'
    package are importable (``keras=None``, the default; ``keras=True`` requires it,
    ``keras=False`` never does it): then the live layer tree is walked and each module
    holds its weights. Only the packages in :data:`PACKAGES` and ``packages`` are
    imported. Layers holding weights that were not ported are in the result's
    ``not_ported``, each with the reason."""
    return _port(path, limits, False, keras, packages)


def load(path: Union[str, Path], limits: Limits = DEFAULT_LIMITS, *, keras: Optional[bool] = None,
         packages: Iterable[str] = ()) -> Ported:
    """As :func:`port`, with each module's weights loaded from the ``.keras`` file (needs
    h5py: ``pip install "axisdot[port]"``). Without Keras, weights are read layer by
    layer, each dataset only after its shape, type and storage were checked, so memory
    holds the ported layers' weights, never the whole file. Raises
    :class:`axisdot.ModelFileError` naming the file, the layer and the dataset when the
    file's weights are missing, do not fit the config, or break a rule of
    :mod:`~axisdot.port.hdf5`."""
    return _port(path, limits, True, keras, packages)
