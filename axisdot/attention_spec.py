"""Keras's MultiHeadAttention as equations: projections and attention from
``attention_axes``. Torch-free.

The rules are Keras 3's (``keras/src/layers/attention/multi_head_attention.py``:
``_build_proj_equation``, ``_build_attention_equation``, ``_build_attention``):

* each projection is an EinsumDense whose equation copies the input's leading axes,
  contracts its last axis and adds ``(num_heads, key_dim)`` (or ``value_dim``); the
  output projection contracts ``(num_heads, value_dim)`` into ``output_shape``
  (by default the query's last size);
* after projection every tensor is ``(batch, <other axes>, <attention axes>, heads,
  channels)``; the scores are ``(batch, <other axes>, heads, <query attention axes>,
  <key attention axes>)``, normalized by a softmax over the key attention axes;
* ``attention_axes`` counts the input's axes (negative from its end), default every
  axis between the batch axis and the last.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .errors import ArgumentError, AxesError, AxisdotTypeError, ShapeError
from .spec import PartialShape

__all__ = ["AttentionSpec", "projection_equation", "attention_equations", "attention_axes_arg", "analyze_attention"]


def _letter(i: int) -> str:
    return string.ascii_lowercase[i]


def projection_equation(free: int, bound: int, outputs: int) -> tuple[str, str]:
    """``(equation, bias_axes)`` of a projection: ``free`` axes copied, ``bound``
    contracted with the kernel, ``outputs`` added by it (Keras's ``_build_proj_equation``).

    >>> projection_equation(2, 1, 2)
    ('abc,cde->abde', 'de')
    """
    copied = "".join(_letter(i) for i in range(free))
    contracted = "".join(_letter(free + i) for i in range(bound))
    added = "".join(_letter(free + bound + i) for i in range(outputs))
    return f"{copied}{contracted},{contracted}{added}->{copied}{added}", added


def attention_equations(rank: int, axes: tuple[int, ...]) -> tuple[str, str, int]:
    """``(dot_product_equation, combine_equation, scores_rank)`` for projected tensors
    of ``rank`` axes attending over ``axes`` (Keras's ``_build_attention_equation``).
    The dot product takes ``(key, query)``, the combination ``(scores, value)``.

    >>> attention_equations(4, (1,))
    ('aecd,abcd->acbe', 'acbe,aecd->abcd', 4)
    """
    target = "".join(_letter(i) for i in range(rank))
    batch = [i for i in range(rank) if i not in axes and i != rank - 1]
    source, offset = "", rank
    for i in range(rank):
        if i in batch or i == rank - 1:
            source += target[i]
        else:
            source += _letter(offset)
            offset += 1
    product = "".join([target[i] for i in batch] + [target[i] for i in axes] + [source[i] for i in axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


def attention_axes_arg(attention_axes: Any) -> Optional[tuple[int, ...]]:
    """``attention_axes`` as Keras takes it (None, an int, or a sequence of ints)."""
    if attention_axes is None:
        return None
    if isinstance(attention_axes, int) and not isinstance(attention_axes, bool):
        return (attention_axes,)
    if isinstance(attention_axes, (list, tuple)):
        for a in attention_axes:
            if isinstance(a, bool) or not isinstance(a, int):
                raise AxisdotTypeError(f"MultiHeadAttention(attention_axes={attention_axes!r}): axes are ints, "
                                       f"got {type(a).__name__} {a!r}")
        if not attention_axes:
            raise AxesError(f"MultiHeadAttention(attention_axes={attention_axes!r}): name at least one axis")
        return tuple(attention_axes)
    raise AxisdotTypeError(f"MultiHeadAttention: attention_axes must be an int, a list or a tuple, "
                           f"got {type(attention_axes).__name__}")


@dataclass(frozen=True)
class AttentionSpec:
    """Every equation and shape of one MultiHeadAttention for given input shapes."""

    query_shape: PartialShape
    value_shape: PartialShape
    key_shape: PartialShape
    axes: tuple[int, ...]  #: attention axes of the inputs, non-negative, in the order given
    query_projection: tuple[str, str, tuple[Optional[int], ...]]  #: (equation, bias axes, output_shape)
    key_projection: tuple[str, str, tuple[Optional[int], ...]]
    value_projection: tuple[str, str, tuple[Optional[int], ...]]
    output_projection: tuple[str, str, tuple[Optional[int], ...]]
    output_projection_input: PartialShape  #: the shape the output projection is built for
    dot_product_equation: str
    combine_equation: str
    scores_rank: int
    softmax_axes: tuple[int, ...]

    @property
    def mask_expansion_axis(self) -> int:
        """Where Keras inserts axes into a mask until it has the scores' rank."""
        return -len(self.axes) * 2 - 1


def analyze_attention(query_shape: Sequence[Optional[int]], value_shape: Sequence[Optional[int]],
                      key_shape: Optional[Sequence[Optional[int]]], num_heads: int, key_dim: int, value_dim: int,
                      output_shape: Optional[tuple[int, ...]], attention_axes: Optional[tuple[int, ...]]
                      ) -> AttentionSpec:
    """Keras's MultiHeadAttention build for these shapes (batch axes first)."""
    call = "MultiHeadAttention"
    q, v = tuple(query_shape), tuple(value_shape)
    k = v if key_shape is None else tuple(key_shape)
    if len(q) < 3:
        raise ShapeError(f"{call}: the query needs rank >= 3 (batch, at least one attention axis, features), "
                         f"got shape {q}")
    if len(v) != len(q) or len(k) != len(q):
        raise ShapeError(f"{call}: query, value and key must have one rank (the attention equations pair their "
                         f"axes), got shapes {q}, {v} and {k}")
    if v[1:-1] != k[1:-1] and None not in v[1:-1] + k[1:-1]:
        raise ShapeError(f"{call}: value and key must have the same sizes except the last, got {v} and {k}")
    rank = len(q)
    if attention_axes is None:
        axes = tuple(range(1, rank - 1))
    else:
        axes = tuple(a + rank if a < 0 else a for a in attention_axes)
        for written, a in zip(attention_axes, axes):
            if not 0 <= a < rank:
                raise AxesError(f"{call}(attention_axes={attention_axes!r}): axis {written} is out of range for "
                                f"inputs of rank {rank} (shape {q})")
            if a == 0 or a == rank - 1:
                what = "the batch axis" if a == 0 else "the last (feature) axis, which the projections contract"
                raise AxesError(f"{call}(attention_axes={attention_axes!r}): axis {written} is {what}; attention "
                                f"runs over axes 1 to {rank - 2} of inputs of shape {q}")
        if len(set(axes)) != len(axes):
            raise AxesError(f"{call}(attention_axes={attention_axes!r}): an axis appears twice")

    def projection(rank_in: int, added: tuple[int, ...]) -> tuple[str, str, tuple[Optional[int], ...]]:
        equation, bias = projection_equation(rank_in - 1, 1, len(added))
        return equation, bias, (None,) * (rank_in - 2) + added

    out_dims = tuple(output_shape) if output_shape else (q[-1],)
    if None in out_dims:
        raise ShapeError(f"{call}: the output projection needs the query's last size (or output_shape), got {q}")
    out_equation, out_bias = projection_equation(rank - 1, 2, len(out_dims))
    dot, combine, scores_rank = attention_equations(rank + 1, axes)
    return AttentionSpec(
        query_shape=q, value_shape=v, key_shape=k, axes=axes,
        query_projection=projection(rank, (num_heads, key_dim)),
        key_projection=projection(rank, (num_heads, key_dim)),
        value_projection=projection(rank, (num_heads, value_dim)),
        output_projection=(out_equation, out_bias, (None,) * (rank - 2) + out_dims),  # type: ignore[arg-type]
        output_projection_input=q[:-1] + (num_heads, value_dim),
        dot_product_equation=dot, combine_equation=combine, scores_rank=scores_rank,
        softmax_axes=tuple(range(scores_rank - len(axes), scores_rank)),
    )


def check_heads(num_heads: Any, key_dim: Any, value_dim: Any) -> None:
    """Keras's constructor checks: positive ints."""
    for name, value, optional in (("num_heads", num_heads, False), ("key_dim", key_dim, False),
                                  ("value_dim", value_dim, True)):
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise AxisdotTypeError(f"MultiHeadAttention: {name} must be an int, got {type(value).__name__} {value!r}")
        if value < 1:
            raise ArgumentError(f"MultiHeadAttention: {name} must be >= 1, got {value}")
