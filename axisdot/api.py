"""The functional front ends: each looks its plan up and runs it.

The hot path of a two-operand front end is short by design, in three tiers:

1. The fast table (:data:`axisdot.cache.FAST`): the very ``axes`` object of an earlier
   call finds that call's plan, whose :attr:`~axisdot.plan.Plan.fast` runs without
   looking at the ranks (its kernel, or one ``ndim`` test, refuses other ranks). This
   tier is written once, in :mod:`axisdot.fast`, and put in front of each front end by
   its ``@fast_path`` line: the function below it is the front end's checked path.
   Einsum keys its table by the equation and the ranks.
2. An ``axes`` that is already canonical (exact ints and tuples, the usual spelling)
   keys the ranked plan cache as it is, and fills the fast table.
3. Everything else (other spellings of ``axes``, Keras's ``dot([x, y], axes)`` form,
   non-tensors) takes the slow path, :func:`_resolve`, with the same errors.

In every tier the plan's ``run`` makes the torch calls with no per-call checks that
torch makes anyway; when torch refuses the operands, :meth:`Plan.recover` says why in
axisdot's words (or promotes mixed dtypes). The parse -> spec -> plan work happens only
on a cache miss (:mod:`axisdot.cache`).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import torch

from . import axes as _axes
from . import cache as _cache
from .einsum_parse import quote
from .einsum_path import optimize_key
from .errors import AxisdotError, AxisdotTypeError, EquationError, OperandError, ShapeError, with_context
from .fast import fast_path
from .legacy import check_semantics, legacy_batch_dot
from .letters import einsum_equation
from .normalize import l2_normalize, normalize_mode
from .operands import ShapeLike, check_tensor, rank_and_shape
from .plan import RECOVERABLE, Plan
from .slicing import parse_max_memory, run_sliced
from .spec import output_shape

__all__ = ["dot", "batch_dot", "tensordot", "dot_general", "einsum", "equation", "Axes"]

Axes = Union[int, Sequence[int], Sequence[Sequence[int]]]
_Tensor = torch.Tensor
_PLANS = {"dot": _cache.dot_plan, "batch_dot": _cache.batch_dot_plan, "tensordot": _cache.tensordot_plan,
          "dot_general": _cache.dot_general_plan}
_UNSET: Any = object()
_EINSUM_FALLBACK = RECOVERABLE + (ShapeError,)
_fast_einsum_get = _cache.FAST["einsum_ranked"].get
_einsum_hits = _cache.FAST_HITS["einsum_ranked"].counter
_DEFAULT_AXES: dict[str, Any] = {"dot": -1, "batch_dot": None}


def _shapes(x: Any, y: Any) -> list[str]:
    return [f"  x: shape {tuple(x.shape)}", f"  y: shape {tuple(y.shape)}"]


def _pair_form(x: Any, y: Any, axes: Any, func: str) -> tuple[Any, Any, Any, Any]:
    """Keras's functional form ``dot([x, y], axes, normalize)``: a pair of tensors first,
    then the axes (and, for dot, normalize) in the places Keras gives them. Returns
    ``(x, y, axes, normalize_or_UNSET)``."""
    if isinstance(x, (list, tuple)) and len(x) == 2 and (y is None or not isinstance(y, torch.Tensor)):
        if y is None:
            return x[0], x[1], axes, _UNSET
        return x[0], x[1], y, (axes if axes is not _DEFAULT_AXES[func] else _UNSET)
    if y is None:
        raise OperandError(
            f"axisdot.{func}: give two tensors, {func}(x, y, ...), or a pair of them as Keras's "
            f"functional form does, {func}([x, y], ...)"
        )
    return x, y, axes, _UNSET


def _resolve(lookup: Callable[..., Plan], func: str, x: Any, y: Any, *axes: Any) -> Plan:
    """The slow path to a plan: operands checked, ``axes`` canonicalized, errors with
    the shapes of the call."""
    check_tensor(x, "x", f"axisdot.{func}")
    check_tensor(y, "y", f"axisdot.{func}")
    try:
        return lookup(x.ndim, y.ndim, *(_axes.as_key(a) for a in axes))
    except AxisdotError as err:
        raise with_context(err, _shapes(x, y)) from err.__cause__


def _canonical_plan(func: str, x: Any, y: Any, keys: tuple, extra: Any = None) -> Optional[Plan]:
    """The ranked plan for ``keys`` already canonical (:func:`axisdot.axes.is_plain`),
    remembered in the fast table so that the next call with the very same ``keys[0]``
    (and ``extra``) runs it at once; None for operands that are not tensors (Keras's
    pair form, or a bad operand: the checked path says which)."""
    try:
        plan = _PLANS[func](x.ndim, y.ndim, *keys)
    except AttributeError:
        return None
    except AxisdotError as err:
        raise with_context(err, _shapes(x, y)) from err.__cause__
    _cache.remember(_cache.FAST[func], keys[0], plan, extra)
    return plan


def _normalized(plan: Plan, x: torch.Tensor, y: torch.Tensor, normalize: Any) -> torch.Tensor:
    mode = normalize_mode(normalize)
    if mode is not None:
        x = l2_normalize(x, plan.spec.contract[0], "x", mode)
        y = l2_normalize(y, plan.spec.contract[1], "y", mode)
    return plan(x, y)


@fast_path(_cache.FAST["dot"], _cache.FAST_HITS["dot"])
def dot(x: Any, y: Any = None, axes: Axes = -1, normalize: Union[bool, str] = False) -> torch.Tensor:
    """``keras.layers.Dot(axes, normalize)([x, y])`` of Keras 3.

    Axis 0 is the batch axis: batch sizes must agree and it cannot be contracted.
    ``axes`` is an int (the same axis of both; negative counts from the end of each
    input separately), a pair ``(x_axis, y_axis)``, or (an extension Keras refuses) a
    pair of equal-length sequences contracting several axes at once. The result holds
    the batch axis, x's other axes, then y's; a result of rank 1 becomes ``(batch, 1)``.
    ``normalize=True`` L2-normalizes each input along its contracted axes first, so the
    result is the cosine similarity; ``normalize="tf_keras"`` or ``"torch"`` uses that
    framework's formula instead of Keras 3's (see :mod:`axisdot.normalize`). Keras's
    functional form ``dot([x, y], axes, normalize)`` works too.

    >>> dot(torch.ones(32, 64, 10, 128), torch.ones(32, 128, 32, 15), axes=(3, 1)).shape
    torch.Size([32, 64, 10, 32, 15])
    >>> dot(torch.ones(4, 3), torch.ones(4, 3), axes=1).shape
    torch.Size([4, 1])
    >>> dot([torch.ones(4, 3), torch.ones(4, 3)], 1).shape
    torch.Size([4, 1])
    """
    if _axes.is_plain(axes):
        plan = _canonical_plan("dot", x, y, (axes,), False)  # the fast path serves normalize=False
        if plan is not None:
            return _normalized(plan, x, y, normalize)
    x, y, axes, positional = _pair_form(x, y, axes, "dot")
    if positional is not _UNSET:
        if normalize is not False:
            raise AxisdotTypeError("axisdot.dot([x, y], axes, normalize): normalize given twice")
        normalize = positional
    return _normalized(_resolve(_cache.dot_plan, "dot", x, y, axes), x, y, normalize)


@fast_path(_cache.FAST["batch_dot"], _cache.FAST_HITS["batch_dot"])
def batch_dot(x: Any, y: Any = None, axes: Optional[Axes] = None, semantics: str = "keras3") -> torch.Tensor:
    """Keras's ``batch_dot`` (``keras.src.layers.merging.dot.batch_dot``).

    As :func:`dot` without ``normalize``; ``axes=None`` means ``(x.ndim - 1, y.ndim - 1)``
    when y has rank 2, else ``(x.ndim - 1, y.ndim - 2)``. ``semantics="legacy"`` gives
    the function of Keras 2.2.4 and tf.keras 1.x instead, whose output shapes differ
    when the ranks differ (see :mod:`axisdot.legacy`). ``batch_dot([x, y], axes)``
    works too.

    >>> batch_dot(torch.ones(32, 20, 1), torch.ones(32, 30, 20), axes=(1, 2)).shape
    torch.Size([32, 1, 30])
    """
    if semantics == "keras3" and (axes is None or _axes.is_plain(axes)):
        plan = _canonical_plan("batch_dot", x, y, (axes,), semantics)
        if plan is not None:
            return plan(x, y)
    x, y, axes, extra = _pair_form(x, y, axes, "batch_dot")
    if extra is not _UNSET:
        raise AxisdotTypeError("axisdot.batch_dot([x, y], axes): too many positional arguments")
    if check_semantics(semantics) == "legacy":
        check_tensor(x, "x", "axisdot.batch_dot")
        check_tensor(y, "y", "axisdot.batch_dot")
        return legacy_batch_dot(x, y, axes)
    return _resolve(_cache.batch_dot_plan, "batch_dot", x, y, axes)(x, y)


@fast_path(_cache.FAST["tensordot"], _cache.FAST_HITS["tensordot"])
def tensordot(x: torch.Tensor, y: torch.Tensor, axes: Axes = 2) -> torch.Tensor:
    """``numpy.tensordot`` / ``keras.ops.tensordot``: no batch axis.

    ``axes`` is an int N (the last N axes of x with the first N of y) or a pair of axis
    sequences. The result holds x's free axes, then y's.

    >>> tensordot(torch.ones(3, 4, 5), torch.ones(4, 5, 6), axes=2).shape
    torch.Size([3, 6])
    """
    if _axes.is_plain(axes):
        plan = _canonical_plan("tensordot", x, y, (axes,))
        if plan is not None:
            return plan(x, y)
    return _resolve(_cache.tensordot_plan, "tensordot", x, y, axes)(x, y)


@fast_path(_cache.FAST["dot_general"], _cache.FAST_HITS["dot_general"])
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
    if _axes.is_plain(contract) and _axes.is_plain(batch):
        plan = _canonical_plan("dot_general", x, y, (contract, batch), batch)
        if plan is not None:
            return plan(x, y)
    return _resolve(_cache.dot_general_plan, "dot_general", x, y, contract, batch)(x, y)


# -- einsum ---------------------------------------------------------------------------------


def _sublist_form(args: Sequence[Any]) -> tuple[tuple, list[Any]]:
    """``(a, [0, 1], b, [1, 2], [0, 2])`` -> the cache key of the equation, and the operands."""
    operands = list(args[0::2])
    subs = list(args[1::2])
    output = None
    if len(args) % 2:  # a trailing output sublist
        output = operands.pop()
    for i, sub in enumerate(subs + ([] if output is None else [output])):
        if not isinstance(sub, (list, tuple)):
            where = "the output" if i == len(subs) else f"operand {i}"
            raise AxisdotTypeError(
                f"axisdot.einsum: the sublist form takes operand, sublist, operand, sublist, ... "
                f"[output sublist]; the sublist of {where} is a {type(sub).__name__}"
            )
    written = ", ".join(f"op{i}, {list(s)}" for i, s in enumerate(subs))
    if output is not None:
        written += f", {list(output)}"
    key = (written.replace("Ellipsis", "..."), tuple(tuple(s) for s in subs),
           None if output is None else tuple(output))
    return key, operands


def einsum(*args: Any, optimize: Any = "auto", memory_limit: Any = None, max_memory: Any = None) -> torch.Tensor:
    """``torch.einsum``, planned: the same equations, operands and results (values, shape,
    dtype), with the pairwise order chosen by opt_einsum (searched harder, once, for a large
    network whose opt_einsum path is dear: :mod:`axisdot.einsum_search`) and cached.

    ``einsum("ij,jk->ik", a, b)``, ``einsum("ij,jk", [a, b])`` or the sublist form
    ``einsum(a, [0, 1], b, [1, 2], [0, 2])``. Size-1 axes broadcast; ``...`` stands for
    the remaining axes; labels may be any letters (Greek, ...) and sublist labels any
    ints >= 0. ``optimize`` is opt_einsum's (``"auto"``, ``"greedy"``, ``"optimal"``,
    ``"dp"``, ``"branch-2"``, ..., an explicit path, or ``False`` for left to right);
    ``memory_limit`` bounds the largest intermediate the path search may choose.
    ``max_memory`` (bytes, or a string such as ``"512MiB"``) bounds the temporaries the
    call allocates beyond its operands and output, forward and backward: the plan runs
    in slices when it would need more (:mod:`axisdot.slicing`).
    Beyond torch.einsum: operands of different dtypes are promoted (torch refuses them).

    One- and two-operand plans depend on the equation and ranks only; three and more
    on the shapes too (the path), kept in a cache of their own.

    >>> einsum("ij,jk,kl->il", torch.ones(2, 3), torch.ones(3, 4), torch.ones(4, 5)).shape
    torch.Size([2, 5])
    >>> einsum(torch.ones(2, 3), [0, 1], torch.ones(3, 4), [1, 2], [0, 2]).shape
    torch.Size([2, 4])
    """
    if optimize == "auto" and memory_limit is None and max_memory is None and len(args) == 3:  # two operands
        equation, x, y = args
        try:  # keyed by str equations and ranks: a sublist form finds nothing
            fast = _fast_einsum_get((equation, x.ndim, y.ndim))
        except (AttributeError, TypeError):
            fast = None
        if fast is not None:
            try:
                out = fast(x, y)
            except _EINSUM_FALLBACK:  # the ranked call below says or does what else to do
                pass
            else:
                next(_einsum_hits)
                return out
        if equation.__class__ is str and isinstance(x, _Tensor) and isinstance(y, _Tensor):
            try:
                return _cache.einsum_ranked(equation, (x.ndim, y.ndim))(args[1:])
            except AxisdotError as err:
                raise with_context(err, [f"  shapes: {tuple(x.shape)}, {tuple(y.shape)}"]) from err.__cause__
    if not args:
        raise EquationError("axisdot.einsum: give an equation and its operands")
    equation = args[0]
    if equation.__class__ is str:
        operands: Sequence[Any] = args[1:]
        if len(operands) == 1 and operands[0].__class__ in (list, tuple):
            operands = tuple(operands[0])
    elif isinstance(equation, torch.Tensor):
        equation, operands = _sublist_form(args)
    else:
        raise AxisdotTypeError(
            f"axisdot.einsum: the equation must be a str (or the first operand, in the sublist form), "
            f"got {type(equation).__name__}"
        )
    n = len(operands)
    try:
        if 0 < n <= 2 and optimize == "auto" and memory_limit is None and max_memory is None \
                and isinstance(operands[0], _Tensor) and isinstance(operands[-1], _Tensor):
            ranks = (operands[0].ndim, operands[1].ndim) if n == 2 else (operands[0].ndim,)
            return _cache.einsum_ranked(equation, ranks)(operands)
        return _einsum_sized(equation, operands, optimize, memory_limit, max_memory)
    except AxisdotError as err:
        shapes = ", ".join(str(tuple(t.shape)) if isinstance(t, torch.Tensor) else "?" for t in operands)
        raise with_context(err, [f"  shapes: {shapes}"]) from err.__cause__


def _einsum_sized(equation: Any, operands: Sequence[Any], optimize: Any, memory_limit: Any,
                  max_memory: Any = None) -> torch.Tensor:
    quoted = quote(equation if isinstance(equation, str) else equation[0])
    for i, t in enumerate(operands):
        check_tensor(t, f"operand {i}", "axisdot.einsum")
    key = optimize_key(optimize, quoted)
    shapes = tuple(tuple(t.shape) for t in operands)
    # a PathOptimizer object keys the cache by identity: it searches once per equation and shapes
    bound = parse_max_memory(max_memory, quoted)
    plan = _cache.einsum_for_shapes(equation, shapes, key, memory_limit)
    return plan(operands) if bound is None else run_sliced(plan, operands, bound)


# -- shapes without tensors -----------------------------------------------------------------


def equation(x: ShapeLike, y: ShapeLike, axes: Axes = -1) -> str:
    """The einsum equation :func:`dot` runs, for x and y given as tensors, shapes or ranks.

    ``torch.einsum(equation(x, y, axes), x, y)`` equals ``dot(x, y, axes)`` except that
    ``dot`` returns a rank-1 result as ``(batch, 1)``. Shapes are checked as ``dot``
    checks them, with the same errors.

    >>> equation((32, 64, 10, 128), (32, 128, 32, 15), axes=(3, 1))
    'bijk,bklm->bijlm'
    """
    (x_rank, x_shape), (y_rank, y_shape) = rank_and_shape(x, "x", "axisdot.equation"), \
        rank_and_shape(y, "y", "axisdot.equation")
    try:
        spec = _cache.dot_plan(x_rank, y_rank, _axes.as_key(axes)).spec
        if x_shape is not None and y_shape is not None:
            output_shape(spec, x_shape, y_shape)
        return einsum_equation(spec)
    except AxisdotError as err:
        context = [f"  x: {x_shape or f'rank {x_rank}'}", f"  y: {y_shape or f'rank {y_rank}'}"]
        raise with_context(err, context) from err.__cause__


# torch.compile records these calls in its graph as they are (see axisdot.compiler).
from .compiler import register as _register  # noqa: E402

_register(dot, batch_dot, tensordot, dot_general, einsum)
