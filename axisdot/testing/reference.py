"""Slow, obviously-correct references for each front end, written with NumPy.

They share no code with axisdot's pipeline: no einsum equation, no spec, no plan. Each
batch element is contracted on its own with ``numpy.tensordot`` (whose semantics are the
definition of tensordot), and the Keras rules are spelled out step by step. Inputs are
tensors or arrays; outputs are NumPy arrays computed in float64 (complex128 for complex
inputs, int64 for integer inputs), so they can judge float16 and bfloat16 results too.
"""
from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

__all__ = [
    "to_numpy",
    "reference_dot_general",
    "reference_dot",
    "reference_batch_dot",
    "reference_tensordot",
    "reference_einsum",
]

KERAS_EPSILON = 1e-7


def to_numpy(t: Any) -> np.ndarray:
    """A tensor or array as a wide NumPy array: float64, complex128 or int64."""
    if hasattr(t, "detach"):
        if t.is_complex():
            t = t.detach().cpu().to(dtype=__import__("torch").complex128)
        elif t.is_floating_point():
            t = t.detach().cpu().double()
        else:
            t = t.detach().cpu().long()
        return t.numpy()
    a = np.asarray(t)
    if np.iscomplexobj(a):
        return a.astype(np.complex128)
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float64)
    return a.astype(np.int64)


def _positive(axes: Sequence[int], rank: int) -> list[int]:
    return [a + rank if a < 0 else a for a in axes]


def reference_dot_general(x: Any, y: Any, contract: Sequence[Sequence[int]],
                          batch: Sequence[Sequence[int]] = ((), ())) -> np.ndarray:
    """Output = batch axes (in the order given), x's free axes, y's free axes.

    For every index of the batch axes, take that slice of x and of y and contract the
    remaining paired axes with ``numpy.tensordot``.
    """
    x, y = to_numpy(x), to_numpy(y)
    cx, cy = _positive(contract[0], x.ndim), _positive(contract[1], y.ndim)
    bx, by = _positive(batch[0], x.ndim), _positive(batch[1], y.ndim)
    x_rest = [a for a in range(x.ndim) if a not in bx]
    y_rest = [a for a in range(y.ndim) if a not in by]
    xt = np.transpose(x, bx + x_rest)  # batch axes first, the rest in order
    yt = np.transpose(y, by + y_rest)
    cx_t = [x_rest.index(a) for a in cx]  # contracted axes within one batch slice
    cy_t = [y_rest.index(a) for a in cy]
    batch_shape = xt.shape[: len(bx)]
    free_x = [x.shape[a] for a in x_rest if a not in cx]
    free_y = [y.shape[a] for a in y_rest if a not in cy]
    dtype = np.result_type(x, y)
    out = np.zeros(tuple(batch_shape) + tuple(free_x) + tuple(free_y), dtype=dtype)
    for index in itertools.product(*[range(n) for n in batch_shape]):
        out[index] = np.tensordot(xt[index], yt[index], axes=(cx_t, cy_t))
    return out


def _keras_axes(axes: Any, x_ndim: int, y_ndim: int) -> tuple[list[int], list[int]]:
    """Keras: an int is the same axis of both inputs; negative axes count from the end
    of each input separately. A pair of sequences contracts several axes (axisdot)."""
    if isinstance(axes, (int, np.integer)):
        axes = (axes, axes)
    ax, ay = axes
    ax = list(ax) if isinstance(ax, (list, tuple)) else [ax]
    ay = list(ay) if isinstance(ay, (list, tuple)) else [ay]
    return _positive([int(a) for a in ax], x_ndim), _positive([int(a) for a in ay], y_ndim)


