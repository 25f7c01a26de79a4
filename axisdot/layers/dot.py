"""``axisdot.Dot``: a ``torch.nn.Module`` drop-in for ``keras.layers.Dot``."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import torch

from .. import cache as _cache
from ..api import Axes, dot
from ..axes import canonical, keras_pair
from ..errors import AxesError, AxisdotError, AxisdotTypeError, OperandError, with_context
from ..fast import FastEntry, fast_forward, remembered
from ..layer_explanation import LayerExplanation, dot_explanation
from ..normalize import normalize_mode
from .constructor import constructor_args, constructor_line

__all__ = ["Dot"]

_is_compiling = torch.compiler.is_compiling


class Dot(torch.nn.Module):
    """``keras.layers.Dot(axes, normalize)`` as a module: ``Dot(axes)(x, y)`` or
    ``Dot(axes)([x, y])`` returns :func:`axisdot.dot` of the two inputs. ``normalize``
    is a bool or a mode string (``"keras3"``, ``"tf_keras"``, ``"torch"``), kept as given
    in the config.

    ``axes`` is checked at construction by the parser :func:`axisdot.dot` uses (what no
    input rank can make valid is refused at once), and the module keeps its plan for
    each pair of input ranks it has seen, run by the same fast path as the functions'
    (:mod:`axisdot.fast`): while it has seen one pair, a call runs that plan's
    :attr:`~axisdot.plan.Plan.fast` straight away (it refuses other ranks by itself);
    once the ranks vary, the plan is picked by them.

    >>> Dot(axes=(2, 1))(torch.ones(2, 3, 5), torch.ones(2, 5, 4)).shape
    torch.Size([2, 3, 4])
    >>> Dot.from_config({"name": "dot", "trainable": True, "axes": [2, 1], "normalize": False})
    Dot(axes=[2, 1], normalize=False)
    """

    def __init__(self, axes: Axes, normalize: Union[bool, str] = False) -> None:
        super().__init__()
        canon = canonical(axes, "Dot(axes)")
        keras_pair(canon, f"Dot(axes={axes!r})")
        normalize_mode(normalize, "Dot(normalize)")
        self.axes = axes
        self.normalize = normalize
        self._axes = canon
        #: the plans of the input ranks seen so far, as the functions' fast path runs
        #: them (None before the first call, and with normalize)
        self._fast: Optional[FastEntry] = None

    @fast_forward("_fast", _cache.FAST_HITS["dot"])
    def forward(self, x: Any, y: Any = None) -> torch.Tensor:
        if y is None:
            if not isinstance(x, (list, tuple)) or len(x) != 2:
                raise OperandError(
                    "a Dot module is called on two inputs: Dot(...)(x, y) or Dot(...)([x, y])"
                )
            return self.forward(*x)  # Keras's layer([x, y])
        if self.normalize is not False or _is_compiling():  # one allowed call in the graph, as for axisdot.dot
            return dot(x, y, self._axes, normalize=self.normalize)
        try:
            plan = _cache.dot_plan(x.ndim, y.ndim, self._axes)
        except AttributeError:  # not tensors: the function says what is wrong
            return dot(x, y, self._axes)
        except AxisdotError as err:
            raise with_context(err, [f"  x: shape {tuple(x.shape)}", f"  y: shape {tuple(y.shape)}"]) from err.__cause__
        self._fast = remembered(self._fast, self._axes, plan)
        return plan(x, y)

    def extra_repr(self) -> str:
        return ", ".join(constructor_args("Dot", self.get_config()))

    def explain(self, *input_shapes: Any) -> LayerExplanation:
        """The contraction this layer runs on inputs of these two shapes (or ranks), as
        :func:`axisdot.explain` gives it for the layer.

        >>> Dot(axes=(2, 1)).explain((2, 3, 4), (2, 4, 5)).equations
        {'dot': 'bij,bjk->bik'}
        """
        if len(input_shapes) != 2:
            raise AxisdotTypeError(f"explain(Dot): give the shapes of x and y, got {len(input_shapes)} shapes")
        return dot_explanation(constructor_line("Dot", self.get_config()), *input_shapes, self.axes, self.normalize)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fast"] = None  # plans hold functions: rebuilt on the first call after loading
        return state

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

    @classmethod
    def from_keras(cls, layer: Any) -> "Dot":
        """The module for a live ``keras.layers.Dot`` (it has no weights)."""
        from .keras_classes import check_class

        check_class(layer, "Dot")
        return cls.from_config(layer.get_config())
