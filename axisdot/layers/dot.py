"""``axisdot.Dot``: a ``torch.nn.Module`` drop-in for ``keras.layers.Dot``."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import torch

from .. import cache as _cache
from ..api import Axes, dot
from ..axes import canonical, keras_pair
from ..errors import AxesError, AxisdotError, OperandError, with_context
from ..normalize import l2_normalize, normalize_mode
from ..plan import RECOVERABLE, Plan, RankMismatch

__all__ = ["Dot"]

_is_compiling = torch.compiler.is_compiling
#: the hot path's test: dynamo (which records one allowed ``axisdot.dot`` call instead)
#: folds it to True; 26 ns a call against is_compiling's 70 (which also covers export)
_is_dynamo_compiling = torch.compiler.is_dynamo_compiling


def _has_ranks(x: Any, y: Any, plan: Plan) -> bool:
    """Whether x and y are tensors of the plan's ranks."""
    return getattr(x, "ndim", None) == plan.spec.x_rank and getattr(y, "ndim", None) == plan.spec.y_rank


class Dot(torch.nn.Module):
    """``keras.layers.Dot(axes, normalize)`` as a module: ``Dot(axes)(x, y)`` or
    ``Dot(axes)([x, y])`` returns :func:`axisdot.dot` of the two inputs. ``normalize``
    is a bool or a mode string (``"keras3"``, ``"tf_keras"``, ``"torch"``), kept as given
    in the config.

    ``axes`` is checked at construction by the parser :func:`axisdot.dot` uses (what no
    input rank can make valid is refused at once), and the module keeps its plan for
    each pair of input ranks it has seen. While it has seen one pair, a call runs that
    plan's :attr:`~axisdot.plan.Plan.fast` straight away (it refuses other ranks by
    itself); once the ranks vary, a call costs one dictionary lookup before the torch call.

    >>> Dot(axes=(2, 1))(torch.ones(2, 3, 5), torch.ones(2, 5, 4)).shape
    torch.Size([2, 3, 4])
    >>> Dot.from_config({"name": "dot", "trainable": True, "axes": [2, 1], "normalize": False})
    Dot(axes=[2, 1], normalize=False)
    """

    def __init__(self, axes: Axes, normalize: Union[bool, str] = False) -> None:
        super().__init__()
        canon = canonical(axes, "Dot(axes)")
        keras_pair(canon, f"Dot(axes={axes!r})")
        self._mode = normalize_mode(normalize, "Dot(normalize)")
        self.axes = axes
        self.normalize = normalize
        self._axes = canon
        self._plans: dict[tuple[int, int], Plan] = {}
        #: the plan of the one pair of input ranks seen so far (None with normalize)
        self._only: Optional[Plan] = None

    def _plan(self, x: torch.Tensor, y: torch.Tensor) -> Plan:
        try:
            plan = _cache.dot_plan(x.ndim, y.ndim, self._axes)
        except AxisdotError as err:
            raise with_context(err, [f"  x: shape {tuple(x.shape)}", f"  y: shape {tuple(y.shape)}"]) from err.__cause__
        self._plans[x.ndim, y.ndim] = plan
        self._only = plan if len(self._plans) == 1 and self._mode is None else None
        return plan

    def forward(self, x: Any, y: Any = None) -> torch.Tensor:
        if _is_dynamo_compiling():  # first: dynamo then guards on nothing the eager path reads
            return self._forward(x, y)
        only = self._only
        if only is not None:  # the common calls, shortest
            if y is None:
                kind = x.__class__
                if (kind is not list and kind is not tuple) or len(x) != 2:
                    return self._forward(x, y)
                x, y = x  # Keras's layer([x, y])
            try:  # Plan.fast refuses inputs of other ranks itself
                return only.fast(x, y)
            except RECOVERABLE as err:
                if isinstance(err, RankMismatch) or not _has_ranks(x, y, only):
                    return self._forward(x, y)
                return only.recover(x, y, err)
        return self._forward(x, y)

    def _forward(self, x: Any, y: Any) -> torch.Tensor:
        if y is None:
            if not isinstance(x, (list, tuple)) or len(x) != 2:
                raise OperandError(
                    "a Dot module is called on two inputs: Dot(...)(x, y) or Dot(...)([x, y])"
                )
            x, y = x
        if _is_compiling():  # one allowed call in the graph, as for axisdot.dot
            return dot(x, y, self._axes, normalize=self.normalize)
        try:
            plan = self._plans[x.ndim, y.ndim]
        except KeyError:
            plan = self._plan(x, y)
        except AttributeError:  # not tensors: the function says what is wrong
            return dot(x, y, self._axes, normalize=self.normalize)
        if self._mode is not None:
            x = l2_normalize(x, plan.spec.contract[0], "x", self._mode)
            y = l2_normalize(y, plan.spec.contract[1], "y", self._mode)
        try:
            return plan.run(x, y)
        except RECOVERABLE as err:
            return plan.recover(x, y, err)

    def extra_repr(self) -> str:
        return f"axes={self.axes!r}, normalize={self.normalize!r}"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_plans"] = {}  # plans hold functions: rebuilt on the first call after loading
        state["_only"] = None
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
