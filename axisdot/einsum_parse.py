"""Parse an einsum equation into :class:`Subscripts`: one string of labels per operand
and one for the output, every ``...`` spelled out. Torch-free.

Parsing needs only the equation and the operands' ranks, so it is cached by them
(:mod:`axisdot.cache`); sizes are checked apart from parsing, by :func:`letter_sizes`.

The rules are torch.einsum's, widened to what opt_einsum accepts:

* a label is an ASCII letter or any other non-ASCII, non-space character (Greek,
  CJK, the symbols :func:`opt_einsum.get_symbol` hands out for large networks);
  spaces are ignored anywhere but inside ``->`` and ``...`` (other white space is
  refused, as torch refuses it);
* the sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` takes labels that are
  non-negative ints of any size (``get_symbol(n)`` names label ``n``), and
  ``Ellipsis``;
* ``...`` stands for the axes an operand has beyond its labels; ellipses are aligned
  from the right across operands, as broadcasting aligns them;
* without ``->`` the output is the ellipsis axes, then the labels used exactly once, in
  sorted order (by label value in the sublist form);
* with ``->``, ellipsis axes left out of the output are summed (as torch does);
* a label has one size, except that size 1 broadcasts against any other (as in torch
  and NumPy); a label repeated in one operand takes the diagonal, and its sizes there
  must agree exactly.
"""
from __future__ import annotations

import itertools
import numbers
import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

from opt_einsum import get_symbol

from .errors import AxisdotTypeError, EquationError, ShapeError

__all__ = ["Subscripts", "parse", "parse_sublists", "is_label", "letter_sizes", "quote"]


@dataclass(frozen=True)
class Subscripts:
    """An einsum equation with explicit output and every ellipsis spelled out.

    ``inputs[i]`` holds one label per axis of operand ``i``; ``ellipsis`` holds the
    labels that stand for ``...`` (the longest ellipsis, right-aligned), so messages can
    say "the ellipsis axes" instead of inventing a letter; ``written`` is the equation
    as the user gave it, quoted in every error. ``equation``, the explicit equation, is
    made once, here; a parser that has it already (the written equation, when that is
    explicit) passes it.
    """

    inputs: tuple[str, ...]
    output: str
    written: str
    ellipsis: str = ""

    def __init__(self, inputs: tuple[str, ...], output: str, written: str, ellipsis: str = "",
                 equation: Optional[str] = None) -> None:
        # frozen: the fields are set once, here, in the instance's dict, as dataclass's own
        # __init__ sets them through object.__setattr__ at twice the cost (a plan build makes one)
        fields = self.__dict__
        fields["inputs"] = inputs
        fields["output"] = output
        fields["written"] = written
        fields["ellipsis"] = ellipsis
        fields["_equation"] = ",".join(inputs) + "->" + output if equation is None else equation

    @property
    def equation(self) -> str:
        """``"ij,jk->ik"``: the explicit equation."""
        return self.__dict__["_equation"]

    def __repr__(self) -> str:
        return f"Subscripts({self.equation!r})"


def quote(written: str) -> str:
    return f"einsum({written!r})"


def is_label(c: str) -> bool:
    """An ASCII letter, or any non-ASCII character that is not a space."""
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or (ord(c) > 127 and not c.isspace())


def _unused(used: set[str], n: int) -> str:
    out: list[str] = []
    for i in itertools.count():
        if len(out) == n:
            return "".join(out)
        c = get_symbol(i)
        if c not in used and not c.isspace():
            out.append(c)
    raise AssertionError("unreachable")  # pragma: no cover


def _split_term(term: str, where: str, quoted: str) -> tuple[str, str, bool]:
    """``(head, tail, has_ellipsis)`` of one term, its labels checked."""
    if term.count("...") > 1 or term.replace("...", "").count("."):
        raise EquationError(f"{quoted}: {where} {term!r}: '.' appears only as one '...' per term")
    head, dots, tail = term.partition("...")
    for c in head + tail:
        if not is_label(c):
            raise EquationError(
                f"{quoted}: {c!r} is not a subscript (in {where} {term!r}); use letters "
                f"(a-z, A-Z or any other alphabet) and '...'"
            )
    return head, tail, bool(dots)


