"""The functional front ends. Each builds a cache key, fetches the compiled plan and runs it.

The parse → spec → plan work happens only on a cache miss (:mod:`axisdot.cache`); a hit
costs the operand checks, a dictionary lookup and the plan's own torch calls.
"""
from __future__ import annotations

from typing import Any, Sequence, Union

import torch

from . import axes as _axes
from .cache import compiled
from .einsum import parse_equation, run_traced
from .equation import einsum_equation
from .errors import AxisdotError, AxisdotTypeError, OperandError, with_context
from .legacy import check_semantics, legacy_batch_dot
from .normalize import l2_normalize, normalize_mode
from .plan import Plan, check_operands
from .spec import output_shape

__all__ = ["dot", "batch_dot", "tensordot", "dot_general", "einsum", "equation"]

Axes = Union[int, Sequence[int], Sequence[Sequence[int]]]
ShapeLike = Union[torch.Tensor, Sequence[int], int]
_NO_BATCH: Any = object()


def _key(axes: Any) -> Any:
    """``axes`` in canonical form; the common spellings return at once."""
    kind = type(axes)
    if kind is int:
        return axes
    if kind is tuple and len(axes) == 2 and type(axes[0]) is int and type(axes[1]) is int:
        return axes
    return _axes.canonical(axes)


def _plan(func: str, x: Any, y: Any, axes: Any, batch: Any = _NO_BATCH) -> Plan:
    """The cached plan for this call; operands are checked here, once, at the boundary."""
    if type(x) is not torch.Tensor or type(y) is not torch.Tensor or x.device != y.device:
        check_operands(x, y, f"axisdot.{func}")
    if batch is _NO_BATCH:
        key: tuple = (func, x.ndim, y.ndim, _key(axes))
    else:
        key = (func, x.ndim, y.ndim, _key(axes), _key(batch))
    try:
        return compiled(key)  # type: ignore[return-value]  # a two-operand key gives a Plan
    except AxisdotError as err:
        raise with_context(err, [f"  x: shape {tuple(x.shape)}", f"  y: shape {tuple(y.shape)}"]) from None


def dot(x: torch.Tensor, y: torch.Tensor, axes: Axes = -1, *, normalize: Union[bool, str] = False) -> torch.Tensor:
    """``keras.layers.Dot(axes, normalize)([x, y])`` of Keras 3.

    Axis 0 is the batch axis: batch sizes must agree and it cannot be contracted.
    ``axes`` is an int (the same axis of both; negative counts from the end of each
    input separately), a pair ``(x_axis, y_axis)``, or (an extension Keras refuses) a
    pair of equal-length sequences contracting several axes at once. The result holds
    the batch axis, x's other axes, then y's; a result of rank 1 becomes ``(batch, 1)``.
    ``normalize=True`` L2-normalizes each input along its contracted axes first, so the
    result is the cosine similarity; ``normalize="tf_keras"`` or ``"torch"`` uses that
    framework's formula instead of Keras 3's (see :mod:`axisdot.normalize`).

    >>> dot(torch.ones(32, 64, 10, 128), torch.ones(32, 128, 32, 15), axes=(3, 1)).shape
    torch.Size([32, 64, 10, 32, 15])
    >>> dot(torch.ones(4, 3), torch.ones(4, 3), axes=1).shape
    torch.Size([4, 1])
    """
    plan = _plan("dot", x, y, axes)
    if normalize is not False:
        mode = normalize_mode(normalize)
        if mode is not None:
            x = l2_normalize(x, plan.spec.contract[0], "x", mode)
            y = l2_normalize(y, plan.spec.contract[1], "y", mode)
    return plan(x, y)


def batch_dot(x: torch.Tensor, y: torch.Tensor, axes: Axes | None = None, *, semantics: str = "keras3") -> torch.Tensor:
    """Keras's ``batch_dot`` (``keras.src.layers.merging.dot.batch_dot``).

    As :func:`dot` without ``normalize``; ``axes=None`` means ``(x.ndim - 1, y.ndim - 1)``
    when y has rank 2, else ``(x.ndim - 1, y.ndim - 2)``. ``semantics="legacy"`` gives
    the function of Keras 2.2.4 and tf.keras 1.x instead, whose output shapes differ
    when the ranks differ (see :mod:`axisdot.legacy`).

    >>> batch_dot(torch.ones(32, 20, 1), torch.ones(32, 30, 20), axes=(1, 2)).shape
    torch.Size([32, 1, 30])
    """
    if semantics != "keras3":
        if check_semantics(semantics) == "legacy":
            check_operands(x, y, "axisdot.batch_dot")
            return legacy_batch_dot(x, y, axes)
    return _plan("batch_dot", x, y, axes)(x, y)


