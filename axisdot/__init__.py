"""axisdot: Keras-style axis contractions, first-class in PyTorch.

The pipeline, one module per stage::

    axes argument --axes.py--> Spec (spec.py: the shape rule) --equation.py--> einsum letters
                                 |
                                 +--plan.py--> Plan, cached by ranks and axes (cache.py) --> tensor

Front ends: api.py (dot, batch_dot, tensordot, dot_general, einsum, equation), nn.py
(Dot); einsum.py (n-ary einsum on opt_einsum paths); normalize.py and legacy.py (the
Keras rules that changed over time); explain.py, render.py, cli.py and port.py (what
runs, for people); errors.py; testing/ (strategies, references, assert_matches).
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
from . import port as port  # axisdot.port.port: the Dot layers of a saved Keras model

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
