"""axisdot: Keras-style axis contractions, first-class in PyTorch.

The pipeline, one module per stage::

    axes argument --axes.py--> Spec (spec.py) --equation.py--> einsum equation
                                  \\--plan.py--> Plan, cached by ranks and axes (cache.py) --> tensor
"""
from .api import batch_dot, dot, dot_general, einsum, equation, tensordot
from .cache import cache_clear, cache_info
from .errors import (
    AxesError,
    AxesTypeError,
    AxisdotError,
    AxisdotTypeError,
    EquationError,
    ModelFileError,
    OperandError,
    ShapeError,
)
from .explain import Explanation, explain
from .nn import Dot

__version__ = "0.1.0"

__all__ = [
    "dot",
    "batch_dot",
    "tensordot",
    "dot_general",
    "einsum",
    "equation",
    "Dot",
    "explain",
    "Explanation",
    "cache_info",
    "cache_clear",
    "AxisdotError",
    "AxisdotTypeError",
    "AxesError",
    "AxesTypeError",
    "ShapeError",
    "EquationError",
    "OperandError",
    "ModelFileError",
]
