"""axisdot's testing kit, for property-testing contraction code.

* :mod:`axisdot.testing.strategies`: hypothesis strategies for valid and invalid
  problems of every front end, for Keras layer configurations, and for tensors;
* :mod:`axisdot.testing.reference`: slow, obviously-correct NumPy references;
* :func:`assert_matches`: run a function on a problem, compare with the reference,
  fail with a readable report.

Needs the ``testing`` extra: ``pip install "axisdot[testing]"`` (hypothesis and NumPy).
Importing this package needs neither: its names load when first used, so the pytest
plugin (:mod:`axisdot.testing.plugin`) loads in any environment.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["assert_matches", "problem_tensors", "tolerance"]

EXTRA_HINT = 'axisdot\'s testing kit needs the "testing" extra: pip install "axisdot[testing]"'


def kit(name: str) -> Any:
    """The kit's module ``name``, or an ImportError that says which extra to install."""
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError as err:
        if err.name in ("numpy", "hypothesis") or (err.name or "").split(".")[0] in ("numpy", "hypothesis"):
            raise ImportError(f"{EXTRA_HINT} ({err})", name=err.name) from err
        raise


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(kit("assertions"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
