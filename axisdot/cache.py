"""The plan caches: one bounded, thread-safe ``functools.lru_cache`` per kind of plan.

Each entry is keyed by exactly what its plan depends on:

=====================  ==========================================  ====================
entry                  key                                         value
=====================  ==========================================  ====================
``dot_plan``           x rank, y rank, canonical axes              :class:`~axisdot.plan.Plan`
``batch_dot_plan``     x rank, y rank, canonical axes              :class:`~axisdot.plan.Plan`
``tensordot_plan``     x rank, y rank, canonical axes              :class:`~axisdot.plan.Plan`
``dot_general_plan``   x rank, y rank, contract, batch             :class:`~axisdot.plan.Plan`
``einsum_subscripts``  equation, ranks                             parsed :class:`~axisdot.einsum_parse.Subscripts`
``einsum_ranked``      equation, ranks (one or two operands)       :class:`~axisdot.einsum_plan.RankedEinsum`
``einsum_sized``       equation, shapes, optimize, memory_limit    :class:`~axisdot.einsum_plan.SizedEinsum` (a path)
``einsum_traced``      equation, static size-1 axes, optimize,     the same, for symbolic shapes (the path
                       memory_limit, size hints                    chosen for the static sizes and hints)
                       memory_limit
``einsum_step``        one step's equation                         the step's function
=====================  ==========================================  ====================

Sizes key only ``einsum_sized``, whose contraction order depends on them; its entries
live apart, so they never evict a rank-keyed plan. Axes keys are canonical (exact ints
and tuples, see :func:`axisdot.axes.is_plain`): ``True`` never finds the plan of ``1``.
Errors are not cached. :func:`cache_info` sums the plan caches (one lookup per call);
:func:`cache_details` gives each cache, the parts' caches too.

In front of the four Keras-style caches and ``einsum_ranked`` sits a **fast table**
(:data:`FAST`), a plain dict a front end reads before anything else:

* for ``dot``, ``batch_dot`` and ``tensordot`` it is keyed by the ``axes`` object alone,
  for ``dot_general`` by ``contract``, each entry an :class:`~axisdot.fast.FastEntry`
  written after a ranked lookup found the plan for canonical axes (:func:`remember`),
  and read by the front end's fast path (:mod:`axisdot.fast`).
* for einsum it is keyed by ``(equation, x rank, y rank)`` with the two-operand
  :meth:`RankedEinsum.__call__`'s fast branch as a function.

A table hit counts as a hit of its plan cache (:data:`FAST_HITS`), so the statistics
read as if every call had looked its plan up; :func:`cache_clear` empties the tables.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Hashable, NamedTuple, Optional, Union

from . import einsum_parse
from .axes import Canon, general_spec, keras_spec, tensordot_spec
from .einsum_plan import FLOATING, RankedEinsum, SizedEinsum
from .einsum_steps import StepFn, build_step
from .fast import FastEntry, Hits, remembered
from .plan import Plan
from .render import CallText

__all__ = [
    "MAXSIZE",
    "CacheInfo",
    "EquationKey",
    "dot_plan",
    "batch_dot_plan",
    "tensordot_plan",
    "dot_general_plan",
    "einsum_subscripts",
    "einsum_ranked",
    "einsum_sized",
    "einsum_traced",
    "size_pattern",
    "einsum_for_shapes",
    "einsum_step",
    "cache_info",
    "cache_details",
    "cache_clear",
    "lookup",
    "FAST",
    "FAST_HITS",
    "remember",
]

#: Entries per cache.
MAXSIZE = 1024

#: An einsum equation as a cache key: the string, or for the sublist form
#: ``(written, sublists, output)`` with every sublist a tuple.
EquationKey = Union[str, tuple]


class CacheInfo(NamedTuple):
    """As ``functools.lru_cache`` reports it."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


#: ``_local.built``: every builder sets it, a miss in this thread (see :func:`lookup`);
#: written inline, as a helper's call would cost every cold call 40 ns per cache
_local = threading.local()


def lookup(entry: Any, *key: Any) -> tuple[Any, bool]:
    """``(entry(*key), was_cached)``: whether this thread's lookup found the plan built
    (exact under threads, unlike comparing the shared hit counters)."""
    _local.built = False
    value = entry(*key)
    return value, not _local.built


#: The fast tables in front of the plan caches (see the module docstring), by cache name.
FAST: dict[str, dict[Any, Any]] = {name: {} for name in ("dot", "batch_dot", "tensordot", "dot_general",
                                                          "einsum_ranked")}
_FAST_EINSUM = FAST["einsum_ranked"]
#: Hits served by each fast table (a ``Dot`` module's calls count as ``dot``'s).
FAST_HITS: dict[str, Hits] = {name: Hits() for name in FAST}