def _keras_normalize(a: np.ndarray, axes: list[int]) -> np.ndarray:
    """Keras 3: ``x * minimum(rsqrt(sum(x**2, axes, keepdims)), 1 / epsilon)``."""
    square_sum = np.sum(a * a, axis=tuple(axes), keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.minimum(1.0 / np.sqrt(square_sum), 1.0 / KERAS_EPSILON)
    return a * inv


def reference_batch_dot(x: Any, y: Any, axes: Any = None) -> np.ndarray:
    """Keras ``batch_dot``: axis 0 is the batch; the result holds the batch axis, x's
    remaining axes, then y's; a rank-1 result becomes ``(batch, 1)``. ``axes=None`` is
    ``(x.ndim - 1, y.ndim - 1)`` for a rank-2 y, else ``(x.ndim - 1, y.ndim - 2)``."""
    x, y = to_numpy(x), to_numpy(y)
    if axes is None:
        axes = (x.ndim - 1, y.ndim - 1 if y.ndim == 2 else y.ndim - 2)
    ax, ay = _keras_axes(axes, x.ndim, y.ndim)
    out = reference_dot_general(x, y, (ax, ay), ((0,), (0,)))
    return out.reshape(out.shape[0], 1) if out.ndim == 1 else out


def reference_dot(x: Any, y: Any, axes: Any = -1, normalize: bool = False) -> np.ndarray:
    """Keras ``Dot(axes, normalize)``: :func:`reference_batch_dot` after normalizing each
    input along its contracted axes when ``normalize`` is true."""
    x, y = to_numpy(x), to_numpy(y)
    ax, ay = _keras_axes(axes, x.ndim, y.ndim)
    if normalize:
        x, y = _keras_normalize(x, ax), _keras_normalize(y, ay)
    return reference_batch_dot(x, y, (tuple(ax), tuple(ay)))


def reference_tensordot(x: Any, y: Any, axes: Any = 2) -> np.ndarray:
    """``numpy.tensordot`` itself."""
    return np.asarray(np.tensordot(to_numpy(x), to_numpy(y), axes=axes))


_ASCII = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # in code-point order


class _EllipsisAxis(tuple):
    """A label standing for the k-th axis from the right under ``...``."""


def _spell_ellipsis(terms: Sequence[Sequence[Any]], output: Any, ranks: Sequence[int]) -> tuple[list, Any]:
    """Every ``...`` replaced by one label per axis it covers, aligned from the right (the
    definition of broadcasting); an implicit output keeps them first, as torch does, and
    an explicit output without ``...`` sums them (torch's rule; NumPy refuses)."""
    spelled, width = [], 0
    for term, rank in zip(terms, ranks):
        if Ellipsis in term:
            k = rank - (len(term) - 1)
            width = max(width, k)
            at = term.index(Ellipsis)
            term = list(term[:at]) + [_EllipsisAxis((j,)) for j in range(k - 1, -1, -1)] + list(term[at + 1:])
        spelled.append(list(term))
    axes = [_EllipsisAxis((j,)) for j in range(width - 1, -1, -1)]
    if output is None:
        counts: dict[Any, int] = {}
        for term in spelled:
            for lab in term:
                counts[lab] = counts.get(lab, 0) + 1
        once = sorted(lab for lab, n in counts.items() if n == 1 and not isinstance(lab, _EllipsisAxis))
        return spelled, axes + once
    if Ellipsis in output:
        at = list(output).index(Ellipsis)
        output = list(output[:at]) + axes + list(output[at + 1:])
    return spelled, list(output)


def _ascii_equation(terms: Sequence[Sequence[Any]], output: Sequence[Any]) -> str:
    """Terms of labels as an equation NumPy takes: the k-th smallest label becomes the
    k-th ASCII letter in code-point order (ellipsis axes after all others)."""
    plain = sorted({lab for term in [*terms, output] for lab in term if not isinstance(lab, _EllipsisAxis)})
    extra = sorted({lab for term in [*terms, output] for lab in term if isinstance(lab, _EllipsisAxis)})
    labels = plain + extra
    if len(labels) > len(_ASCII):
        raise ValueError(f"reference_einsum: {len(labels)} labels, more than NumPy's 52")
    table = {lab: _ASCII[i] for i, lab in enumerate(labels)}
    return ",".join("".join(table[lab] for lab in t) for t in terms) + "->" + "".join(table[lab] for lab in output)


def string_terms(equation: str) -> tuple[list[list[Any]], Any]:
    """An einsum equation's input terms and output as lists of labels (None: implicit)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")

    def labels(term: str) -> list[Any]:
        head, dots, tail = term.partition("...")
        return list(head) + ([Ellipsis] if dots else []) + list(tail)

    return [labels(t) for t in lhs.split(",")], (labels(rhs) if arrow else None)


def reference_einsum(*args: Any) -> np.ndarray:
    """``numpy.einsum`` itself, without path optimization, for either form:
    ``reference_einsum(equation, *operands)`` (any letters, spaces) or the sublist form
    ``reference_einsum(op0, sublist0, op1, sublist1, ..., [output])`` (any int labels).
    Labels are renamed to NumPy's 52 letters first, keeping their order."""
    if isinstance(args[0], str):
        terms, output = string_terms(args[0])
        operands = args[1:]
    else:
        operands = list(args[0::2])
        terms = [list(sub) for sub in args[1::2]]
        output = list(operands.pop()) if len(args) % 2 else None
    wide = [to_numpy(t) for t in operands]
    terms, output = _spell_ellipsis(terms, output, [a.ndim for a in wide])
    return np.asarray(np.einsum(_ascii_equation(terms, output), *wide, optimize=False))
