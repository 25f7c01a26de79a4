"""A pytest plugin, registered through the ``pytest11`` entry point when axisdot is
installed. It only adds fixtures and a hypothesis settings profile named
``axisdot-ci`` (derandomized, no deadline); it changes nothing for a project that does
not ask for them, and it loads with nothing but pytest and axisdot's own dependencies
(no NumPy, no hypothesis, no torch). Load the profile with
``--hypothesis-profile=axisdot-ci`` or ``settings.load_profile("axisdot-ci")``.
"""
from __future__ import annotations

from typing import Any

import pytest

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the testing extra is not installed: no profile; the fixtures say what to install
    settings = None
else:
    settings.register_profile(
        "axisdot-ci", derandomize=True, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _kit(name: str) -> Any:
    from . import kit

    try:
        return kit(name)
    except ImportError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def axisdot_strategies() -> Any:
    """:mod:`axisdot.testing.strategies`: hypothesis strategies for contraction problems."""
    return _kit("strategies")


@pytest.fixture(scope="session")
def axisdot_reference() -> Any:
    """:mod:`axisdot.testing.reference`: slow, obviously-correct references."""
    return _kit("reference")


@pytest.fixture(scope="session")
def assert_matches() -> Any:
    """:func:`axisdot.testing.assert_matches`."""
    return _kit("assertions").assert_matches
