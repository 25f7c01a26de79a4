"""Read a layer's variables from ``model.weights.h5`` as tensors.

Each layer's variables are the datasets ``<layer group>/vars/0``, ``vars/1``, ... in the
order its ``save_own_variables`` writes them (EinsumDense: kernel, then bias); bfloat16
is stored as opaque 2-byte values with a ``dtype`` attribute. Groups of Keras versions
that named things otherwise are tried too: MultiHeadAttention's sublayers as
``_query_dense`` (Keras 3.0.0-3.0.2), and ``_layer_checkpoint_dependencies`` for
``layers`` (the ``.keras`` files of Keras 2.13-2.15).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..errors import ModelFileError

__all__ = ["read_vars", "find_group"]


def find_group(h5: Any, path: str, alternatives: Sequence[str] = ()) -> Optional[Any]:
    """The group at ``path`` (or the first of ``alternatives`` present, each also tried
    with Keras 2's ``_layer_checkpoint_dependencies`` for ``layers``); None if absent."""
    for candidate in (path, *alternatives):
        for variant in (candidate, candidate.replace("layers/", "_layer_checkpoint_dependencies/")):
            if variant in h5:
                return h5[variant]
    return None


def _tensor(dataset: Any) -> torch.Tensor:
    value = dataset[()]
    if dataset.attrs.get("dtype") == "bfloat16":  # opaque 2-byte values
        raw = np.frombuffer(np.asarray(value).tobytes(), dtype=np.int16).reshape(np.shape(value))
        return torch.from_numpy(raw.copy()).view(torch.bfloat16)
    return torch.from_numpy(np.array(value))


def read_vars(group: Optional[Any], layer: str, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The variables ``names`` (in Keras's saving order) of the layer whose group this is."""
    if group is None:
        raise ModelFileError(f"layer {layer!r}: model.weights.h5 has no group for it")
    store = group.get("vars")
    found = sorted(store.keys(), key=int) if store is not None else []
    if len(found) != len(names):
        raise ModelFileError(
            f"layer {layer!r}: model.weights.h5 holds {len(found)} variables at {group.name}/vars, but its config "
            f"needs {len(names)} ({', '.join(names) or 'none'})"
        )
    return {name: _tensor(store[key]) for name, key in zip(names, found)}