def tensordot(x: torch.Tensor, y: torch.Tensor, axes: Axes = 2) -> torch.Tensor:
    """``numpy.tensordot`` / ``keras.ops.tensordot``: no batch axis.

    ``axes`` is an int N (the last N axes of x with the first N of y) or a pair of axis
    sequences. The result holds x's free axes, then y's.

    >>> tensordot(torch.ones(3, 4, 5), torch.ones(4, 5, 6), axes=2).shape
    torch.Size([3, 6])
    """
    return _plan("tensordot", x, y, axes)(x, y)


def dot_general(
    x: torch.Tensor,
    y: torch.Tensor,
    contract: Sequence[Sequence[int]],
    batch: Sequence[Sequence[int]] = ((), ()),
) -> torch.Tensor:
    """The general two-operand contraction every front end lowers to (as
    ``jax.lax.dot_general``): ``contract=((x axes), (y axes))``, ``batch=((x axes), (y axes))``.
    The result holds the batch axes in the order given, then x's free axes, then y's.

    >>> dot_general(torch.ones(2, 3, 4), torch.ones(2, 4, 5), contract=((2,), (1,)), batch=((0,), (0,))).shape
    torch.Size([2, 3, 5])
    """
    return _plan("dot_general", x, y, contract, batch)(x, y)


def einsum(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    """``torch.einsum`` whose pairwise order opt_einsum chooses once per (equation, shapes).

    Operands may also be given as one list. ``...`` stands for the remaining axes of each
    operand, broadcast as in torch.einsum. Named letters must have equal sizes in every
    operand (torch.einsum would broadcast a size-1 axis; axisdot refuses it).

    >>> einsum("ij,jk,kl->il", torch.ones(2, 3), torch.ones(3, 4), torch.ones(4, 5)).shape
    torch.Size([2, 5])
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for i, t in enumerate(operands):
        if not isinstance(t, torch.Tensor):
            raise OperandError(f"axisdot.einsum: operand {i} must be a torch.Tensor, got {type(t).__name__}")
    if not isinstance(equation, str):
        raise AxisdotTypeError(f"axisdot.einsum: the equation must be a str, got {type(equation).__name__}")
    if len({t.device for t in operands}) > 1:
        raise OperandError(f"axisdot.einsum: operands are on different devices: {[str(t.device) for t in operands]}")
    shapes = tuple(tuple(t.shape) for t in operands)
    if torch.compiler.is_compiling() or not all(type(n) is int for shape in shapes for n in shape):
        # symbolic sizes (torch.compile, export, make_fx): no cache may be keyed by them
        return run_traced(parse_equation(equation, shapes), operands)
    try:
        plan = compiled(("einsum", equation, shapes))
    except AxisdotError as err:
        raise with_context(err, [f"  shapes: {', '.join(map(str, shapes))}"]) from None
    return plan(*operands)


def rank_and_shape(value: ShapeLike, name: str) -> tuple[int, tuple[int | None, ...] | None]:
    """An operand given as a tensor, a shape (``None`` for an unknown size) or a rank."""
    if isinstance(value, torch.Tensor):
        return value.ndim, tuple(value.shape)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise OperandError(f"axisdot.equation: the rank of {name} must be >= 0, got {value}")
        return value, None
    if isinstance(value, (tuple, list, torch.Size)):
        shape = tuple(None if n is None else _axes.as_int(n, f"shape of {name}") for n in value)
        if any(n is not None and n < 0 for n in shape):
            raise OperandError(f"axisdot.equation: sizes must be >= 0, got {name} shape {shape}")
        return len(shape), shape
    raise OperandError(
        f"axisdot.equation: {name} must be a tensor, a shape or a rank, got {type(value).__name__}"
    )


def equation(x: ShapeLike, y: ShapeLike, axes: Axes = -1) -> str:
    """The einsum equation :func:`dot` runs, for x and y given as tensors, shapes or ranks.

    ``torch.einsum(equation(x, y, axes), x, y)`` equals ``dot(x, y, axes)`` except that
    ``dot`` returns a rank-1 result as ``(batch, 1)``. Shapes are checked as ``dot``
    checks them, with the same errors.

    >>> equation((32, 64, 10, 128), (32, 128, 32, 15), axes=(3, 1))
    'bijk,bklm->bijlm'
    """
    (x_rank, x_shape), (y_rank, y_shape) = rank_and_shape(x, "x"), rank_and_shape(y, "y")
    try:
        spec = compiled(("dot", x_rank, y_rank, _key(axes))).spec  # type: ignore[union-attr]
        if x_shape is not None and y_shape is not None:
            output_shape(spec, x_shape, y_shape)
        return einsum_equation(spec)
    except AxisdotError as err:
        context = [f"  x: {x_shape or f'rank {x_rank}'}", f"  y: {y_shape or f'rank {y_rank}'}"]
        raise with_context(err, context) from None


# torch.compile records these calls in its graph as they are and lets AOTAutograd trace
# them down to aten ops, so dynamo never walks axisdot's Python: no guards on it, and the
# compiled call costs what torch.einsum's does. Their non-tensor arguments are constants.
for _front_end in (dot, batch_dot, tensordot, dot_general):
    torch.compiler.allow_in_graph(_front_end)

