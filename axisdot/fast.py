"""The fast path of the two-operand front ends, written once.

``dot``, ``batch_dot``, ``tensordot``, ``dot_general`` and ``Dot.forward`` all start the
same way: a :class:`FastEntry` found for the call's very ``axes`` object runs its plan
straight away, with the plan's own recovery when torch refuses the operands; anything
else goes to the front end's checked path. :func:`fast_path` writes that start in front
of a front end's checked path, and :func:`fast_forward` in front of a module's, as one
function, the way :mod:`dataclasses` writes ``__init__``: from one template and the
checked function's own signature, so the front end *is* its fast path (a helper
called from each front end would add a Python call to every call). The front end keeps
the checked function's name, signature and docstring; ``front_end.__wrapped__`` is the
checked path.

An entry is written after a ranked plan lookup for canonical axes
(:func:`remembered`); a hit needs the very object that was checked (``entry.key is
axes``): an equal value of another type (``True`` for ``1``, NumPy integers) takes the
checked path. While a key has one plan, ``run`` is :attr:`Plan.fast`, which refuses
other ranks itself; a key seen with several pairs of ranks picks its plan by them.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import linecache
import threading
from typing import Any, Callable, Mapping, NamedTuple, Optional, TypeVar

import torch

from .errors import AxisdotError
from .plan import RECOVERABLE, Plan, RankMismatch, Run

__all__ = ["FastEntry", "Hits", "fast_path", "fast_forward", "remembered", "after_fast"]

F = TypeVar("F", bound=Callable[..., Any])


class FastEntry(NamedTuple):
    """What a front end runs for calls with one ``axes`` object."""

    #: the very object the entry serves (checked canonical when the entry was written)
    key: Any
    #: the plan's ``fast`` while one pair of ranks was seen, else a pick by ranks
    run: Run
    #: the plans by ``(x rank, y rank)``
    plans: Mapping[tuple[int, int], Plan]
    #: the object the front end's other argument must be for a hit (``dot``'s
    #: ``normalize=False``, ``dot_general``'s ``batch``); None where there is none
    extra: Any = None


class Hits:
    """A hit counter that the hot path bumps with ``next(hits.counter)``: an
    ``itertools.count``, atomic under threads, 30 ns a hit (a method adding one under a
    lock: 190 ns). :attr:`value` reads it by drawing one number more, then not counting
    the numbers drawn by reads."""

    def __init__(self) -> None:
        self.counter = itertools.count()
        self._uncounted = 0  # numbers drawn by reads, and hits before the last reset
        self._lock = threading.Lock()

    @property
    def value(self) -> int:
        with self._lock:
            self._uncounted += 1
            return next(self.counter) - self._uncounted + 1

    def reset(self) -> None:
        with self._lock:
            self._uncounted = next(self.counter) + 1


def after_fast(entry: FastEntry, x: Any, y: Any, err: BaseException, hits: Any) -> Any:
    """An entry's run raised ``err``. For operands of ranks the entry has a plan for,
    that plan's own recovery (axisdot's error, or a promotion), a hit. Returns None
    when the caller should take its checked path (ranks not seen yet, which it then
    adds to the entry; or not tensors)."""
    try:
        plan = entry.plans.get((x.ndim, y.ndim))
    except AttributeError:  # not tensors: Keras's pair form, or a bad operand
        return None
    if plan is None or isinstance(err, RankMismatch):
        return None
    next(hits)
    return plan.recover(x, y, err)


def remembered(entry: Optional[FastEntry], key: Any, plan: Plan, extra: Any = None) -> FastEntry:
    """The entry that serves ``key`` after a ranked lookup found ``plan`` for it:
    ``entry`` (the one held for an equal key, or None) with ``plan`` added. Once a key
    is seen with several pairs of ranks, ``run`` picks the plan by the operands' ranks
    (:func:`_by_ranks`); at most eight pairs are kept."""
    ranks = (plan.spec.x_rank, plan.spec.y_rank)
    if entry is None or entry.extra != extra:
        return FastEntry(key, plan.fast, {ranks: plan}, extra)
    plans, run = entry.plans, entry.run
    if plans.get(ranks) is not plan:  # new ranks (or a rebuilt plan); otherwise only a new key object
        plans = {**plans, ranks: plan} if len(plans) < 8 else {ranks: plan}
        run = plan.fast if len(plans) == 1 else _by_ranks(plans)
    return FastEntry(key, run, plans, extra)


def _by_ranks(plans: Mapping[tuple[int, int], Plan]) -> Run:
    """The run of an entry seen with several pairs of ranks: the plan for the operands'
    ranks, or :class:`~axisdot.plan.RankMismatch` for ranks not seen yet. Where each x
    rank (or else each y rank) has one plan, that rank indexes a list of the plans'
    ``fast`` (one subscript, no hashing) and the plan's ``fast`` proves the other."""
    for side in (0, 1):
        by_rank = {ranks[side]: plan.fast for ranks, plan in plans.items()}
        if len(by_rank) == len(plans):
            return _indexed(side, [by_rank.get(r, _unseen) for r in range(max(by_rank) + 1)])
    runs = {ranks: plan.run for ranks, plan in plans.items()}

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fn = runs.get((x.ndim, y.ndim))
        if fn is None:
            raise RankMismatch
        return fn(x, y)
    return run