_PAIR = re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]*)")
_PLAIN = re.compile(r"([a-zA-Z]+(?:,[a-zA-Z]+)*)->([a-zA-Z]*)")
_STRAY_ARROW = re.compile(r"-(?!>)|(?<!-)>")
_STRAY_DOTS = re.compile(r"(?<!\.)(?:\.|\.\.)(?!\.)|\.{4,}")


def _plain(equation: str, ranks: Sequence[int]) -> Optional[Subscripts]:
    """The usual equation by a shorter road: letters, commas and '->' only, terms that
    fit the ranks, output letters distinct and all in the inputs. None for any other
    equation, which the general road parses (or refuses, in its words). Two operands,
    the usual call, are matched as two terms at once (no split)."""
    pair = _PAIR.fullmatch(equation)
    if pair is not None:
        a, b, output = pair.groups()
        if len(ranks) != 2 or len(a) != ranks[0] or len(b) != ranks[1]:
            return None
        terms: tuple[str, ...] = (a, b)
        letters = a + b
    else:
        plain = _PLAIN.fullmatch(equation)
        if plain is None:
            return None
        letters, output = plain.groups()
        terms = tuple(letters.split(","))
        if tuple(map(len, terms)) != tuple(ranks):
            return None
    if len(set(output)) != len(output) or not set(letters).issuperset(output):
        return None
    return Subscripts(terms, output, equation, "", equation)  # as written, already explicit


def parse(equation: object, ranks: Sequence[int]) -> Subscripts:
    """The :class:`Subscripts` of a string equation for operands of these ranks."""
    if not isinstance(equation, str):
        raise AxisdotTypeError(f"einsum: the equation must be a str, got {type(equation).__name__}")
    plain = _plain(equation, ranks)
    if plain is not None:
        return plain
    quoted = quote(equation)
    if _STRAY_ARROW.search(equation):
        raise EquationError(f"{quoted}: '-' and '>' appear only together, as '->' (without spaces inside it)")
    if _STRAY_DOTS.search(equation):
        raise EquationError(f"{quoted}: '.' appears only as '...' (three dots, without spaces), once per term")
    eq = equation.replace(" ", "")
    if eq.count("->") > 1:
        raise EquationError(f"{quoted}: an equation has at most one '->'")
    lhs, arrow, rhs = eq.partition("->")
    for part in (lhs, rhs):
        for c in ("-", ">"):
            if c in part:
                raise EquationError(f"{quoted}: {c!r} is not a subscript; '->' separates the inputs from the output")
    terms = lhs.split(",")
    return _build(terms, rhs if arrow else None, ranks, equation, quoted)


def parse_sublists(sublists: Sequence[Any], output: Any, ranks: Sequence[int], written: str) -> Subscripts:
    """The :class:`Subscripts` of the sublist form: ``sublists[i]`` labels operand ``i``
    (ints >= 0 and ``Ellipsis``); ``output`` is a sublist or None for the implicit one."""
    quoted = quote(written)
    labels: list[list[object]] = []
    for i, sub in enumerate(list(sublists) + ([] if output is None else [output])):
        where = "the output" if i == len(sublists) else f"operand {i}"
        if not isinstance(sub, (list, tuple)):
            raise AxisdotTypeError(f"{quoted}: the sublist of {where} must be a list of ints, got {type(sub).__name__}")
        for item in sub:
            if item is Ellipsis:
                continue
            if isinstance(item, bool) or not isinstance(item, numbers.Integral):
                raise AxisdotTypeError(f"{quoted}: a sublist label must be an int >= 0 or Ellipsis, got "
                                       f"{type(item).__name__} {item!r} in {where}")
            if int(item) < 0:  # type: ignore[call-overload]
                raise EquationError(f"{quoted}: a sublist label must be >= 0, got {item} in {where}")
        labels.append(list(sub))
    if output is None:  # implicit output: sorted by label value, not by symbol
        counts: dict[int, int] = {}
        for sub in labels:
            for item in sub:
                if item is not Ellipsis:
                    counts[int(item)] = counts.get(int(item), 0) + 1  # type: ignore[call-overload]
        dots: list[object] = [Ellipsis] if any(Ellipsis in sub for sub in labels) else []
        labels.append(dots + sorted(n for n, k in counts.items() if k == 1))

    def term(sub: list[object]) -> str:
        return "".join("..." if item is Ellipsis else get_symbol(int(item)) for item in sub)  # type: ignore[call-overload]

    return _build([term(s) for s in labels[:-1]], term(labels[-1]), ranks, written, quoted)