@functools.lru_cache(maxsize=MAXSIZE)
def dot_plan(x_rank: int, y_rank: int, axes: Canon) -> Plan:
    _local.built = True
    return Plan(keras_spec(axes, x_rank, y_rank, "dot"), CallText(lambda: f"axisdot.dot(x, y, axes={axes!r})"))


@functools.lru_cache(maxsize=MAXSIZE)
def batch_dot_plan(x_rank: int, y_rank: int, axes: Canon) -> Plan:
    _local.built = True
    return Plan(keras_spec(axes, x_rank, y_rank, "batch_dot"),
                CallText(lambda: f"axisdot.batch_dot(x, y, axes={axes!r})"))


@functools.lru_cache(maxsize=MAXSIZE)
def tensordot_plan(x_rank: int, y_rank: int, axes: Canon) -> Plan:
    _local.built = True
    return Plan(tensordot_spec(axes, x_rank, y_rank), CallText(lambda: f"axisdot.tensordot(x, y, axes={axes!r})"))


@functools.lru_cache(maxsize=MAXSIZE)
def dot_general_plan(x_rank: int, y_rank: int, contract: Canon, batch: Canon) -> Plan:
    _local.built = True
    spec = general_spec(contract, batch, x_rank, y_rank)
    return Plan(spec, CallText(lambda: f"axisdot.dot_general(x, y, contract={contract!r}, batch={batch!r})"))


@functools.lru_cache(maxsize=MAXSIZE)
def einsum_subscripts(equation: EquationKey, ranks: tuple[int, ...]) -> einsum_parse.Subscripts:
    _local.built = True
    if isinstance(equation, str):
        return einsum_parse.parse(equation, ranks)
    written, sublists, output = equation
    return einsum_parse.parse_sublists(sublists, output, ranks, written)


@functools.lru_cache(maxsize=MAXSIZE)
def einsum_step(equation: str) -> tuple[StepFn, str]:
    _local.built = True
    return build_step(equation)


@functools.lru_cache(maxsize=MAXSIZE)
def einsum_sized(equation: EquationKey, shapes: tuple[tuple[int, ...], ...], optimize: Hashable,
                 memory_limit: Any) -> SizedEinsum:
    _local.built = True
    sub = einsum_subscripts(equation, tuple(len(s) for s in shapes))
    return SizedEinsum(sub, shapes, optimize, memory_limit, einsum_step)


@functools.lru_cache(maxsize=MAXSIZE)
def einsum_traced(equation: EquationKey, pattern: tuple[tuple[Optional[int], ...], ...], optimize: Hashable,
                  memory_limit: Any, hints: Optional[tuple[tuple[Optional[int], ...], ...]] = None,
                  symbols: Optional[tuple[tuple[Optional[int], ...], ...]] = None) -> SizedEinsum:
    """``pattern``: the shapes with every size that is not a static 1 as None; ``hints``:
    the sizes the path is chosen for (static sizes, symbolic sizes' hints, None where
    neither is known); ``symbols``: which symbolic sizes are one symbol (:func:`size_symbols`)."""
    _local.built = True
    sub = einsum_subscripts(equation, tuple(len(s) for s in pattern))
    return SizedEinsum(sub, pattern, optimize, memory_limit, einsum_step, hints, symbols)


def size_pattern(shapes: Any) -> tuple[tuple[Optional[int], ...], ...]:
    """Symbolic shapes as an :func:`einsum_traced` key: static 1s kept, all else None."""
    return tuple(tuple(1 if n.__class__ is int and n == 1 else None for n in s) for s in shapes)


def _hint(n: Any) -> Optional[int]:
    """A static size, or the hint of a symbolic one (the size it was first traced with);
    None for a size with no hint (an unbacked one)."""
    if n.__class__ is int:
        return n
    hint = getattr(getattr(n, "node", None), "hint", None)
    return hint if isinstance(hint, int) else None


def size_hints(shapes: Any) -> tuple[tuple[Optional[int], ...], ...]:
    """The sizes a traced plan's path is chosen for (see :func:`_hint`)."""
    return tuple(tuple(_hint(n) for n in s) for s in shapes)


def _expression(n: Any) -> str:
    return str(getattr(getattr(n, "node", None), "expr", n))


def size_symbols(shapes: Any) -> tuple[tuple[Optional[int], ...], ...]:
    """Each symbolic size numbered by its expression (equal numbers: one symbol, such as
    the sizes torch.compile's duck sizing shares), None for a static size."""
    numbers: dict[str, int] = {}
    return tuple(tuple(None if n.__class__ is int else numbers.setdefault(_expression(n), len(numbers))
                       for n in s) for s in shapes)


