"""``axisdot.explain``: what a contraction runs, as a plain object with a printable face.

It goes through the same parse, shape rule and plan cache as the call it explains, so
the report cannot disagree with what runs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence, Union

import torch

from . import cache as _cache
from .axes import as_key
from .einsum_parse import quote
from .einsum_path import optimize_key, step_cost
from .errors import ArgumentError, AxisdotError, AxisdotTypeError, EquationError, with_context
from .legacy import check_semantics
from .letters import letters
from .normalize import normalize_code, normalize_mode
from .operands import rank_and_shape
from .render import aligned, shape_text
from .slicing import explain_slicing, parse_max_memory
from .spec import PartialShape, Spec, output_shape

__all__ = ["Explanation", "Operand", "PathStep", "explain", "build_explanation"]

_DEFAULT_AXES = {"dot": -1, "batch_dot": None, "tensordot": 2}
_UNSET: Any = object()
OperandShape = Optional[PartialShape]  # None: only the rank is known


@dataclass(frozen=True)
class Operand:
    """One input (or the output): its shape (None when only the rank is known), the
    einsum letter of each axis and each axis's role: batch, contracted or free."""

    name: str
    shape: OperandShape
    letters: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class PathStep:
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
    output_shape: OperandShape
    reshape: Optional[tuple[OperandShape, OperandShape]]
    normalize: Union[bool, str]
    lowering: str
    flops: Optional[int]
    largest_intermediate: Optional[int]
    path: tuple[PathStep, ...]
    cached: bool
    code: str
    #: einsum: the peak of temporaries a forward call allocates (bytes, for ``memory_dtype``)
    #: beyond its operands and output, sliced under ``max_memory`` where that is given
    peak_memory: Optional[int] = None
    memory_dtype: Optional[str] = None
    #: einsum under ``max_memory``: the letters cut and into how many pieces, the number
    #: of slices and the FLOPs the slicing adds
    sliced: tuple[tuple[str, int], ...] = ()
    slices: int = 1
    extra_flops: int = 0
    #: einsum: who chose the path ("opt_einsum", "axisdot's one-time search ...", ...)
    path_origin: str = "opt_einsum"

    @property
    def input_shapes(self) -> tuple[OperandShape, ...]:
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


def _known(shape: OperandShape) -> bool:
    return shape is not None and all(n is not None for n in shape)


_PLANS = {"dot": _cache.dot_plan, "batch_dot": _cache.batch_dot_plan, "tensordot": _cache.tensordot_plan,
          "dot_general": _cache.dot_general_plan}


def _two_operand(x: Any, y: Any, mode: str, axes: Any, normalize: Any, contract: Any, batch: Any) -> Explanation:
    call = f"axisdot.explain(mode={mode!r})"
    (xr, xs), (yr, ys) = rank_and_shape(x, "x", call), rank_and_shape(y, "y", call)
    if mode == "dot_general":
        if contract is _UNSET:
            raise AxisdotTypeError("explain(mode='dot_general') needs contract=((x axes), (y axes))")
        key: tuple = (xr, yr, as_key(contract), as_key(((), ()) if batch is _UNSET else batch))
    else:
        key = (xr, yr, as_key(axes))
    plan, cached = _cache.lookup(_PLANS[mode], *key)
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
        flops = step_cost(f"{x_sub},{y_sub}->{o_sub}", sizes)
        largest = math.prod(out_shape)  # type: ignore[arg-type]
    xa, ya = ("x", "y")
    norm = normalize_mode(normalize)
    if norm is not None:
        xa, ya = normalize_code("x", spec.contract[0], norm), normalize_code("y", spec.contract[1], norm)
    code = f'torch.einsum("{equation}", {xa}, {ya})' + (".unsqueeze(-1)" if spec.expands else "")
    o_roles = tuple("batch" if c in x_sub and c in y_sub else "free" for c in o_sub)
    return Explanation(
        mode=mode, call=str(plan.call)[:-1] + f", normalize={normalize!r})" if norm else str(plan.call),
        equation=equation,
        inputs=(Operand("x", xs, x_sub, x_roles), Operand("y", ys, y_sub, y_roles)),
        output=Operand("out", pre, o_sub, o_roles), output_shape=out_shape, reshape=reshape,
        normalize=norm or False, lowering=plan.describe(), flops=flops, largest_intermediate=largest,
        path=(), cached=cached, code=code,
    )


