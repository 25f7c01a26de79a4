"""What the layers share with Keras's files and live layers: the dtype of a Keras dtype
policy (:func:`policy_dtype`) and the one door Keras weights come in by
(:func:`load_keras_weights`), used by every ``from_keras`` and by
:func:`axisdot.port.load`.

The layers keep Keras's weight layouts, so loading is a copy (or, for a module on the
meta device, the tensors read taken as the parameters), never a transpose.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch.nn.parameter import UninitializedParameter

from ..errors import ArgumentError, ShapeError

__all__ = ["load_keras_weights", "policy_dtype", "weight_shapes"]

_POLICY_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                  "bfloat16": torch.bfloat16, "mixed_float16": torch.float32, "mixed_bfloat16": torch.float32}


def policy_dtype(policy: Any) -> Optional[torch.dtype]:
    """The parameters' dtype of a Keras dtype policy (a name or a serialized policy)."""
    if policy is None:
        return None
    if isinstance(policy, dict):
        if policy.get("class_name") not in (None, "DTypePolicy", "FloatDTypePolicy"):
            raise ArgumentError(f"dtype policy {policy.get('class_name')!r}: quantized Keras layers are not "
                                f"supported (their weights are stored quantized)")
        policy = (policy.get("config") or {}).get("name")
    if policy not in _POLICY_DTYPES:
        raise ArgumentError(f"dtype policy {policy!r} is not one axisdot knows ({', '.join(_POLICY_DTYPES)})")
    return _POLICY_DTYPES[policy]


def _tensor(value: Any) -> torch.Tensor:
    """A tensor of a Keras variable, a numpy array or a tensor (read from a file)."""
    if isinstance(value, torch.Tensor):
        return value
    import numpy as np  # Keras's variables and h5py's datasets come as numpy arrays

    return torch.as_tensor(np.asarray(value))


def load_keras_weights(module: torch.nn.Module, weights: Mapping[str, Any], *, where: str,
                       assign: bool = False) -> None:
    """Give ``module`` Keras's weights, by state-dict key (``"kernel"``,
    ``"query_dense.bias"``): every key of the module's state dict, each of its shape (a
    ShapeError naming ``where`` and the keys otherwise), each cast to the parameter's
    dtype. ``assign``: the tensors become the parameters (a module on the meta device
    gets storage only for what was read) instead of being copied into them."""
    own = module.state_dict(keep_vars=True)
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise ShapeError(f"{where}: its weights do not fit the layer (the layer has no {', '.join(unknown)})")
    state = {key: _tensor(value).to(own[key].dtype) for key, value in weights.items()}
    try:
        module.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as err:
        raise ShapeError(f"{where}: its weights do not fit the layer ({err})") from None


def weight_shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    """The shape of each of the module's weights that exists (a lazy layer's
    uninitialized parameters have none yet)."""
    return {k: list(v.shape) for k, v in module.state_dict(keep_vars=True).items()
            if not isinstance(v, UninitializedParameter)}
