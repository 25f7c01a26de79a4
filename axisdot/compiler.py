"""torch.compile integration, registered lazily.

axisdot's front ends are registered with ``torch.compiler.allow_in_graph``: dynamo
records each call as it is and AOTAutograd traces it down to aten ops, so dynamo never
walks axisdot's Python (no guards on its caches, no graph breaks) and a compiled call
costs what the equivalent ``torch.einsum`` costs. Registering imports ``torch._dynamo``,
which costs seconds, so it is not done when axisdot is imported: :func:`register` does
it at once if dynamo is already loaded, and otherwise when it first is (a post-import
hook on ``torch._dynamo``: ``torch.compile`` and ``torch.export`` load it before they
trace anything).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import warnings
from types import ModuleType
from typing import Any, Callable, Optional, Sequence

__all__ = ["register", "registered"]

_DYNAMO = "torch._dynamo"
_pending: list[Callable[..., Any]] = []
_done: list[Callable[..., Any]] = []
_lock = threading.RLock()


def _apply() -> None:
    with _lock:
        fns, _pending[:] = list(_pending), []
    if not fns:
        return
    try:
        import torch

        for fn in fns:
            torch.compiler.allow_in_graph(fn)
    except Exception as err:  # noqa: BLE001 - never break the user's import of dynamo
        warnings.warn(f"axisdot could not register its functions with torch.compile ({err!r}); "
                      f"compiled code will trace into them instead", RuntimeWarning, stacklevel=2)
        return
    with _lock:
        _done.extend(fns)


def registered() -> tuple[Callable[..., Any], ...]:
    """The functions registered with dynamo so far."""
    return tuple(_done)


class _Loader(importlib.abc.Loader):
    """Runs the real loader of ``torch._dynamo``, then registers what is pending."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _uninstall()
        _apply()

    def __getattr__(self, name: str) -> Any:  # get_code, get_source, is_package, ...
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``torch._dynamo`` with the other finders and wraps its loader."""

    _busy = False

    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType] = None
                  ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != _DYNAMO or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader)
        return spec


_finder = _Finder()


def _uninstall() -> None:
    with _lock:
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)


def register(*fns: Callable[..., Any]) -> None:
    """Allow ``fns`` in torch.compile graphs: now if dynamo is loaded, else when it is."""
    with _lock:
        _pending.extend(fns)
        loaded = _DYNAMO in sys.modules and getattr(sys.modules[_DYNAMO], "allow_in_graph", None) is not None
        if not loaded and _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    if loaded:
        _apply()
