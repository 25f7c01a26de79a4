"""One bounded, thread-safe LRU cache of compiled plans.

Keys hold what the plan depends on and nothing else: the front end, the operands'
ranks and the canonical axes for the two-operand front ends (never sizes, so a new
batch size or side length does not compile again); the equation and shapes for n-ary
einsum, whose contraction order depends on sizes.
"""
from __future__ import annotations

import functools
from typing import Any, Union

from .axes import general_spec, keras_spec, tensordot_spec
from .einsum import EinsumPlan, build_einsum_plan
from .plan import Plan, build_plan

__all__ = ["compiled", "cache_info", "cache_clear", "MAXSIZE"]

MAXSIZE = 1024


def _spec(request: tuple[Any, ...]):
    func, x_rank, y_rank, *args = request
    if func in ("dot", "batch_dot"):
        return keras_spec(args[0], x_rank, y_rank, func), f"axes={args[0]!r}"
    if func == "tensordot":
        return tensordot_spec(args[0], x_rank, y_rank), f"axes={args[0]!r}"
    spec = general_spec(args[0], args[1], x_rank, y_rank)
    return spec, f"contract={args[0]!r}, batch={args[1]!r}"


@functools.lru_cache(maxsize=MAXSIZE)
def compiled(request: tuple[Any, ...]) -> Union[Plan, EinsumPlan]:
    """The plan for ``request``: ``(func, x_rank, y_rank, *canonical_args)`` for the
    two-operand front ends, ``("einsum", equation, shapes)`` for einsum."""
    if request[0] == "einsum":
        return build_einsum_plan(request[1], request[2])
    spec, args = _spec(request)
    return build_plan(spec, f"axisdot.{request[0]}(x, y, {args})")


def cache_info() -> Any:
    """Statistics of the plan cache, as ``functools.lru_cache`` gives them:
    ``hits``, ``misses``, ``maxsize`` and ``currsize``."""
    return compiled.cache_info()


def cache_clear() -> None:
    """Empty the plan cache and reset its statistics."""
    compiled.cache_clear()