def _indexed(side: int, fns: list[Run]) -> Run:
    """A run that picks ``fns[x.ndim]`` (``side`` 0) or ``fns[y.ndim]`` (``side`` 1)."""
    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        try:
            fn = fns[y.ndim if side else x.ndim]
        except IndexError:
            raise RankMismatch from None
        return fn(x, y)
    return run


def _unseen(x: Any, y: Any) -> Any:
    raise RankMismatch


# -- the one definition of the fast path ----------------------------------------------------

#: What every front end does with an entry: run it; on a refusal, the plan's recovery
#: or the checked path; count a hit of the plan cache (the statistics read as if every
#: call had looked its plan up). ``{g}`` prefixes the names :func:`_written` puts in the
#: front end's module: globals, because closure variables cost a front end 50-75 ns a call
#: (measured against the code before: batch_dot 1.036x, dot_general 1.054x; as globals 1.00x).
_RUN_ENTRY = """\
        try:
            out = entry.run(x, y)
        except _fastpath_RECOVERABLE as err:
            out = _fastpath_after_fast(entry, x, y, err, {g}hits)
            if out is not None:
                return out
        except _fastpath_AxisdotError:  # the plan's own refusal (sizes under a reshape): a hit
            next({g}hits)
            raise
        else:
            next({g}hits)
            return out
"""

#: A function ``name(x, y, key[, extra])``, its entry found in a table by ``key``.
_FUNCTION = """\
def {name}({params}):
    try:
        entry = {g}table[{key}]
    except (KeyError, TypeError):  # not seen yet, or unhashable (a list)
        entry = _fastpath_NO_ENTRY  # (the checked path is called outside this block: no chained KeyError)
    if entry.key is {key}{extra_test}:
{run_entry}\
    return {g}checked({params})
"""

#: A module's ``forward(self, x, y=None)``, its entry held by the module.
_FORWARD = """\
def forward(self, x, y=None):
    if _fastpath_is_dynamo_compiling():  # first: dynamo then guards on nothing the eager path reads
        return {g}checked(self, x, y)
    entry = self.{attribute}
    if entry is not None and y is not None:
{run_entry}\
    return {g}checked(self, x, y)
"""

_SHARED = {
    "_fastpath_NO_ENTRY": FastEntry(object(), _unseen, {}),  # an entry no key is
    "_fastpath_RECOVERABLE": RECOVERABLE,
    "_fastpath_AxisdotError": AxisdotError,
    "_fastpath_after_fast": after_fast,
    # dynamo folds it to True; 26 ns a call against is_compiling's 70 (which also covers export)
    "_fastpath_is_dynamo_compiling": torch.compiler.is_dynamo_compiling,
}


def _written(template: str, checked: Callable[..., Any], table: Any, hits: Hits, **fields: str) -> Callable[..., Any]:
    """The function ``template`` writes, defined in the checked function's module (so
    doctest finds its docstring there) with its table, hit counter and checked path as
    globals of that module named ``_fastpath_<qualname>_...``; its text kept for
    tracebacks; named and documented as ``checked``."""
    prefix = f"_fastpath_{checked.__qualname__.replace('.', '_')}_"
    source = template.format(g=prefix, run_entry=_RUN_ENTRY.format(g=prefix), **fields)
    filename = f"<axisdot fast path of {checked.__module__}.{checked.__qualname__}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = checked.__globals__
    module.update(_SHARED)
    module.update({prefix + "table": table, prefix + "hits": hits.counter, prefix + "checked": checked})
    scope: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), module, scope)  # noqa: S102 - our own template
    (fn,) = scope.values()
    fn.__defaults__ = checked.__defaults__
    functools.update_wrapper(fn, checked)
    checked.__doc__ = None  # moved to the front end: doctest would run it twice
    return fn


def fast_path(table: dict[Any, FastEntry], hits: Hits) -> Callable[[F], F]:
    """Decorate a front end's checked path ``(x, y, key[, extra])``: the front end then
    first looks ``key`` up in ``table`` and runs the entry written for that very object
    (with ``extra`` the very object the entry was written for), counting ``hits``."""
    def build(checked: F) -> F:
        params = list(inspect.signature(checked).parameters)
        if not 3 <= len(params) <= 4 or params[:2] != ["x", "y"]:
            raise TypeError(f"fast_path: {checked.__name__}{inspect.signature(checked)} is not (x, y, key[, extra])")
        extra_test = f" and entry.extra is {params[3]}" if len(params) == 4 else ""
        return _written(_FUNCTION, checked, table, hits, name=checked.__name__,  # type: ignore[return-value]
                        params=", ".join(params), key=params[2], extra_test=extra_test)
    return build


def fast_forward(attribute: str, hits: Hits) -> Callable[[F], F]:
    """Decorate a module's checked ``forward(self, x, y=None)``: the module's forward
    then first runs the entry the module holds in ``attribute`` (None: none yet), for
    two operands given apart, outside dynamo's tracing."""
    def build(checked: F) -> F:
        return _written(_FORWARD, checked, None, hits, attribute=attribute)  # type: ignore[return-value]
    return build
