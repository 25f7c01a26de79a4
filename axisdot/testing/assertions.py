"""``assert_matches``: run a function on a drawn problem and judge it against the reference."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

from . import reference as ref
from .strategies import EinsumProblem, Problem, contracted_axes

__all__ = ["tolerance", "assert_matches", "problem_tensors"]

_REFERENCES: dict[str, Callable[..., np.ndarray]] = {
    "dot": lambda x, y, p: ref.reference_dot(x, y, p.axes, p.normalize),
    "batch_dot": lambda x, y, p: ref.reference_batch_dot(x, y, p.axes),
    "tensordot": lambda x, y, p: ref.reference_tensordot(x, y, p.axes),
    "dot_general": lambda x, y, p: ref.reference_dot_general(x, y, p.axes, p.batch),
}


def tolerance(dtype: torch.dtype, n_terms: int, bound: float = 1.0) -> float:
    """Absolute tolerance for a sum of ``n_terms`` products of values within ``bound``:
    ``4 * eps(dtype) * (n_terms + 1) * bound**2``; zero (exact) for integer dtypes."""
    if not (dtype.is_floating_point or dtype.is_complex):
        return 0.0
    return 4 * torch.finfo(dtype).eps * (n_terms + 1) * bound * bound


def problem_tensors(problem: Union[Problem, EinsumProblem], *, dtype: torch.dtype = torch.float64,
                    seed: int = 0, bound: float = 1.0) -> list[torch.Tensor]:
    """Operands of the problem's shapes, uniform in ``[-bound, bound]`` (integers for int
    dtypes), from a fixed seed."""
    shapes = problem.shapes if isinstance(problem, EinsumProblem) else (problem.x_shape, problem.y_shape)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for shape in shapes:
        if dtype.is_floating_point or dtype.is_complex:
            t = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
            out.append(t.to(dtype))
        else:
            out.append(torch.randint(-int(bound), int(bound) + 1, shape, generator=gen, dtype=dtype))
    return out


def _n_terms(problem: Union[Problem, EinsumProblem]) -> int:
    """How many products one output element sums (the contracted sizes multiplied)."""
    if isinstance(problem, EinsumProblem):
        return _einsum_terms(problem)
    xr = len(problem.x_shape)
    if problem.func in ("dot", "batch_dot"):
        axes = contracted_axes(problem)[0]
    elif problem.func == "tensordot" and isinstance(problem.axes, int):
        axes = list(range(xr - problem.axes, xr))
    else:
        first = problem.axes[0]
        axes = [a % xr for a in (first if isinstance(first, (list, tuple)) else [first])]
    return math.prod(problem.x_shape[a] for a in axes)


def _einsum_terms(problem: EinsumProblem) -> int:
    if problem.sublists is not None:
        terms = [list(t) for t in problem.sublists[0]]
        output = None if problem.sublists[1] is None else list(problem.sublists[1])
    else:
        terms, output = ref.string_terms(problem.equation)
    sizes: dict[Any, int] = {}
    ell = 1
    for term, shape in zip(terms, problem.shapes):
        if Ellipsis in term:
            k = term.index(Ellipsis)
            width = len(shape) - (len(term) - 1)
            ell = max(ell, math.prod(shape[k:k + width]))
            shape = shape[:k] + (None,) + shape[k + width:]  # type: ignore[operator]
        for lab, n in zip(term, shape):
            if lab is not Ellipsis:
                sizes[lab] = max(sizes.get(lab, 1), n)
    if output is None:
        once = [lab for lab in sizes if sum(t.count(lab) for t in terms) == 1]
        output = once + [Ellipsis]
    return math.prod(n for lab, n in sizes.items() if lab not in output) * (1 if Ellipsis in output else ell)


def _describe(problem: Union[Problem, EinsumProblem]) -> str:
    if isinstance(problem, EinsumProblem):
        return f"  call:      {problem!r}"
    lines = [f"  call:      {problem!r}", f"  shapes:    x {problem.x_shape}, y {problem.y_shape}"]
    try:
        from ..explanation import explain

        kwargs = problem.kwargs
        e = explain(problem.x_shape, problem.y_shape, mode=problem.func, **kwargs)
        lines.append(f"  equation:  {e.equation}   (expected output shape {e.output_shape})")
    except Exception as err:  # noqa: BLE001 - the report must not hide the real failure
        lines.append(f"  equation:  unavailable ({type(err).__name__})")
    return "\n".join(lines)


def assert_matches(fn: Callable[..., Any], problem: Union[Problem, EinsumProblem], *,
                   dtype: torch.dtype = torch.float64, seed: int = 0, bound: float = 1.0,
                   operands: Optional[list[torch.Tensor]] = None, atol: Optional[float] = None) -> None:
    """Run ``fn`` on ``problem`` and compare it with the reference; fail with a report.

    ``fn`` takes the front end's signature (``fn(x, y, axes=...)``, ``fn(x, y,
    contract=..., batch=...)`` for dot_general, ``fn(equation, *operands)`` for einsum
    problems). Operands are made by :func:`problem_tensors` unless given. The default
    tolerance is the widest :func:`tolerance` the operands' dtypes need (exact when all
    are integers).
    """
    ops = operands if operands is not None else problem_tensors(problem, dtype=dtype, seed=seed, bound=bound)
    if isinstance(problem, EinsumProblem):
        got = fn(*problem.args(ops))
        expected = ref.reference_einsum(*problem.args(ops))
    else:
        got = problem.call(fn, ops[0], ops[1])
        expected = _REFERENCES[problem.func](ops[0], ops[1], problem)
    got_np = ref.to_numpy(got)
    head = f"{getattr(fn, '__name__', fn)!s} does not match the reference\n{_describe(problem)}"
    if got_np.shape != expected.shape:
        raise AssertionError(f"{head}\n  shape:     got {got_np.shape}, expected {expected.shape}")
    n_terms = _n_terms(problem)
    limit = max((tolerance(t.dtype, n_terms, bound) for t in ops), default=tolerance(dtype, n_terms, bound)) \
        if atol is None else atol
    if expected.size == 0:
        return
    diff = np.abs(got_np - expected)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    if diff[worst] > limit or np.isnan(diff).any():
        raise AssertionError(
            f"{head}\n  worst at:  {tuple(int(i) for i in worst)}: got {got_np[worst].item()!r}, expected "
            f"{expected[worst].item()!r} (|diff| {diff[worst]:.3g} > tolerance {limit:.3g}, dtype {ops[0].dtype if ops else dtype})"
        )