def _torch_line(sub_equation: str, n: int) -> str:
    """A line of plain PyTorch (or opt_einsum, beyond torch's 52 letters) for the equation."""
    names = ", ".join("abcdefghijklmnopqrstuvwxyz"[i] if i < 26 else f"op{i}" for i in range(n))
    labels = sorted(set(sub_equation) - set(",->"))
    if all(c.isascii() for c in labels):
        return f'torch.einsum("{sub_equation}", {names})'
    if len(labels) <= 52:
        table = {c: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[i] for i, c in enumerate(labels)}
        return f'torch.einsum("{"".join(table.get(c, c) for c in sub_equation)}", {names})'
    return f'opt_einsum.contract("{sub_equation}", {names}, backend="torch")'


def _einsum(equation: str, operands: Sequence[Any], optimize: Any, memory_limit: Any,
            max_memory: Any = None) -> Explanation:
    shapes = []
    call = f"axisdot.explain({equation!r})"
    for i, op in enumerate(operands):
        rank, shape = rank_and_shape(op, f"operand {i}", call)
        if not _known(shape):
            raise EquationError(f"explain({equation!r}): operand {i} needs a full shape (a tensor or sizes), got rank {rank}")
        shapes.append(tuple(shape))  # type: ignore[arg-type]
    key = optimize_key(optimize, f"einsum({equation!r})")
    bound = parse_max_memory(max_memory, quote(equation))
    ranks = tuple(len(s) for s in shapes)
    plan, cached = _cache.lookup(_cache.einsum_sized, equation, tuple(shapes), key, memory_limit)
    if 0 < len(shapes) <= 2 and key == "auto" and memory_limit is None:
        ranked, cached = _cache.lookup(_cache.einsum_ranked, equation, ranks)
    sub = plan.sub
    sizes = {c: n for term, shape in zip(sub.inputs, shapes) for c, n in zip(term, shape) if n != 1}
    sizes.update({c: 1 for c in "".join(sub.inputs) if c not in sizes})
    out_shape = tuple(sizes[c] for c in sub.output)
    inputs = tuple(
        Operand(f"operand {i}", shape, term, tuple("free" if c in sub.output else "contracted" for c in term))
        for i, (term, shape) in enumerate(zip(sub.inputs, shapes))
    )
    steps = tuple(PathStep(s.operands, s.equation, step_cost(s.equation, sizes),
                           label + "".join(f"; copies {t} to lay it out" for t in s.copied))
                  for s, (_fn, label) in zip(plan.steps, plan.lowerings))
    largest = max((math.prod(sizes[c] for c in s.equation.split("->")[1]) for s in plan.steps), default=1)
    dtype = next((op.dtype for op in operands if isinstance(op, torch.Tensor)), torch.float32)
    slicing = explain_slicing(plan, 2**62 if bound is None else bound, dtype)
    return Explanation(
        mode="einsum", call=f"axisdot.einsum({sub.equation!r})", equation=sub.equation, inputs=inputs,
        output=Operand("out", out_shape, sub.output, tuple("free" for _ in sub.output)),
        output_shape=out_shape, reshape=None, normalize=False, lowering="opt_einsum path, pairwise plans",
        flops=sum(s.flops or 0 for s in steps), largest_intermediate=largest,
        path=steps, cached=cached, code=_torch_line(sub.equation, len(shapes)), peak_memory=slicing.peak,
        memory_dtype=str(dtype).replace("torch.", ""), sliced=slicing.cuts, slices=slicing.slices,
        extra_flops=slicing.extra_flops, path_origin=plan.path_origin,
    )


def _legacy(x: Any, y: Any, axes: Any) -> Explanation:
    """batch_dot under Keras 2.2.4's rules: shapes from a run on meta tensors."""
    from .legacy import legacy_batch_dot, legacy_steps

    call = "axisdot.explain(mode='batch_dot', semantics='legacy')"
    (xr, xs), (yr, ys) = rank_and_shape(x, "x", call), rank_and_shape(y, "y", call)
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


