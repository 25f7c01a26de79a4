"""The torch calls of an EinsumDense equation: :class:`DensePlan`, one per input rank.

When the equation is a dense matmul over the input's trailing axes (``abc,cd->abd``,
``abc,cde->abde``, ``abcd,cde->abe``, ``...b,bc->...c``), the plan is one
``torch.nn.functional.linear`` on views, with the bias fused into it when it spans the
kernel's output axes (for outputs of at most :data:`SMALL_DENSE_OUTPUT` elements, one
``torch.matmul`` or ``torch.tensordot`` and the bias added: no views); any other
equation is one planned step (:func:`axisdot.cache.einsum_step`) and a broadcast bias
add. :func:`dense_plan` makes the plan of a layer's equation for inputs of one rank;
the module (:mod:`axisdot.layers.einsum_dense`) keeps one per rank it has seen, and
``explain`` asks one for its lowering without building the layer.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from .. import cache as _cache
from ..dense_spec import DenseEquation, DenseSpec, analyze_dense
from ..layer_explanation import DensePart
from ..spec import PartialShape

__all__ = ["DensePlan", "FlattenMismatch", "SMALL_DENSE_OUTPUT", "dense_part", "dense_plan"]

Run = Callable[[torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]
_matmul, _tensordot = torch.matmul, torch._C._VariableFunctions.tensordot
_is_dynamo_compiling = torch.compiler.is_dynamo_compiling


def _linear_layout(equation: str) -> Optional[tuple[int, int]]:
    """``(contracted, kernel outputs)`` axis counts when ``X,Y->Z`` is a dense matmul over
    X's trailing axes: X = free + contracted, Y = contracted + outputs, Z = free + outputs."""
    lhs, z = equation.split("->")
    x, y = lhs.split(",")
    contracted = "".join(c for c in y if c in x and c not in z)
    outputs = "".join(c for c in y if c not in x)
    free = "".join(c for c in x if c not in y)
    if y != contracted + outputs or x != free + contracted or z != free + outputs or not contracted:
        return None
    return len(contracted), len(outputs)


#: Up to this many output elements, a dense matmul runs unfused (one ``torch.matmul`` or
#: ``torch.tensordot``, then the bias added): F.linear needs views of a Keras-layout
#: kernel and bias, and of its output, ~1 us each, more than a pass over so small an
#: output costs (measured: 3.7 us against 4.5 us for ``abc,cd->abd`` on (2, 8, 16), 5.4
#: against 8.0 us for a (16, 2, 8) kernel). Larger outputs keep the bias fused.
SMALL_DENSE_OUTPUT = 4096


class DensePlan:
    """The torch calls of one EinsumDense equation for inputs of one rank."""

    def __init__(self, equation: str, bias_fusable: bool, kernel_shape: Optional[Sequence[int]] = None,
                 has_bias: bool = True) -> None:
        self.equation = equation
        layout = _linear_layout(equation)
        if layout is not None:
            self.k, self.n_out = layout
            rank = equation.index(",")
            self.dims = (list(range(rank - self.k, rank)), list(range(self.k)))
            self.matrix = layout == (1, 1)  # a kernel of two axes: x @ kernel as it is
            if kernel_shape is None:
                self.small_input = -1
            else:  # the input sizes whose output has at most SMALL_DENSE_OUTPUT elements
                rows_in, rows_out = math.prod(kernel_shape[:self.k]), math.prod(kernel_shape[self.k:])
                self.small_input = SMALL_DENSE_OUTPUT * rows_in // max(rows_out, 1)
            self.fused = bias_fusable
            self.large = "torch.nn.functional.linear on views" + (", bias fused" if bias_fusable else "")
            self.small = ("torch.matmul" if self.matrix else "torch.tensordot") + (", then the bias" if has_bias else "")
            self.lowering = self.large
            if self.small_input >= 0:
                self.lowering += f" (outputs of at most {SMALL_DENSE_OUTPUT} elements: {self.small})"
            self.run: Run = self._linear
        else:
            self.step, label = _cache.einsum_step(equation)
            self.fused, self.small_input = False, -1
            self.lowering = label
            self.run = self._general

    def lowering_for(self, input_shape: Sequence[Optional[int]]) -> str:
        """What runs for inputs of this shape (both lowerings where a size is unknown)."""
        if self.small_input < 0 or None in input_shape:
            return self.lowering
        return self.small if math.prod(input_shape) <= self.small_input else self.large  # type: ignore[arg-type]

    def _linear(self, x: torch.Tensor, kernel: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        if not _is_dynamo_compiling() and x.numel() <= self.small_input:  # torch checks the sizes it pairs
            out = _matmul(x, kernel) if self.matrix else _tensordot(x, kernel, *self.dims)
            return out if bias is None else out + bias
        k, n_out = self.k, self.n_out
        if k > 1:
            if x.shape[x.ndim - k:] != kernel.shape[:k]:  # the flatten would pair mismatched sizes silently
                raise FlattenMismatch
            x = x.flatten(-k)
        if n_out == 0:  # a kernel of contracted axes only: a vector
            out = F.linear(x, kernel.reshape(-1))
        else:
            w = kernel if kernel.ndim == 2 else kernel.reshape(math.prod(kernel.shape[:k]), -1)
            fused_bias = None
            if self.fused and bias is not None:
                fused_bias = bias if bias.ndim == 1 else bias.reshape(-1)
            out = F.linear(x, w.mT, fused_bias)
            if n_out > 1:
                out = out.unflatten(-1, kernel.shape[k:])
        if bias is not None and not self.fused:
            out = out + bias
        return out

    def _general(self, x: torch.Tensor, kernel: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        out = self.step(x, kernel)
        return out if bias is None else out + bias


class FlattenMismatch(RuntimeError):
    """The input's contracted sizes differ from the kernel's (a flatten would pair them silently)."""


def dense_plan(equation: DenseEquation, bias_axes: Optional[str], rank: int,
               spec: Optional[DenseSpec]) -> DensePlan:
    """The plan of a layer's ``equation`` for inputs of ``rank`` (``spec``: the layer's
    shapes, where known), the bias fused when it spans exactly the kernel's output axes,
    last in the output."""
    explicit = equation.explicit(rank)
    lhs, z = explicit.split("->")
    x, y = lhs.split(",")
    outputs = "".join(c for c in y if c not in x)
    fusable = bias_axes is not None and spec is not None and spec.bias_shape is not None \
        and set(bias_axes) == set(outputs) and z.endswith(outputs) and len(spec.bias_shape) == len(outputs)
    return DensePlan(explicit, fusable, None if spec is None else spec.kernel_shape, has_bias=bias_axes is not None)


def dense_part(equation: DenseEquation, output_shape: PartialShape, bias_axes: Optional[str],
               input_shape: Sequence[int]) -> DensePart:
    """What an EinsumDense of this equation, ``output_shape`` and ``bias_axes`` runs on
    an input of ``input_shape``: the shapes (Keras's rules) and the lowering its plan
    chooses. Builds no layer: ``explain`` reports it."""
    spec = analyze_dense(equation, tuple(input_shape), output_shape, bias_axes)
    lowering = dense_plan(equation, bias_axes, len(input_shape), spec).lowering_for(input_shape)
    return DensePart(equation.explicit(len(input_shape)), spec, lowering)
