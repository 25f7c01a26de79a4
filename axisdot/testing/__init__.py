"""axisdot's testing kit, for property-testing contraction code.

* :mod:`axisdot.testing.strategies`: hypothesis strategies for valid and invalid
  problems of every front end, and for tensors;
* :mod:`axisdot.testing.reference`: slow, obviously-correct NumPy references;
* :func:`assert_matches`: run a function on a problem, compare with the reference,
  fail with a readable report.

Needs the ``testing`` extra: ``pip install "axisdot[testing]"`` (hypothesis and NumPy).
"""
from .assertions import assert_matches, problem_tensors, tolerance

__all__ = ["assert_matches", "problem_tensors", "tolerance"]
