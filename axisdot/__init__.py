"""axisdot: Keras-style axis contractions, first-class in PyTorch.

The pipeline, one module per stage::

    two operands:  axes.py --> spec.py (Spec, the shape rule) --> letters.py (equation)
                                   |
                                   +--> plan.py (Plan: torch calls) --> cache.py --> api.py
    einsum:        einsum_parse.py (Subscripts) --> einsum_path.py (opt_einsum path)
                     --> einsum_steps.py (each step on a Plan) --> einsum_plan.py --> api.py
    Keras layers:  dense_spec.py, attention_spec.py (torch-free shape analysis)
                     --> layers/ (Dot, EinsumDense, MultiHeadAttention)

Beside them: operands.py (checks on tensors, dtype promotion), normalize.py and
legacy.py (Keras rules that changed over time), expression.py (compiled einsum
expressions), explanation.py, render.py and cli.py (what runs, for people), port/
(saved Keras models), compiler.py (torch.compile), errors.py, testing/.

``import axisdot`` loads nothing but this file and :mod:`axisdot.errors`; each public
name loads its module (and torch) when first used, so the command line's ``--help``
and its usage errors never import torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ArgumentError,
    AxesError,
    AxesTypeError,
    AxisdotError,
    AxisdotTypeError,
    EquationError,
    ModelFileError,
    OperandError,
    ShapeError,
)

__version__ = "0.1.0"

#: public name -> the module that defines it
_HOMES = {
    "dot": "api",
    "batch_dot": "api",
    "tensordot": "api",
    "dot_general": "api",
    "einsum": "api",
    "equation": "api",
    "einsum_expression": "expression",
    "EinsumExpression": "expression",
    "Dot": "layers",
    "EinsumDense": "layers",
    "MultiHeadAttention": "layers",
    "explain": "explanation",
    "Explanation": "explanation",
    "cache_info": "cache",
    "cache_clear": "cache",
}
#: submodules reachable as attributes (``axisdot.port.load``, ``axisdot.testing``)
_SUBMODULES = {"port", "testing", "layers"}

__all__ = [
    "dot",
    "batch_dot",
    "tensordot",
    "dot_general",
    "einsum",
    "einsum_expression",
    "EinsumExpression",
    "equation",
    "Dot",
    "EinsumDense",
    "MultiHeadAttention",
    "explain",
    "Explanation",
    "cache_info",
    "cache_clear",
    "AxisdotError",
    "AxisdotTypeError",
    "ArgumentError",
    "AxesError",
    "AxesTypeError",
    "ShapeError",
    "EquationError",
    "OperandError",
    "ModelFileError",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'axisdot' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES) | _SUBMODULES)


if TYPE_CHECKING:  # what type checkers and IDEs see
    from . import layers, port, testing  # noqa: F401
    from .api import batch_dot, dot, dot_general, einsum, equation, tensordot  # noqa: F401
    from .cache import cache_clear, cache_info  # noqa: F401
    from .expression import EinsumExpression, einsum_expression  # noqa: F401
    from .explanation import Explanation, explain  # noqa: F401
    from .layers import Dot, EinsumDense, MultiHeadAttention  # noqa: F401
