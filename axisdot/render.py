"""Text pictures of shapes, shared by error messages and ``explain``."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

__all__ = ["mark_axes", "shape_text", "aligned", "CallText"]


class CallText:
    """The text of a call, such as ``dot(x, y, axes=(2, 1))``, made only when it is shown.

    Plans and parsers keep one for their error messages; building a plan (a cache miss)
    does not pay for formatting text that only a refusal or a ``repr`` will show.
    """

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[], str]) -> None:
        self._make = make

    def __str__(self) -> str:
        return self._make()

    def __repr__(self) -> str:
        return repr(self._make())

    def __format__(self, spec: str) -> str:
        return format(self._make(), spec)


def _size(n: Optional[int], unknown: str = "?") -> str:
    return unknown if n is None else str(n)


def shape_text(shape: Sequence[Optional[int]], unknown: str = "?") -> str:
    """``(32, 64)``; ``(3,)`` for rank 1; ``unknown`` for an unknown size (``?``, or
    ``None`` as Keras prints a batch axis)."""
    parts = [_size(n, unknown) for n in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def mark_axes(shape: Sequence[Optional[int]], axes: Sequence[int]) -> str:
    """``(32, 64, [128])``: the shape with the given axes in brackets."""
    parts = [f"[{_size(n)}]" if i in axes else _size(n) for i, n in enumerate(shape)]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def aligned(shape: Optional[Sequence[Optional[int]]], labels: Sequence[str]) -> tuple[str, str]:
    """Two lines: the shape, and each label right-aligned under its size.

    >>> print("\\n".join(aligned((32, 128), ["b", "k*"])))
    (32, 128)
      b   k*
    """
    sizes = [_size(n) for n in shape] if shape is not None else ["" for _ in labels]
    widths = [max(len(s), len(lab)) for s, lab in zip(sizes, labels)]
    top = "(" + ", ".join(s.rjust(w) for s, w in zip(sizes, widths)) + ("," if len(sizes) == 1 else "") + ")"
    if shape is None:
        top = f"rank {len(labels)}"
    bottom = " " + "  ".join(lab.rjust(w) for lab, w in zip(labels, widths))
    return top, bottom
