"""Keras's EinsumDense shape analysis: equation, input shape, ``output_shape`` and
``bias_axes`` -> kernel, bias and output shapes. Torch-free.

The rules are Keras 3's (``keras/src/layers/core/einsum_dense.py``,
``_analyze_einsum_string``): the equation is ``X,Y->Z``, ``...X,Y->...Z`` or
``X...,Y->Z...`` (X at least two letters in the last form); a kernel letter that is in
the output takes its size from the output shape, else from the input; the bias spans
the output from its first bias letter to the end, size 1 on the letters it leaves out.
Where Keras accepts what cannot work, this module refuses at once with the reason:
anything after the equation's end, a letter twice in one term, an ``output_shape`` of
the wrong length or with an unknown size the kernel needs, a bias size that is unknown.
Where Keras's symbolic output shape is wrong (several axes under a leading ``...``
come out reversed), this module gives the shape the computation has.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .errors import ArgumentError, AxisdotTypeError, ShapeError
from .spec import PartialShape

__all__ = ["DenseEquation", "DenseSpec", "parse_dense_equation", "analyze_dense", "output_shape_arg",
           "check_bias_axes"]

_FORMS = (
    (re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)"), ""),
    (re.compile(r"\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)"), "left"),
    (re.compile(r"([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\."), "right"),
)


@dataclass(frozen=True)
class DenseEquation:
    """An EinsumDense equation split into its terms; ``ellipsis`` is ``""``, ``"left"``
    (``...X,Y->...Z``) or ``"right"`` (``X...,Y->Z...``)."""

    equation: str
    input: str
    kernel: str
    output: str
    ellipsis: str

    def explicit(self, rank: int) -> str:
        """The einsum equation for an input of this rank, ``...`` spelled out in letters
        the equation does not use."""
        if not self.ellipsis:
            return f"{self.input},{self.kernel}->{self.output}"
        used = set(self.input + self.kernel + self.output)
        free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used]
        extra = "".join(free[: rank - len(self.input)])
        if self.ellipsis == "left":
            return f"{extra}{self.input},{self.kernel}->{extra}{self.output}"
        return f"{self.input}{extra},{self.kernel}->{self.output}{extra}"


@dataclass(frozen=True)
class DenseSpec:
    """Everything an EinsumDense layer derives from its input shape.

    ``kernel_shape`` and ``bias_shape`` are in Keras's layout (so Keras weights copy in
    unchanged); ``output_shape`` is the full output, batch axis included (None where the
    input's size is unknown); ``input_axes`` and ``output_axes`` are the kernel axes
    contracted with the input and those that reach the output (Keras's glorot fans).
    """

    equation: DenseEquation
    input_shape: PartialShape
    kernel_shape: tuple[int, ...]
    bias_shape: Optional[tuple[int, ...]]
    output_shape: PartialShape
    input_axes: tuple[int, ...]
    output_axes: tuple[int, ...]


def parse_dense_equation(equation: object) -> DenseEquation:
    """The terms of an EinsumDense equation; refuses any other form, saying which."""
    if not isinstance(equation, str):
        raise AxisdotTypeError(f"EinsumDense: the equation must be a str, got {type(equation).__name__}")
    for pattern, side in _FORMS:
        match = pattern.fullmatch(equation)
        if match:
            x, y, z = match.groups()
            for name, term in (("input", x), ("kernel", y), ("output", z)):
                repeated = sorted({c for c in term if term.count(c) > 1})
                if repeated:
                    raise ArgumentError(f"EinsumDense({equation!r}): letter {repeated[0]!r} appears twice in the "
                                        f"{name} term {term!r}; each axis is named once per term")
            for c in z:
                if c not in x and c not in y:
                    raise ArgumentError(
                        f"EinsumDense({equation!r}): output letter {c!r} is in neither the input {x!r} nor the "
                        f"kernel {y!r}"
                    )
            for c in y:
                if c not in x and c not in z:
                    raise ArgumentError(
                        f"EinsumDense({equation!r}): kernel letter {c!r} is in neither the input {x!r} nor the "
                        f"output {z!r}; the kernel must be fully specified"
                    )
            return DenseEquation(equation, x, y, z, side)
    raise ArgumentError(
        f"EinsumDense({equation!r}): not an EinsumDense equation; Keras takes the forms 'ab,bc->ac' "
        f"(X,Y->Z), '...b,bc->...c' (...X,Y->...Z) and 'ab...,bc->ac...' (X...,Y->Z..., X of 2+ letters)"
    )


def output_shape_arg(output_shape: Any, equation: DenseEquation) -> PartialShape:
    """``output_shape`` as Keras takes it (an int or a sequence of sizes and None, the
    batch axis left out), checked against the equation's output term."""
    shape = (output_shape,) if isinstance(output_shape, int) and not isinstance(output_shape, bool) \
        else output_shape
    if not isinstance(shape, (tuple, list)):
        raise AxisdotTypeError(f"EinsumDense({equation.equation!r}): output_shape must be an int or a sequence of "
                               f"sizes (None for a size taken from the input), got {type(output_shape).__name__}")
    sizes = []
    for n in shape:
        if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
            raise AxisdotTypeError(f"EinsumDense({equation.equation!r}): output_shape={output_shape!r}: sizes are "
                                   f"ints or None, got {type(n).__name__} {n!r}")
        if n is not None and n < 0:
            raise ArgumentError(f"EinsumDense({equation.equation!r}): output_shape={output_shape!r}: sizes must "
                                f"be >= 0")
        sizes.append(n)
    need = len(equation.output) - (0 if equation.ellipsis == "left" else 1)
    if len(sizes) != need:
        covers = f"the letters {equation.output!r}" if equation.ellipsis == "left" else \
            f"{equation.output[1:]!r} (the output term {equation.output!r} without its batch axis)"
        raise ArgumentError(
            f"EinsumDense({equation.equation!r}): output_shape={output_shape!r} has {len(sizes)} sizes, but the "
            f"equation needs {need}: one for each of {covers}"
        )
    return tuple(sizes)


def check_bias_axes(bias_axes: object, equation: DenseEquation) -> None:
    """``bias_axes`` as Keras takes it: a str of distinct letters of the output term."""
    call = f"EinsumDense({equation.equation!r})"
    if not isinstance(bias_axes, str):
        raise AxisdotTypeError(f"{call}: bias_axes must be a str of output letters, got {type(bias_axes).__name__}")
    for c in bias_axes:
        if c not in equation.output:
            raise ArgumentError(f"{call}: bias axis {c!r} is not a letter of the output term {equation.output!r}")
    if len(set(bias_axes)) != len(bias_axes) or not bias_axes:
        raise ArgumentError(f"{call}: bias_axes={bias_axes!r} must name distinct output letters, at least one")


def analyze_dense(equation: DenseEquation, input_shape: Sequence[Optional[int]], output_shape: PartialShape,
                  bias_axes: Optional[str]) -> DenseSpec:
    """Kernel, bias and output shapes for an input of ``input_shape`` (None for unknown
    sizes, the batch axis first), as Keras's EinsumDense derives them."""
    call = f"EinsumDense({equation.equation!r})"
    shape = tuple(input_shape)
    x, y, z = equation.input, equation.kernel, equation.output
    elided = len(shape) - len(x)
    if (equation.ellipsis == "" and elided != 0) or elided < (1 if equation.ellipsis == "left" else 0):
        need = f"{len(x)}" if not equation.ellipsis else f"at least {len(x) + (1 if equation.ellipsis == 'left' else 0)}"
        raise ShapeError(f"{call}: the input term {x!r} needs an input of rank {need}, got shape {shape}")
    if equation.ellipsis == "left":
        full = (shape[0],) + shape[1:elided] + tuple(output_shape)
        in_pos = {c: elided + i for i, c in enumerate(x)}
        out_pos = {c: elided + i for i, c in enumerate(z)}
    else:
        full = (shape[0],) + tuple(output_shape) + (shape[len(x):] if elided else ())
        in_pos = {c: i for i, c in enumerate(x)}
        out_pos = {c: i for i, c in enumerate(z)}
    for c in x:  # a letter of the input that reaches the output keeps its size
        if c in out_pos:
            a, b = shape[in_pos[c]], full[out_pos[c]]
            if a is not None and b is not None and a != b:
                raise ShapeError(
                    f"{call}: letter {c!r} has size {a} in the input {shape} but output_shape gives it size {b} "
                    f"(output {full}); a letter shared by the input and the output keeps its size"
                )
            if b is None and a is not None:
                full = full[:out_pos[c]] + (a,) + full[out_pos[c] + 1:]
    kernel, in_axes, out_axes = [], [], []
    for i, c in enumerate(y):
        size = full[out_pos[c]] if c in out_pos else shape[in_pos[c]]
        if size is None:
            where = "output_shape" if c in out_pos else "the input shape"
            raise ShapeError(f"{call}: the kernel's letter {c!r} needs a size, but {where} leaves it unknown "
                             f"(input {shape}, output {full})")
        kernel.append(size)
        (out_axes if c in out_pos else in_axes).append(i)
    bias = None
    if bias_axes is not None:
        check_bias_axes(bias_axes, equation)
        first = min(z.index(c) for c in bias_axes)
        bias = []
        for c in z[first:]:
            size = full[out_pos[c]] if c in bias_axes else 1
            if size is None:
                raise ShapeError(f"{call}: bias axis {c!r} needs a size, but it is unknown (output {full}); "
                                 f"the batch axis cannot carry a bias")
            bias.append(size)
        if equation.ellipsis == "right":
            bias += [1] * elided
    return DenseSpec(equation, shape, tuple(kernel), None if bias is None else tuple(bias), full,
                     tuple(in_axes), tuple(out_axes))
