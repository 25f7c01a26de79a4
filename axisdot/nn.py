"""``axisdot.Dot``: a ``torch.nn.Module`` drop-in for ``keras.layers.Dot``."""
from __future__ import annotations

from typing import Any, Mapping, Union

import torch

from . import axes as _axes
from .api import Axes, dot
from .errors import AxesError, AxesTypeError, OperandError
from .normalize import normalize_mode

__all__ = ["Dot"]


def _check_layer_axes(axes: Any) -> None:
    """What Keras's ``Dot.__init__`` refuses, refused at construction (plus bools,
    floats and contracting the batch axis, which no input rank can make valid)."""
    canon = _axes.canonical(axes, "Dot(axes)")
    if canon is None:
        raise AxesTypeError("Dot(axes=None): axes must be an int or a pair (x_axis, y_axis)")
    if isinstance(canon, int):
        canon = (canon, canon)
    if len(canon) != 2:
        raise AxesError(f"Dot(axes={axes!r}): axes must be an int or a pair, got {len(canon)} items")
    if isinstance(canon[0], tuple) != isinstance(canon[1], tuple):
        raise AxesError(f"Dot(axes={axes!r}): give either two ints or two sequences of ints")
    firsts = [a for side in canon for a in (side if isinstance(side, tuple) else (side,))]
    if 0 in firsts:
        raise AxesError(f"Dot(axes={axes!r}): axis 0 is the batch axis and cannot be contracted")


class Dot(torch.nn.Module):
    """``keras.layers.Dot(axes, normalize)`` as a module: ``Dot(axes)(x, y)`` or
    ``Dot(axes)([x, y])`` returns :func:`axisdot.dot` of the two inputs. ``normalize``
    is a bool or a mode string (``"keras3"``, ``"tf_keras"``, ``"torch"``), kept as given
    in the config.

    >>> Dot(axes=(2, 1))(torch.ones(2, 3, 5), torch.ones(2, 5, 4)).shape
    torch.Size([2, 3, 4])
    >>> Dot.from_config({"name": "dot", "trainable": True, "axes": [2, 1], "normalize": False})
    Dot(axes=[2, 1], normalize=False)
    """

    def __init__(self, axes: Axes, normalize: Union[bool, str] = False) -> None:
        super().__init__()
        _check_layer_axes(axes)
        normalize_mode(normalize, "Dot(normalize)")
        self.axes = axes
        self.normalize = normalize

    def forward(self, x: Any, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            if not isinstance(x, (list, tuple)) or len(x) != 2:
                raise OperandError(
                    "a Dot module is called on two inputs: Dot(...)(x, y) or Dot(...)([x, y])"
                )
            x, y = x
        return dot(x, y, self.axes, normalize=self.normalize)

    def extra_repr(self) -> str:
        return f"axes={self.axes!r}, normalize={self.normalize!r}"

    def get_config(self) -> dict[str, Any]:
        """``{"axes": ..., "normalize": ...}``: the keys Keras's ``Dot.get_config()``
        holds for this layer's behaviour."""
        return {"axes": self.axes, "normalize": self.normalize}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Dot":
        """Build from a Keras ``Dot`` layer config; base-layer keys such as ``name``,
        ``trainable`` and ``dtype`` are accepted and have no effect on the result."""
        if "axes" not in config:
            raise AxesError(f"Dot.from_config: the config has no 'axes' key: {dict(config)!r}")
        return cls(config["axes"], config.get("normalize", False))
