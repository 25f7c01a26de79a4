"""Comparison helpers shared by the test files."""
from __future__ import annotations

import math

import numpy as np
import torch

from axisdot.testing.reference import to_numpy


def tolerance(dtype: torch.dtype, n_terms: int, bound: float) -> float:
    """Absolute tolerance for a sum of ``n_terms`` products of values within ``bound``."""
    if not (dtype.is_floating_point or dtype.is_complex):
        return 0.0
    eps = torch.finfo(dtype).eps
    return 4 * eps * (n_terms + 1) * bound * bound


def assert_close_to_reference(got: torch.Tensor, ref: np.ndarray, dtype: torch.dtype,
                              n_terms: int, bound: float = 2.0) -> None:
    assert tuple(got.shape) == ref.shape, f"shape {tuple(got.shape)} != reference {ref.shape}"
    atol = tolerance(dtype, n_terms, bound)
    if atol == 0.0:
        np.testing.assert_array_equal(to_numpy(got), ref)
    else:
        np.testing.assert_allclose(to_numpy(got), ref, rtol=0, atol=atol)


def contracted_terms(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    return math.prod(shape[a] for a in axes)
