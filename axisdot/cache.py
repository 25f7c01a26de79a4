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
``einsum_traced``      equation, static size-1 axes, optimize,     the same, for symbolic shapes
                       memory_limit
``einsum_step``        one step's equation                         the step's function
=====================  ==========================================  ====================

Sizes key only ``einsum_sized``, whose contraction order depends on them; its entries
live apart, so they never evict a rank-keyed plan. Axes keys are canonical (exact ints
and tuples, see :func:`axisdot.axes.is_plain`): ``True`` never finds the plan of ``1``.
Errors are not cached. :func:`cache_info` sums the plan caches (one lookup per call);
:func:`cache_details` gives each cache, the parts' caches too.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Hashable, NamedTuple, Optional, Union

from . import einsum_parse
from .axes import Canon, general_spec, keras_spec, tensordot_spec
from .einsum_plan import RankedEinsum, SizedEinsum
from .einsum_steps import StepFn, build_step
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


_local = threading.local()


def _built() -> None:
    """Every builder calls this: a miss in this thread (see :func:`lookup`)."""
    _local.built = True


def lookup(entry: Any, *key: Any) -> tuple[Any, bool]:
    """``(entry(*key), was_cached)``: whether this thread's lookup found the plan built
    (exact under threads, unlike comparing the shared hit counters)."""
    _local.built = False
    value = entry(*key)
    return value, not _local.built


@functools.lru_cache(maxsize=MAXSIZE)
def dot_plan(x_rank: int, y_rank: int, axes: Canon) -> Plan:
    _built()
    return Plan(keras_spec(axes, x_rank, y_rank, "dot"), CallText(lambda: f"axisdot.dot(x, y, axes={axes!r})"))


@functools.lru_cache(maxsize=MAXSIZE)
def batch_dot_plan(x_rank: int, y_rank: int, axes: Canon) -> Plan:
    _built()
    return Plan(keras_spec(axes, x_rank, y_rank, "batch_dot"),
                CallText(lambda: f"axisdot.batch_dot(x, y, axes={axes!r})"))


@functools.lru_cache(maxsize=MAXSIZE)
def tensordot_plan(x_rank: int, y_rank: int, axes: Canon) -> Plan:
    _built()
    return Plan(tensordot_spec(axes, x_rank, y_rank), CallText(lambda: f"axisdot.tensordot(x, y, axes={axes!r})"))


@functools.lru_cache(maxsize=MAXSIZE)
def dot_general_plan(x_rank: int, y_rank: int, contract: Canon, batch: Canon) -> Plan:
    _built()
    spec = general_spec(contract, batch, x_rank, y_rank)
    return Plan(spec, CallText(lambda: f"axisdot.dot_general(x, y, contract={contract!r}, batch={batch!r})"))


@functools.lru_cache(maxsize=MAXSIZE)
def einsum_subscripts(equation: EquationKey, ranks: tuple[int, ...]) -> einsum_parse.Subscripts:
    _built()
    if isinstance(equation, str):
        return einsum_parse.parse(equation, ranks)
    written, sublists, output = equation
    return einsum_parse.parse_sublists(sublists, output, ranks, written)


@functools.lru_cache(maxsize=MAXSIZE)
def einsum_step(equation: str) -> tuple[StepFn, str]:
    _built()
    return build_step(equation)


@functools.lru_cache(maxsize=MAXSIZE)
def einsum_sized(equation: EquationKey, shapes: tuple[tuple[int, ...], ...], optimize: Hashable,
                 memory_limit: Any) -> SizedEinsum:
    _built()
    sub = einsum_subscripts(equation, tuple(len(s) for s in shapes))
    return SizedEinsum(sub, shapes, optimize, memory_limit, einsum_step)


@functools.lru_cache(maxsize=MAXSIZE)
def einsum_traced(equation: EquationKey, pattern: tuple[tuple[Optional[int], ...], ...], optimize: Hashable,
                  memory_limit: Any) -> SizedEinsum:
    """``pattern``: the shapes with every size that is not a static 1 as None."""
    _built()
    sub = einsum_subscripts(equation, tuple(len(s) for s in pattern))
    return SizedEinsum(sub, pattern, optimize, memory_limit, einsum_step)


def size_pattern(shapes: Any) -> tuple[tuple[Optional[int], ...], ...]:
    """Symbolic shapes as an :func:`einsum_traced` key: static 1s kept, all else None."""
    return tuple(tuple(1 if n.__class__ is int and n == 1 else None for n in s) for s in shapes)


def einsum_for_shapes(equation: EquationKey, shapes: tuple[tuple[Any, ...], ...], optimize: Hashable,
                      memory_limit: Any) -> SizedEinsum:
    """The plan for operands of these shapes: :func:`einsum_sized` when every size is an
    int, else (symbolic sizes under torch.compile or export) :func:`einsum_traced`, so
    that no cache is ever keyed by a symbol."""
    if all(n.__class__ is int for s in shapes for n in s):
        return einsum_sized(equation, shapes, optimize, memory_limit)
    return einsum_traced(equation, size_pattern(shapes), optimize, memory_limit)


@functools.lru_cache(maxsize=MAXSIZE)
def einsum_ranked(equation: EquationKey, ranks: tuple[int, ...]) -> RankedEinsum:
    _built()
    sub = einsum_subscripts(equation, ranks)

    def sized(operands: Any) -> SizedEinsum:
        return einsum_for_shapes(equation, tuple(tuple(t.shape) for t in operands), "auto", None)

    return RankedEinsum(sub, einsum_step, sized)


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


def cache_details() -> dict[str, CacheInfo]:
    """Each cache's statistics, by name: the plan caches, then the caches of the parts
    einsum plans are built from (parsed equations, step functions)."""
    return {name: CacheInfo(*fn.cache_info()) for name, fn in {**_PLANS, **_PARTS}.items()}  # type: ignore[attr-defined]


def cache_info() -> CacheInfo:
    """Statistics of the plan caches together, as ``functools.lru_cache`` gives them:
    ``hits``, ``misses``, ``maxsize`` and ``currsize``, each summed over the caches a
    call looks its plan up in (one lookup per call; :func:`cache_details` also lists
    the caches of parsed equations and step functions)."""
    infos = [CacheInfo(*fn.cache_info()) for fn in _PLANS.values()]  # type: ignore[attr-defined]
    return CacheInfo(*(sum(getattr(i, f) for i in infos) for f in CacheInfo._fields))


def cache_clear() -> None:
    """Empty every plan cache and reset its statistics."""
    for fn in {**_PLANS, **_PARTS}.values():
        fn.cache_clear()  # type: ignore[attr-defined]
