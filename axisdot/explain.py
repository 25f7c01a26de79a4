"""``axisdot.explain``: what a contraction runs, as a plain object with a printable face.

It goes through the same parse, shape rule and plan cache as the call it explains, so
the report cannot disagree with what runs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence, Union

import torch

from .api import rank_and_shape
from .cache import compiled
from .einsum import EinsumPlan
from .equation import letters
from .errors import AxisdotError, AxisdotTypeError, EquationError, with_context
from .legacy import check_semantics
from .normalize import normalize_code, normalize_mode
from .plan import Plan
from .render import aligned, shape_text
from .spec import Spec, output_shape

__all__ = ["Explanation", "Operand", "Step", "explain"]

_DEFAULT_AXES = {"dot": -1, "batch_dot": None, "tensordot": 2}
_UNSET: Any = object()
Shape = Optional[tuple[Optional[int], ...]]


@dataclass(frozen=True)
class Operand:
    """One input (or the output): its shape (None when only the rank is known), the
    einsum letter of each axis and each axis's role: batch, contracted or free."""

    name: str
    shape: Shape
    letters: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    """One pairwise step of an n-ary einsum's contraction path."""

    operands: tuple[int, ...]
    equation: str
    flops: Optional[int]
    lowering: str


@dataclass(frozen=True)
class Explanation:
    """What a contraction runs. ``str()`` gives a report; ``to_dict()`` JSON-ready data."""

    mode: str
    call: str
    equation: Optional[str]
    inputs: tuple[Operand, ...]
    output: Operand
    output_shape: Shape
    reshape: Optional[tuple[Shape, Shape]]
    normalize: Union[bool, str]
    lowering: str
    flops: Optional[int]
    largest_intermediate: Optional[int]
    path: tuple[Step, ...]
    cached: bool
    code: str

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        return tuple(op.shape for op in self.inputs)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shapes"] = [None if s is None else list(s) for s in self.input_shapes]
        return _plain(data)

    def __str__(self) -> str:
        return "\n".join(_report(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _roles(spec: Spec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    out = []
    for side, rank in ((0, spec.x_rank), (1, spec.y_rank)):
        role = ["free"] * rank
        for a in spec.batch[side]:
            role[a] = "batch"
        for a in spec.contract[side]:
            role[a] = "contracted"
        out.append(tuple(role))
    return out[0], out[1]


def _known(shape: Shape) -> bool:
    return shape is not None and all(n is not None for n in shape)


def _flops(sizes: dict[str, int], used: str, contracted: bool, terms: int = 2) -> int:
    """opt_einsum's count: every index combination costs one operation per extra
    operand, plus one for the addition when something is summed."""
    return math.prod(sizes[c] for c in set(used)) * (max(1, terms - 1) + (1 if contracted else 0))


def _two_operand(x: Any, y: Any, mode: str, axes: Any, normalize: Any, contract: Any, batch: Any) -> Explanation:
    from .api import _key

    (xr, xs), (yr, ys) = rank_and_shape(x, "x"), rank_and_shape(y, "y")
    if mode == "dot_general":
        if contract is None:
            raise AxisdotTypeError("explain(mode='dot_general') needs contract=((x axes), (y axes))")
        key: tuple = ("dot_general", xr, yr, _key(contract), _key(batch if batch is not None else ((), ())))
    else:
        key = (mode, xr, yr, _key(axes))
    before = compiled.cache_info().hits
    plan: Plan = compiled(key)  # type: ignore[assignment]  # a two-operand key gives a Plan
    cached = compiled.cache_info().hits > before
    spec = plan.spec
    out_shape = output_shape(spec, xs, ys) if xs is not None and ys is not None else None
    x_sub, y_sub, o_sub = letters(spec)
    x_roles, y_roles = _roles(spec)
    equation = f"{x_sub},{y_sub}->{o_sub}"
    pre = out_shape[:-1] if (out_shape is not None and spec.expands) else out_shape
    reshape = (pre, out_shape) if spec.expands else None
    flops = largest = None
    if _known(xs) and _known(ys):
        sizes = dict(zip(x_sub + y_sub, xs + ys))  # type: ignore[operator]
        flops = _flops(sizes, x_sub + y_sub, bool(spec.contract[0]))
        largest = math.prod(out_shape)  # type: ignore[arg-type]
    xa, ya = ("x", "y")
    norm = normalize_mode(normalize)
    if norm is not None:
        xa, ya = normalize_code("x", spec.contract[0], norm), normalize_code("y", spec.contract[1], norm)
    code = f'torch.einsum("{equation}", {xa}, {ya})' + (".unsqueeze(-1)" if spec.expands else "")
    o_roles = tuple("batch" if c in x_sub and c in y_sub else "free" for c in o_sub)
    return Explanation(
        mode=mode, call=plan.call[:-1] + f", normalize={normalize!r})" if norm else plan.call, equation=equation,
        inputs=(Operand("x", xs, x_sub, x_roles), Operand("y", ys, y_sub, y_roles)),
        output=Operand("out", pre, o_sub, o_roles), output_shape=out_shape, reshape=reshape,
        normalize=norm or False, lowering=plan.describe(), flops=flops, largest_intermediate=largest,
        path=(), cached=cached, code=code,
    )


def _einsum(equation: str, operands: Sequence[Any]) -> Explanation:
    shapes = []
    for i, op in enumerate(operands):
        rank, shape = rank_and_shape(op, f"operand {i}")
        if not _known(shape):
            raise EquationError(f"explain({equation!r}): operand {i} needs a full shape (a tensor or sizes), got rank {rank}")
        shapes.append(shape)
    key = ("einsum", equation, tuple(shapes))
    before = compiled.cache_info().hits
    plan: EinsumPlan = compiled(key)  # type: ignore[assignment]
    cached = compiled.cache_info().hits > before
    parsed = plan.parsed
    sizes = {c: n for sub, shape in zip(parsed.inputs, shapes) for c, n in zip(sub, shape)}
    out_shape = tuple(sizes[c] for c in parsed.output)
    inputs = tuple(
        Operand(f"operand {i}", tuple(shape), sub, tuple("free" if c in parsed.output else "contracted" for c in sub))
        for i, (sub, shape) in enumerate(zip(parsed.inputs, shapes))
    )
    steps = []
    for inds, _fn, step_eq, lowering in plan.steps:
        lhs, out = step_eq.split("->")
        summed = any(c not in out for c in lhs.replace(",", ""))
        steps.append(Step(inds, step_eq, _flops(sizes, lhs.replace(",", ""), summed, lhs.count(",") + 1), lowering))
    names = ", ".join("abcdefghijklmnopqrstuvwxyz"[i] if i < 26 else f"op{i}" for i in range(len(shapes)))
    return Explanation(
        mode="einsum", call=f"axisdot.einsum({parsed.equation!r})", equation=parsed.equation, inputs=inputs,
        output=Operand("out", out_shape, parsed.output, tuple("free" for _ in parsed.output)),
        output_shape=out_shape, reshape=None, normalize=False, lowering="opt_einsum path, pairwise plans",
        flops=sum(s.flops or 0 for s in steps), largest_intermediate=int(plan.info.largest_intermediate),
        path=tuple(steps), cached=cached, code=f'torch.einsum("{parsed.equation}", {names})',
    )


def _legacy(x: Any, y: Any, axes: Any) -> Explanation:
    """batch_dot under Keras 2.2.4's rules: shapes from a run on meta tensors."""
    from .legacy import legacy_batch_dot, legacy_steps

    (xr, xs), (yr, ys) = rank_and_shape(x, "x"), rank_and_shape(y, "y")
    steps = legacy_steps(axes, xr, yr)
    out = flops = largest = None
    if _known(xs) and _known(ys):
        meta = [torch.empty(s, device="meta") for s in (xs, ys)]  # no memory, no compute
        out = tuple(legacy_batch_dot(meta[0], meta[1], axes).shape)
        xp = tuple(xs) + (1,) * steps.pad_x  # type: ignore[operator]
        if steps.kind == "matmul":  # one multiply-add per output element and summed index
            largest = math.prod(out)
            flops = 2 * largest * xp[-2 if steps.adjoint_x else -1]
        else:  # the elementwise product, then its sum
            largest = math.prod(torch.broadcast_shapes(xp[::-1] if steps.kind == "transposed sum" else xp,
                                                       tuple(ys) + (1,) * steps.pad_y))  # type: ignore[operator]
            flops = 2 * largest
    kind = {"matmul": "torch.matmul", "sum": "elementwise product and sum",
            "transposed sum": "transposed elementwise product and sum"}[steps.kind]
    roles = lambda r: tuple("batch" if i == 0 else "free" for i in range(r))  # noqa: E731
    return Explanation(
        mode="batch_dot", call=f"axisdot.batch_dot(x, y, axes={axes!r}, semantics='legacy')", equation=None,
        inputs=(Operand("x", xs, "", roles(xr)), Operand("y", ys, "", roles(yr))),
        output=Operand("out", out, "", roles(len(out)) if out else ()), output_shape=out, reshape=None,
        normalize=False, lowering=f"legacy Keras 2.2.4 rules: {kind}", flops=flops, largest_intermediate=largest,
        path=(), cached=False, code=steps.code(),
    )


def explain(*args: Any, mode: Optional[str] = None, axes: Any = _UNSET, normalize: Union[bool, str] = False,
            contract: Any = None, batch: Any = None, semantics: str = "keras3") -> Explanation:
    """Explain a contraction without running it.

    ``explain(x, y, axes, mode="dot")`` for the two-operand front ends (``mode`` one of
    ``dot``, ``batch_dot``, ``tensordot``, ``dot_general``; ``dot_general`` takes
    ``contract=`` and ``batch=``), with x and y as tensors, shapes or ranks; or
    ``explain(equation, *operands_or_shapes)`` for einsum. ``semantics="legacy"`` (mode
    ``batch_dot``) explains Keras 2.2.4's batch_dot instead.

    >>> e = explain((32, 64, 10, 128), (32, 128, 32, 15), (3, 1))
    >>> e.equation, e.output_shape
    ('bijk,bklm->bijlm', (32, 64, 10, 32, 15))
    >>> e.code
    'torch.einsum("bijk,bklm->bijlm", x, y)'
    """
    try:
        if args and isinstance(args[0], str):
            if mode not in (None, "einsum"):
                raise AxisdotTypeError(f"explain: an equation is explained in mode 'einsum', not {mode!r}")
            return _einsum(args[0], args[1:])
        mode = mode or "dot"
        if mode not in ("dot", "batch_dot", "tensordot", "dot_general"):
            raise AxisdotTypeError(f"explain: mode must be dot, batch_dot, tensordot or dot_general, got {mode!r}")
        if len(args) not in (2, 3):
            raise AxisdotTypeError(f"explain: expected x, y and optionally axes, got {len(args)} positional arguments")
        if len(args) == 3:
            if axes is not _UNSET:
                raise AxisdotTypeError("explain: axes given twice (positionally and by keyword)")
            axes = args[2]
        if axes is _UNSET:
            axes = _DEFAULT_AXES.get(mode)
        if normalize is not False and mode != "dot":
            raise AxisdotTypeError(f"explain: normalize applies to mode 'dot', not {mode!r}")
        if semantics != "keras3":
            if mode != "batch_dot" or check_semantics(semantics) != "legacy":
                raise AxisdotTypeError(f"explain: semantics={semantics!r} applies to mode 'batch_dot' only")
            return _legacy(args[0], args[1], axes)
        return _two_operand(args[0], args[1], mode, axes, normalize, contract, batch)
    except AxisdotError as err:
        raise with_context(err, [f"in axisdot.explain(mode={mode!r})"]) from None


def _fmt(n: Optional[int]) -> str:
    return "?" if n is None else (f"{n:,}" if n < 10**7 else f"{n:.3g}")


def _marked(op: Operand) -> list[str]:
    return [c + ("*" if r == "contracted" else "") for c, r in zip(op.letters, op.roles)]


def _report(e: Explanation) -> list[str]:
    status = "cached" if e.cached else "compiled now"
    if e.equation is None:
        lines = [e.call, f"  rule      {e.lowering}", ""]
    else:
        lines = [e.call, f"  equation  {e.equation}    ({e.lowering}; plan {status})", ""]
    width = max(len(op.name) for op in (*e.inputs, e.output)) + 2
    for op in (*e.inputs, e.output):
        if not op.letters:  # no einsum letters (legacy rules): the shape alone
            lines.append(f"  {op.name.ljust(width)}{shape_text(op.shape) if op.shape is not None else 'unknown'}")
            continue
        top, bottom = aligned(op.shape, _marked(op))
        lines += [f"  {op.name.ljust(width)}{top}", f"  {' ' * width}{bottom}"]
    if e.reshape is not None:
        lines.append(f"  then reshape {shape_text(e.reshape[0]) if e.reshape[0] else '(batch,)'} -> "
                     f"{shape_text(e.reshape[1]) if e.reshape[1] else '(batch, 1)'}: Keras returns a rank-1 result as (batch, 1)")
    lines.append("")
    if e.mode != "einsum" and e.equation is not None:
        roles: dict[str, list[str]] = {}
        for op in e.inputs:
            for c, r in zip(op.letters, op.roles):
                roles.setdefault(r, []).append(c) if c not in roles.get(r, []) else None
        lines.append("  axes      " + "   ".join(f"{r} {' '.join(roles[r])}" for r in ("batch", "contracted", "free") if r in roles)
                     + "   (* contracted)")
    if e.normalize:
        rule = {"keras3": "Keras 3, epsilon 1e-7", "tf_keras": "tf.keras 2 / tf.math.l2_normalize, epsilon 1e-12",
                "torch": "torch.nn.functional.normalize, eps 1e-12"}[str(e.normalize)]
        lines.append(f"  normalize each input is L2-normalized over its contracted axes first ({rule})")
    if e.path:
        lines.append("  path      (chosen by opt_einsum)")
        for i, s in enumerate(e.path, 1):
            ops = ",".join(map(str, s.operands))
            lines.append(f"    {i}. operands {ops:<6} {s.equation:<24} {_fmt(s.flops):>14} FLOPs   {s.lowering}")
    if e.flops is None:
        lines.append("  cost      unknown: give shapes, not ranks")
    else:
        lines.append(f"  cost      {_fmt(e.flops)} FLOPs; largest intermediate {_fmt(e.largest_intermediate)} elements")
    lines.append(f"  torch     {e.code}")
    return lines
