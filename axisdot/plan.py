"""Compile a :class:`~axisdot.spec.Spec` into a :class:`Plan`: the PyTorch calls that run it.

A plan is built once per spec (see :mod:`axisdot.cache`) and then called many times.
It lays the inputs out (:func:`axisdot.layout.layout`, from the spec alone) and runs the
first lowering of :data:`axisdot.lowerings.LOWERINGS` that applies to that layout;
its :attr:`Plan.kind` says which. Every lowering is exact, and none materializes the
broadcast product of the inputs. When a torch call refuses the operands,
:meth:`Plan.recover` says why in axisdot's words, or promotes mixed dtypes and runs
again. A plan's ``fast`` is its ``run`` for callers that have not checked the ranks:
``run`` itself where bmm / mm / mv on views refuse every other pair of ranks, else
``run`` behind one ``ndim`` test (:class:`RankMismatch`).
"""
from __future__ import annotations

import functools

import torch

from .errors import AxisdotError, OperandError, ShapeError, with_context
from .layout import Layout, layout
from .lowerings import Kind, RankMismatch, Run, choose
from .operands import check_same_device, check_tensor, promoted, unsupported_dtype
from .spec import Spec, output_shape
from .vector_dot import BMM_MIN_ROW, COLUMN_ROW, SHORT_ROW, SMALL_PRODUCT_BYTES

__all__ = ["Plan", "Run", "RECOVERABLE", "RankMismatch", "Kind", "Layout", "SMALL_PRODUCT_BYTES", "BMM_MIN_ROW"]

#: The exceptions a torch call raises for operands it cannot take; a front end hands
#: them to :meth:`Plan.recover`.
RECOVERABLE = (RuntimeError, TypeError, AttributeError)


class Plan:
    """A compiled two-operand contraction: ``plan(x, y)``, or ``plan.run(x, y)`` with
    :meth:`recover` on failure (what the front ends do, to keep the hot path short).

    ``refuse_bool`` is the Keras front ends' rule (bool tensors are refused, as
    ``torch.matmul`` refuses them); einsum steps pass False and follow torch.
    """

    def __init__(self, spec: Spec, call: object, refuse_bool: bool = True) -> None:
        self.spec = spec
        self.call = call
        self.refuse_bool = refuse_bool
        self.layout = layout(spec)
        lowering = choose(self.layout)
        #: what the plan runs; ``lowering`` says it in a few words
        self.kind: Kind = lowering.kind
        self.rank_proof = lowering.rank_proof
        self._build_fast = lowering.build_fast
        self.lowering, self.run = lowering.build(self)

    @property
    def elementwise(self) -> bool:
        """Whether ``run`` multiplies elementwise (a vector dot or an outer product),
        which promotes mixed dtypes where the matrix products refuse them."""
        return self.kind.elementwise

    @functools.cached_property
    def fast(self) -> Run:
        """``run`` for a caller that has not checked the ranks (a front end's table keyed
        by ``axes`` alone, see :mod:`axisdot.cache`): it raises :class:`RankMismatch` for
        operands of other ranks than the plan's. Made on first use (einsum steps never
        need it), then an attribute. A vector dot over one axis checks the ranks inside its
        own shape test."""
        if self.rank_proof:
            return self.run
        if self._build_fast is not None:
            return self._build_fast(self)
        run, x_rank, y_rank = self.run, self.spec.x_rank, self.spec.y_rank

        def fast(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if x.ndim == x_rank and y.ndim == y_rank:
                return run(x, y)
            raise RankMismatch
        return fast

    def __repr__(self) -> str:
        return f"<axisdot.Plan {self.describe()} for {self.call}>"

    def describe(self) -> str:
        """The PyTorch calls this plan makes, in a few words."""
        if self.kind in (Kind.VECTOR_DOT, Kind.ROW_DOT):
            return (f"elementwise product and sum (above {SMALL_PRODUCT_BYTES // 2**20} MiB of product: on the CPU "
                    f"for float32/float64 rows of {COLUMN_ROW} or fewer a sum column by column, one bmm of row "
                    f"views for rows shorter than {SHORT_ROW} or of {BMM_MIN_ROW} or more, else in chunks of "
                    f"at most {SMALL_PRODUCT_BYTES // 2**20} MiB; one bmm elsewhere)")
        return self.lowering

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        try:
            return self.run(x, y)
        except RECOVERABLE as err:
            return self.recover(x, y, err)

    # -- when a call fails ---------------------------------------------------------------

    def check_operands(self, x: object, y: object) -> None:
        """Refuse non-tensors, bool tensors (front ends only) and mixed devices."""
        check_tensor(x, "x", self.call)
        check_tensor(y, "y", self.call)
        if self.refuse_bool:
            for name, t in (("x", x), ("y", y)):
                if t.dtype == torch.bool:  # type: ignore[attr-defined]
                    raise OperandError(
                        f"{self.call}: {name} has dtype torch.bool, which PyTorch cannot multiply as a "
                        f"matrix; cast it first, e.g. {name}.int() or {name}.float()"
                    )
        check_same_device([x, y], ("x", "y"), self.call)  # type: ignore[list-item]

    def fail(self, x: torch.Tensor, y: torch.Tensor) -> AxisdotError:
        """The error for operands whose sizes do not fit (the shape rule's own words)."""
        try:
            output_shape(self.spec, tuple(x.shape), tuple(y.shape))
        except ShapeError as err:
            return with_context(err, [f"in {self.call}"])
        raise AssertionError("fail() called on operands that fit")  # pragma: no cover

    def recover(self, x: torch.Tensor, y: torch.Tensor, err: BaseException) -> torch.Tensor:
        """After ``run`` raised ``err``: raise axisdot's error for the operands, or, when
        their dtypes differ, run again in their common dtype. Other failures (out of
        memory, say) are raised as they are."""
        self.check_operands(x, y)
        try:
            output_shape(self.spec, tuple(x.shape), tuple(y.shape))
        except ShapeError as shape_err:
            raise with_context(shape_err, [f"in {self.call}"]) from None
        if x.dtype != y.dtype:
            return self(*promoted([x, y]))
        refusal = unsupported_dtype(err, [x, y], self.call)
        if refusal is not None:
            raise refusal from err
        raise err