def einsum_for_shapes(equation: EquationKey, shapes: tuple[tuple[Any, ...], ...], optimize: Hashable,
                      memory_limit: Any) -> SizedEinsum:
    """The plan for operands of these shapes: :func:`einsum_sized` when every size is an
    int, else (symbolic sizes under torch.compile or export) :func:`einsum_traced`, so
    that no cache is ever keyed by a symbol."""
    if all(n.__class__ is int for s in shapes for n in s):
        return einsum_sized(equation, shapes, optimize, memory_limit)
    return einsum_traced(equation, size_pattern(shapes), optimize, memory_limit, size_hints(shapes),
                         size_symbols(shapes))


@functools.lru_cache(maxsize=MAXSIZE)
def einsum_ranked(equation: EquationKey, ranks: tuple[int, ...]) -> RankedEinsum:
    _local.built = True
    sub = einsum_subscripts(equation, ranks)

    def sized(operands: Any) -> SizedEinsum:
        return einsum_for_shapes(equation, tuple(tuple(t.shape) for t in operands), "auto", None)

    ranked = RankedEinsum(sub, einsum_step, sized)
    direct = ranked.direct
    if direct is not None and equation.__class__ is str:
        if len(_FAST_EINSUM) >= MAXSIZE:
            _FAST_EINSUM.clear()
        # a matrix product refuses mixed dtypes, and a contracted axis of size 1 against a
        # larger one, by itself: its branch is the plan's run (see _elementwise_fast)
        _FAST_EINSUM[(equation, *ranks)] = _elementwise_fast(ranked) if ranked.fn.elementwise else direct
    return ranked


class NotFast(RuntimeError):
    """Raised by a fast-table function for operands it does not take as they are."""


def _elementwise_fast(ranked: RankedEinsum) -> Callable[[Any, Any], Any]:
    """The branch of :meth:`RankedEinsum.__call__` that runs its plan as it is (one
    step, the same dtype, floating where the dtype rule depends on sizes), as a
    function of two operands, for a ranked einsum whose ``direct`` plan multiplies
    elementwise. It raises (:class:`NotFast`, or the plan's own refusal) where the
    ranked call would do more. (A matrix product needs none of these checks: its
    branch is ``direct`` itself.)"""
    direct = ranked.direct
    if ranked.int_sensitive:
        def fast(x: Any, y: Any) -> Any:
            dtype = x.dtype
            if dtype is y.dtype and dtype in FLOATING:
                return direct(x, y)
            raise NotFast
    else:
        def fast(x: Any, y: Any) -> Any:
            if x.dtype is y.dtype:
                return direct(x, y)
            raise NotFast
    return fast


#: The caches a call looks its plan up in (one lookup a call) ...
_PLANS = {
    "dot": dot_plan,
    "batch_dot": batch_dot_plan,
    "tensordot": tensordot_plan,
    "dot_general": dot_general_plan,
    "einsum_ranked": einsum_ranked,
    "einsum_sized": einsum_sized,
    "einsum_traced": einsum_traced,
}
#: ... and the parts those plans are built from, shared between them.
_PARTS = {"einsum_subscripts": einsum_subscripts, "einsum_step": einsum_step}


def remember(table: dict[Any, FastEntry], key: Any, plan: Plan, extra: Any = None) -> None:
    """After a ranked lookup found ``plan`` for the canonical ``key`` (checked by the
    caller): let the next call with this very object run it straight away (see
    :func:`axisdot.fast.remembered`)."""
    entry = table.get(key)
    if entry is None and len(table) >= MAXSIZE:
        table.clear()
    table[key] = remembered(entry, key, plan, extra)


def _info(name: str, fn: Any) -> CacheInfo:
    info = CacheInfo(*fn.cache_info())
    return info._replace(hits=info.hits + FAST_HITS[name].value) if name in FAST else info


def cache_details() -> dict[str, CacheInfo]:
    """Each cache's statistics, by name: the plan caches, then the caches of the parts
    einsum plans are built from (parsed equations, step functions)."""
    return {name: _info(name, fn) for name, fn in {**_PLANS, **_PARTS}.items()}


def cache_info() -> CacheInfo:
    """Statistics of the plan caches together, as ``functools.lru_cache`` gives them:
    ``hits``, ``misses``, ``maxsize`` and ``currsize``, each summed over the caches a
    call looks its plan up in (one lookup per call; :func:`cache_details` also lists
    the caches of parsed equations and step functions)."""
    infos = [_info(name, fn) for name, fn in _PLANS.items()]
    return CacheInfo(*(sum(getattr(i, f) for i in infos) for f in CacheInfo._fields))


def cache_clear() -> None:
    """Empty every plan cache and fast table, and reset their statistics."""
    for fn in {**_PLANS, **_PARTS}.values():
        fn.cache_clear()  # type: ignore[attr-defined]
    for name, table in FAST.items():
        table.clear()
        FAST_HITS[name].reset()
