"""Compiled einsum expressions: ``axisdot.einsum_expression(equation, *shapes)``, as
``opt_einsum.contract_expression``.

Everything that depends only on the equation and the shapes (parsing, size checks, the
path, each step's function, the result's shape) is done once, when the expression is
built. A call checks only what it cannot know in advance: that each operand has the
shape the expression was built for.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from . import cache as _cache
from .einsum_parse import quote
from .einsum_path import optimize_key
from .errors import AxisdotTypeError, ShapeError
from .operands import check_tensor, rank_and_shape
from .render import mark_axes, shape_text
from .slicing import parse_max_memory, run_sliced

__all__ = ["EinsumExpression", "einsum_expression"]


class EinsumExpression:
    """A compiled einsum for fixed shapes: call it with the operands."""

    def __init__(self, equation: str, shapes: Sequence[tuple[int, ...]], optimize: Any = "auto",
                 memory_limit: Any = None, max_memory: Any = None) -> None:
        if not isinstance(equation, str):
            raise AxisdotTypeError(f"einsum_expression: the equation must be a str, got {type(equation).__name__}")
        self.equation = equation
        self.shapes = tuple(tuple(s) for s in shapes)
        self._quoted = quote(equation)
        self._optimize = optimize_key(optimize, self._quoted)
        self._max_memory = parse_max_memory(max_memory, self._quoted)
        self._plan = _cache.einsum_sized(equation, self.shapes, self._optimize, memory_limit)
        #: the path as opt_einsum writes it, for torch.compile and for the curious
        self.path = self._plan.path
        self.output_shape = tuple(self._plan.sizes.get(c, 1) for c in self._plan.sub.output)
        self._memory_limit = memory_limit

    def __repr__(self) -> str:
        shapes = ", ".join(shape_text(s) for s in self.shapes)
        return (f"<axisdot.EinsumExpression {self._plan.sub.equation!r} for shapes {shapes} -> "
                f"{shape_text(self.output_shape)}, {len(self.path)} step{'s' if len(self.path) != 1 else ''}>")

    def _check(self, operands: Sequence[Any]) -> None:
        if len(operands) != len(self.shapes):
            raise ShapeError(f"{self._quoted}: the expression takes {len(self.shapes)} operands, got {len(operands)}")
        for i, (t, shape) in enumerate(zip(operands, self.shapes)):
            check_tensor(t, f"operand {i}", f"expression {self._quoted}")
            got = tuple(t.shape)
            if got == shape:
                continue
            if len(got) != len(shape):
                raise ShapeError(f"{self._quoted}: operand {i} has shape {shape_text(got)}, rank {len(got)}; "
                                 f"the expression was built for {shape_text(shape)}")
            axis = next(a for a, (g, s) in enumerate(zip(got, shape)) if g != s)
            raise ShapeError(
                f"{self._quoted}: operand {i} axis {axis} has size {got[axis]}; the expression was built for "
                f"size {shape[axis]}\n  got:      {mark_axes(got, [axis])}\n  expected: {mark_axes(shape, [axis])}"
            )

    def __call__(self, *operands: torch.Tensor) -> torch.Tensor:
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])
        if torch.compiler.is_compiling():  # one allowed op in the graph; its plan is fixed
            from .api import einsum

            return einsum(self.equation, *operands, optimize=self.path, memory_limit=self._memory_limit,
                          max_memory=self._max_memory)
        for t, shape in zip(operands, self.shapes):
            if t.__class__ is not torch.Tensor or t.shape != shape:
                self._check(operands)
                break
        else:
            if len(operands) != len(self.shapes):
                self._check(operands)
        if self._max_memory is not None:
            return run_sliced(self._plan, operands, self._max_memory)
        return self._plan(operands)

    def explain(self) -> Any:
        """The report :func:`axisdot.explain` gives for this equation and these shapes
        (the path this expression runs, said to be chosen by whoever chose it)."""
        from dataclasses import replace

        from .explanation import explain

        report = explain(self.equation, *self.shapes, optimize=self.path, max_memory=self._max_memory)
        return replace(report, path_origin=self._plan.path_origin)


def einsum_expression(equation: str, *shapes: Any, optimize: Any = "auto", memory_limit: Any = None,
                      max_memory: Any = None) -> EinsumExpression:
    """Parse, check and plan ``equation`` for operands of these shapes once, and return a
    callable that runs it (as ``opt_einsum.contract_expression``).

    ``shapes`` are tuples of sizes (or tensors, whose shapes are taken). The expression
    checks each operand's shape at every call (a clear ``ShapeError`` naming the operand
    and axis), then runs the planned steps with no other per-call work. It works under
    autograd, ``torch.compile(fullgraph=True)``, ``torch.export`` and ``torch.func.vmap``.
    ``max_memory`` bounds its temporaries as :func:`axisdot.einsum`'s does.

    >>> expr = einsum_expression("ij,jk,kl->il", (2, 3), (3, 4), (4, 5))
    >>> expr(torch.ones(2, 3), torch.ones(3, 4), torch.ones(4, 5)).shape
    torch.Size([2, 5])
    """
    sizes = []
    for i, s in enumerate(shapes):
        rank, shape = rank_and_shape(s, f"operand {i}", "axisdot.einsum_expression")
        if shape is None or any(n is None for n in shape):
            raise AxisdotTypeError(
                f"axisdot.einsum_expression: operand {i} needs a full shape (a tuple of sizes or a tensor), got {s!r}"
            )
        sizes.append(shape)
    return EinsumExpression(equation, sizes, optimize, memory_limit, max_memory)  # type: ignore[arg-type]