def build_explanation(*args: Any, mode: Optional[str] = None, axes: Any = _UNSET,
                      normalize: Union[bool, str] = False, contract: Any = _UNSET, batch: Any = _UNSET,
                      semantics: str = "keras3", optimize: Any = "auto", memory_limit: Any = None,
                      max_memory: Any = None) -> Explanation:
    """:func:`explain` without the context line its errors end with (the command line
    adds its own, in the terms of the command)."""
    if args and isinstance(args[0], torch.nn.Module):  # a layer explains itself
        own = getattr(args[0], "explain", None)
        if not callable(own):
            raise AxisdotTypeError(f"explain: cannot explain a {type(args[0]).__name__}; give a Dot, EinsumDense or "
                                   f"MultiHeadAttention module, x and y (with axes), or an einsum equation with operands")
        return own(*args[1:])  # type: ignore[no-any-return]
    if args and isinstance(args[0], str):
        if mode not in (None, "einsum"):
            raise ArgumentError(f"explain: an equation is explained in mode 'einsum', not {mode!r}")
        return _einsum(args[0], args[1:], optimize, memory_limit, max_memory)
    mode = mode or "dot"
    if not isinstance(mode, str):
        raise AxisdotTypeError(f"explain: mode must be a str, got {type(mode).__name__}")
    if mode not in _PLANS:
        raise ArgumentError(f"explain: mode must be dot, batch_dot, tensordot or dot_general, got {mode!r}")
    if len(args) not in (2, 3):
        raise AxisdotTypeError(f"explain: expected x, y and optionally axes, got {len(args)} positional arguments")
    if len(args) == 3:
        if axes is not _UNSET:
            raise AxisdotTypeError("explain: axes given twice (positionally and by keyword)")
        axes = args[2]
    if axes is _UNSET:
        axes = _DEFAULT_AXES.get(mode)
    if normalize is not False and mode != "dot":
        raise ArgumentError(f"explain: normalize applies to mode 'dot', not {mode!r}")
    if (contract is not _UNSET or batch is not _UNSET) and mode != "dot_general":
        raise ArgumentError(f"explain: contract= and batch= apply to mode 'dot_general', not {mode!r}")
    if semantics != "keras3":
        if mode != "batch_dot" or check_semantics(semantics) != "legacy":
            raise ArgumentError(f"explain: semantics={semantics!r} applies to mode 'batch_dot' only")
        return _legacy(args[0], args[1], axes)
    return _two_operand(args[0], args[1], mode, axes, normalize, contract, batch)


def explain(*args: Any, mode: Optional[str] = None, axes: Any = _UNSET, normalize: Union[bool, str] = False,
            contract: Any = _UNSET, batch: Any = _UNSET, semantics: str = "keras3", optimize: Any = "auto",
            memory_limit: Any = None, max_memory: Any = None) -> Explanation:
    """Explain a contraction without running it.

    ``explain(layer, *input_shapes)`` for a :class:`~axisdot.Dot`,
    :class:`~axisdot.EinsumDense` or :class:`~axisdot.MultiHeadAttention` module (the
    contractions it runs, its weights and FLOPs: a
    :class:`~axisdot.layer_explanation.LayerExplanation`);
    ``explain(x, y, axes, mode="dot")`` for the two-operand front ends (``mode`` one of
    ``dot``, ``batch_dot``, ``tensordot``, ``dot_general``; ``dot_general`` takes
    ``contract=`` and ``batch=`` exactly as :func:`axisdot.dot_general` does), with x
    and y as tensors, shapes or ranks; or ``explain(equation, *operands_or_shapes)`` for
    einsum (with ``optimize=``, ``memory_limit=`` and ``max_memory=`` as
    :func:`axisdot.einsum` takes them; the report gives the peak of temporaries and,
    under ``max_memory``, the slices). ``semantics="legacy"`` (mode ``batch_dot``) explains Keras 2.2.4's batch_dot.
    It accepts and refuses exactly what the call it explains accepts and refuses.

    >>> e = explain((32, 64, 10, 128), (32, 128, 32, 15), (3, 1))
    >>> e.equation, e.output_shape
    ('bijk,bklm->bijlm', (32, 64, 10, 32, 15))
    >>> e.code
    'torch.einsum("bijk,bklm->bijlm", x, y)'
    """
    try:
        return build_explanation(*args, mode=mode, axes=axes, normalize=normalize, contract=contract, batch=batch,
                                 semantics=semantics, optimize=optimize, memory_limit=memory_limit,
                                 max_memory=max_memory)
    except AxisdotError as err:
        raise with_context(err, [f"in axisdot.explain(mode={mode!r})"]) from err.__cause__


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
        lines.append(f"  path      (chosen by {e.path_origin})")
        for i, s in enumerate(e.path, 1):
            ops = ",".join(map(str, s.operands))
            lines.append(f"    {i}. operands {ops:<6} {s.equation:<24} {_fmt(s.flops):>14} FLOPs   {s.lowering}")
    if e.flops is None:
        if any(op.shape is None for op in e.inputs):
            lines.append("  cost      unknown: give shapes, not ranks")
        else:
            lines.append("  cost      unknown: some sizes are unknown (?); give them to count FLOPs")
    else:
        lines.append(f"  cost      {_fmt(e.flops)} FLOPs; largest intermediate {_fmt(e.largest_intermediate)} elements")
    if e.peak_memory is not None:
        lines.append(f"  memory    peak of temporaries {e.peak_memory:,} bytes ({e.memory_dtype})" + (
            "" if not e.sliced else f"; sliced {' '.join(f'{c}/{k}' for c, k in e.sliced)}: {e.slices:,} slices, "
            f"{_fmt(e.extra_flops)} extra FLOPs"))
    lines.append(f"  torch     {e.code}")
    return lines
