"""What axisdot agrees to read from a model file: every bound in one place.

A saved model is untrusted data. A crafted ``.keras`` file can declare sizes it does not
store (a zip member that inflates a thousandfold, an HDF5 dataset of 64 GiB holding
nothing), nest its JSON deeper than any parser's stack, or list more layers than any
model has. Each such value is compared with one of these bounds *before* anything is
allocated, and a file over a bound is refused with :class:`axisdot.ModelFileError`.

The defaults are far above any real Keras model (a KerasHub backbone's ``config.json``
is some hundred KiB, nested about 30 levels, with a few hundred layers) and far below
what would hurt the machine. Pass your own :class:`Limits` to
:func:`axisdot.port.load` / :func:`axisdot.port.port` to move them.

>>> Limits().max_json_depth
256
>>> Limits(max_layers=10).max_layers
10
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits", "DEFAULT_LIMITS", "MiB", "GiB"]

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Limits:
    """Bounds on what a model file may make axisdot read or allocate."""

    #: ``config.json`` (or a ``to_json()`` file): bytes, declared by the zip and actually inflated.
    max_config_bytes: int = 64 * MiB
    #: nesting of lists and objects in the config JSON.
    max_json_depth: int = 256
    #: layers in the config, nested models' layers included.
    max_layers: int = 100_000
    #: ``model.weights.h5`` when the zip compresses it and it must be inflated to a
    #: temporary file (a stored member is read in place and needs no such bound).
    max_weights_member_bytes: int = 64 * GiB
    #: a compressed member may inflate at most this many times over its stored bytes
    #: beyond ``expansion_allowance`` (Keras's own rule for ``.keras`` members is 1000).
    max_expansion: int = 1000
    #: the weights axisdot reads may exceed ``max_expansion`` times what the file stores
    #: for them by at most this many bytes (in total over one load), so that a dataset
    #: that declares gigabytes and stores nothing is refused before it is read.
    expansion_allowance: int = 64 * MiB
    #: where Keras builds a model of custom classes (KerasHub's): the memory it may map
    #: beyond four times what the weights file declares (the framework's own needs)
    build_allowance: int = 2 * GiB


DEFAULT_LIMITS = Limits()