def _build(terms: list[str], rhs: Optional[str], ranks: Sequence[int], written: str, quoted: str) -> Subscripts:
    if len(terms) != len(ranks):
        raise EquationError(
            f"{quoted}: the equation has {len(terms)} operand terms but {len(ranks)} operands were given"
        )
    parts = [_split_term(t, f"operand {i}", quoted) for i, t in enumerate(terms)]
    widths = []
    for i, ((head, tail, dots), rank) in enumerate(zip(parts, ranks)):
        n = len(head) + len(tail)
        if dots:
            if n > rank:
                raise EquationError(
                    f"{quoted}: subscript {terms[i]!r} has {n} letters and '...' but operand {i} "
                    f"has rank {rank}; '...' stands for rank - {n} >= 0 axes"
                )
            widths.append(rank - n)
        else:
            if n != rank:
                raise EquationError(
                    f"{quoted}: subscript {terms[i]!r} has {n} letters but operand {i} has rank {rank}"
                )
            widths.append(0)
    width = max(widths, default=0)
    out_head = out_tail = ""
    out_dots = False
    if rhs is not None:
        out_head, out_tail, out_dots = _split_term(rhs, "the output", quoted)
    used = set("".join(h + t for h, t, _ in parts) + out_head + out_tail)
    ell = _unused(used, width) if width else ""
    inputs = tuple(h + (ell[width - w:] if w else "") + t for (h, t, _), w in zip(parts, widths))
    if rhs is None:
        once = [c for c in sorted(set("".join(inputs)) - set(ell)) if "".join(inputs).count(c) == 1]
        output = ell + "".join(once)
    else:
        output = out_head + (ell if out_dots else "") + out_tail
        seen = set("".join(inputs))
        for c in out_head + out_tail:
            if c not in seen:
                raise EquationError(f"{quoted}: output letter {c!r} is not in any input")
            if output.count(c) > 1:
                raise EquationError(f"{quoted}: output letter {c!r} appears more than once")
    return Subscripts(inputs, output, written, ell)


def _name(sub: Subscripts, label: str) -> str:
    return "an ellipsis axis" if label in sub.ellipsis else f"letter {label!r}"


def _occurrences(sub: Subscripts, shapes: Sequence[Sequence[Any]]) -> Iterator[tuple[str, int, int, int]]:
    for i, (term, shape) in enumerate(zip(sub.inputs, shapes)):
        for axis, (label, n) in enumerate(zip(term, shape)):
            yield label, n, i, axis


def letter_sizes(sub: Subscripts, shapes: Sequence[Sequence[Any]]) -> dict[str, int]:
    """The size of every label, broadcast: all its sizes agree, or the others are 1.

    Raises :class:`ShapeError` quoting the equation, the label, both operands and axes.
    Within one operand a repeated label (a diagonal) must have one size exactly.
    """
    sizes: dict[str, tuple[int, int, int]] = {}
    for label, n, i, axis in _occurrences(sub, shapes):
        first = sizes.get(label)
        if first is None or first[0] == 1 and first[1] != i:
            sizes[label] = (n, i, axis)
            continue
        size, j, a = first
        if n == size or (n == 1 and j != i):
            continue
        rule = "the diagonal of a repeated letter needs equal sizes" if i == j else \
            "sizes must agree, or be 1 to broadcast"
        raise ShapeError(
            f"{quote(sub.written)}: {_name(sub, label)} has size {size} in operand {j} axis {a} "
            f"but size {n} in operand {i} axis {axis} ({rule})"
        )
    return {label: s[0] for label, s in sizes.items()}
