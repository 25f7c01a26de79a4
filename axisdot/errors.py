"""The exceptions axisdot raises: one base class, each also a builtin.

Callers who already catch ``ValueError`` or ``TypeError`` keep working; callers
who want only axisdot's refusals catch :class:`AxisdotError`.
"""
from __future__ import annotations

from typing import Sequence

__all__ = [
    "AxisdotError",
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


class AxesError(AxisdotError, ValueError):
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
    """An operand is not a usable tensor (not a tensor, bool dtype, other device)."""


class ModelFileError(AxisdotError, ValueError):
    """A saved Keras model file cannot be read (missing, not a .keras zip, not JSON)."""


def with_context(err: AxisdotError, lines: Sequence[str]) -> AxisdotError:
    """Return a copy of ``err`` (same class) with ``lines`` appended to its message."""
    extra = [line for line in lines if line and line not in str(err)]
    if not extra:
        return err
    return type(err)("\n".join([str(err), *extra]))
