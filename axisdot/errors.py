"""The exceptions axisdot raises: one base class, each also a builtin.

Callers who already catch ``ValueError`` or ``TypeError`` keep working; callers who want
only axisdot's refusals catch :class:`AxisdotError`. The rule: an argument of a type
axisdot cannot use is a ``TypeError`` (:class:`AxisdotTypeError` and its subclasses); a
value of the right type that is not allowed is a ``ValueError`` (every other class).
Torch-free.
"""
from __future__ import annotations

from typing import Sequence

__all__ = [
    "AxisdotError",
    "ArgumentError",
    "AxesError",
    "AxisdotTypeError",
    "AxesTypeError",
    "ShapeError",
    "EquationError",
    "OperandError",
    "ModelFileError",
    "with_context",
]


class AxisdotError(Exception):
    """Base class of every error axisdot raises on bad input."""


class ArgumentError(AxisdotError, ValueError):
    """An argument has the right type but a value that is not allowed (``normalize``,
    ``semantics``, ``mode``, ``optimize``, a layer's configuration, ...)."""


class AxesError(ArgumentError):
    """An ``axes`` argument has the right types but names axes that cannot be used."""


class AxisdotTypeError(AxisdotError, TypeError):
    """An argument has a type axisdot cannot use."""


class AxesTypeError(AxisdotTypeError):
    """An ``axes`` argument (or one of its items) has a type that cannot name an axis."""


class ShapeError(AxisdotError, ValueError):
    """The operands' shapes do not fit the contraction (sizes, ranks, batch)."""


class EquationError(AxisdotError, ValueError):
    """An einsum equation is malformed or does not fit its operands."""


class OperandError(AxisdotTypeError):
    """An operand is not a usable tensor (not a tensor, a dtype PyTorch cannot multiply
    there, operands on different devices)."""


class ModelFileError(AxisdotError, ValueError):
    """A saved Keras model file cannot be read or does not fit the layers it configures."""


def with_context(err: AxisdotError, lines: Sequence[str]) -> AxisdotError:
    """``err`` itself, with ``lines`` appended to its message.

    The exception object is kept (its class, ``__cause__`` and attributes) and its
    traceback dropped, so that a public entry point re-raising it gives a short
    traceback without losing the chain: ``raise with_context(err, [...]) from err.__cause__``.
    """
    extra = [line for line in lines if line and line not in str(err)]
    if extra:
        err.args = ("\n".join([str(err), *extra]),) + tuple(err.args[1:])
    return err.with_traceback(None)
