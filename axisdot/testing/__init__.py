"""axisdot's testing kit: NumPy references (:mod:`axisdot.testing.reference`) and
hypothesis strategies (:mod:`axisdot.testing.strategies`) for contraction code.

Needs the ``testing`` extra: ``pip install "axisdot[testing]"`` (hypothesis and NumPy).
"""
