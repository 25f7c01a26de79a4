"""Keras's initializers, for the fresh weights of EinsumDense and MultiHeadAttention.

:func:`get` reads any initializer a Keras config can hold: a name (``"glorot_uniform"``,
``"GlorotUniform"``, ``"normal"``), a serialized initializer (``{"class_name":
"TruncatedNormal", "config": {"stddev": 0.02}}``), a live Keras initializer, or an
:class:`Initializer`. :meth:`Initializer.fill_` draws with Keras 3's formulas
(``keras/src/initializers``): truncated normals are cut at two standard deviations
(VarianceScaling divides by :data:`TRUNCATED_STDDEV`, the standard deviation of a unit
normal cut there), fans are :func:`compute_fans`'s, and VarianceScaling on an
EinsumDense kernel takes the kernel's input and output axes as Keras's layer passes
them. A ``seed`` makes the draw reproducible (a ``torch.Generator`` seeded with it);
the numbers are axisdot's, not those of Keras's backend. Weights loaded from Keras
never depend on any of this.

>>> init = get({"class_name": "TruncatedNormal", "config": {"stddev": 0.02, "seed": 1}})
>>> init.name, init.arguments["stddev"], get_config(init)["class_name"]
('TruncatedNormal', 0.02, 'TruncatedNormal')
>>> compute_fans((16, 4, 8)), compute_fans((16, 4, 8), input_axes=(0,), output_axes=(1, 2))
((64, 128), (16, 32))
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

from ..errors import ArgumentError, AxisdotTypeError

__all__ = ["Initializer", "TRUNCATED_STDDEV", "compute_fans", "fill_", "get", "get_config", "refuse_training_arguments"]

#: The standard deviation of a unit normal truncated to (-2, 2), as Keras's VarianceScaling has it.
TRUNCATED_STDDEV = 0.87962566103423978

_AXES = {"seed": None, "input_axes": None, "output_axes": None}

#: Keras's class names -> their arguments and defaults (Keras 3's constructors).
DEFAULTS: dict[str, dict[str, Any]] = {
    "RandomNormal": {"mean": 0.0, "stddev": 0.05, "seed": None},
    "TruncatedNormal": {"mean": 0.0, "stddev": 0.05, "seed": None},
    "RandomUniform": {"minval": -0.05, "maxval": 0.05, "seed": None},
    "VarianceScaling": {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", **_AXES},
    "GlorotUniform": dict(_AXES), "GlorotNormal": dict(_AXES), "HeUniform": dict(_AXES),
    "HeNormal": dict(_AXES), "LecunUniform": dict(_AXES), "LecunNormal": dict(_AXES),
    "Orthogonal": {"gain": 1.0, "seed": None},
    "Constant": {"value": 0.0}, "Zeros": {}, "Ones": {}, "Identity": {"gain": 1.0},
}

#: The VarianceScaling each named family is: (scale, mode, distribution).
FAMILIES = {
    "GlorotUniform": (1.0, "fan_avg", "uniform"), "GlorotNormal": (1.0, "fan_avg", "truncated_normal"),
    "HeUniform": (2.0, "fan_in", "uniform"), "HeNormal": (2.0, "fan_in", "truncated_normal"),
    "LecunUniform": (1.0, "fan_in", "uniform"), "LecunNormal": (1.0, "fan_in", "truncated_normal"),
}

_ALIASES = {"normal": "RandomNormal", "uniform": "RandomUniform", "one": "Ones", "zero": "Zeros",
            "identityinitializer": "Identity", "orthogonalinitializer": "Orthogonal"}
_LOOKUP = {**{name.lower(): name for name in DEFAULTS}, **_ALIASES}
_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


@dataclass(frozen=True)
class Initializer:
    """A Keras initializer: its class name and every argument (defaults filled in)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def fill_(self, t: torch.Tensor, input_axes: Optional[Sequence[int]] = None,
              output_axes: Optional[Sequence[int]] = None, where: str = "initializer") -> torch.Tensor:
        """Fill ``t`` in place as Keras's initializer fills a weight of its shape.
        ``input_axes`` / ``output_axes`` are the EinsumDense kernel's (used by the
        VarianceScaling family unless the initializer names its own, as Keras does)."""
        checked = get(self, where)  # a hand-made Initializer is checked as a config is
        with torch.no_grad():
            _FILLS[_family(checked.name)](t, checked, input_axes, output_axes, where)
        return t


def compute_fans(shape: Sequence[int], input_axes: Optional[Sequence[int]] = None,
                 output_axes: Optional[Sequence[int]] = None) -> tuple[int, int]:
    """``(fan_in, fan_out)`` exactly as Keras's ``compute_fans``: the products of the
    given axes' sizes when both are given; else a vector's size, a matrix's rows and
    columns, and for more axes the last two times the product of the others."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def get(identifier: Any, where: str = "initializer") -> Optional[Initializer]:
    """The :class:`Initializer` for anything Keras's ``initializers.get`` takes from a
    config: a name, a serialized initializer, a live Keras initializer (read through
    its config) or an Initializer; None stays None (see :func:`fill_`)."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer):  # checked again: its fields may have been written by hand
        return _make(identifier.name, identifier.arguments, where)
    if isinstance(identifier, str):
        return _make(identifier, {}, where)
    if isinstance(identifier, Mapping):
        name = identifier.get("class_name")
        config = identifier.get("config") or {}
        if not isinstance(name, str) or not isinstance(config, Mapping):
            raise ArgumentError(f"{where}={identifier!r}: a serialized initializer is "
                                f"{{'class_name': 'TruncatedNormal', 'config': {{...}}}}")
        return _make(name, config, where)
    config = getattr(identifier, "get_config", None)
    if callable(config) and type(identifier).__module__.startswith("keras"):
        return _make(type(identifier).__name__, config(), where)
    raise AxisdotTypeError(f"{where} must be a Keras initializer (a name such as 'glorot_uniform', a config dict "
                           f"or a keras.initializers object), got {type(identifier).__name__}; to fill the weights "
                           f"another way, build the layer and assign them under torch.no_grad()")


def fill_(initializer: Optional[Initializer], t: torch.Tensor, input_axes: Optional[Sequence[int]] = None,
          output_axes: Optional[Sequence[int]] = None, where: str = "initializer") -> torch.Tensor:
    """``initializer.fill_(...)``; None is what Keras's ``add_weight`` does with no
    initializer: glorot uniform with the fans of the weight's shape (no axes)."""
    if initializer is None:
        return _GLOROT.fill_(t, where=where)
    return initializer.fill_(t, input_axes, output_axes, where)


def get_config(initializer: Optional[Initializer]) -> Any:
    """What a Keras layer config holds for it: the snake-case name when every argument
    is its default, else Keras's serialized form (None stays None)."""
    if initializer is None:
        return None
    if initializer.arguments == DEFAULTS[initializer.name]:
        return _snake(initializer.name)
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in initializer.arguments.items()}
    return {"module": "keras.initializers", "class_name": initializer.name, "config": config, "registered_name": None}


def refuse_training_arguments(owner: str, **arguments: Any) -> None:
    """Refuse Keras's regularizers and constraints (None passes): a torch module adds
    nothing to a loss and steps no optimizer, so they would silently do nothing."""
    for name, value in arguments.items():
        if value is None:
            continue
        if "constraint" in name:
            fix = ("apply it after each optimizer step (under torch.no_grad(), e.g. p.clamp_(...)), or "
                   "reparametrize the weight with torch.nn.utils.parametrize")
        elif name == "activity_regularizer":
            fix = "add the penalty on the layer's output to your loss"
        else:
            fix = "add the penalty on the weight to your loss, or use the optimizer's weight_decay"
        raise ArgumentError(f"{owner}: {name}={value!r} has no meaning in PyTorch (a module's weights are not "
                            f"penalized or constrained by the module): {fix}; pass {name}=None")


# -- reading configs -----------------------------------------------------------------------


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _make(name: str, config: Mapping[str, Any], where: str) -> Initializer:
    canonical = _LOOKUP.get(name.replace("_", "").lower())
    if canonical is None:
        hint = " (STFT needs scipy's windows and a rank-3 kernel: load the weights instead)" \
            if name.replace("_", "").lower() in ("stft", "stftinitializer") else ""
        raise ArgumentError(f"{where}={name!r} is not a Keras initializer axisdot knows{hint}; use one of "
                            f"{', '.join(_snake(n) for n in DEFAULTS)}, or a config dict of one of them")
    defaults = DEFAULTS[canonical]
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise ArgumentError(f"{where}: {canonical} takes the arguments {sorted(defaults) or 'none'}, got "
                            f"{', '.join(map(repr, unknown))}")
    arguments = {**defaults, **config}
    for key, value in arguments.items():
        arguments[key] = _CHECKS.get(key, _number)(value, f"{where}: {canonical}({key}={value!r})")
    if canonical == "VarianceScaling":
        _check_variance_scaling(arguments, f"{where}: VarianceScaling")
    return Initializer(canonical, arguments)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ArgumentError(f"{where}: the value must be a finite number")
    return float(value)


def _seed(value: Any, where: str) -> Optional[int]:
    if isinstance(value, Mapping):  # a serialized keras.random.SeedGenerator
        value = (value.get("config") or {}).get("seed")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ArgumentError(f"{where}: a seed is None or an int")
    return value


def _axes(value: Any, where: str) -> Optional[tuple[int, ...]]:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or any(isinstance(a, bool) or not isinstance(a, int) for a in value):
        raise ArgumentError(f"{where}: the axes are None or a list of ints")
    return tuple(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ArgumentError(f"{where}: the value must be a str")
    return value


_CHECKS: dict[str, Callable[[Any, str], Any]] = {"seed": _seed, "input_axes": _axes, "output_axes": _axes,
                                                 "mode": _text, "distribution": _text}


def _check_variance_scaling(arguments: dict[str, Any], where: str) -> None:
    if arguments["scale"] <= 0:
        raise ArgumentError(f"{where}(scale={arguments['scale']!r}): the scale must be positive")
    if arguments["mode"] not in _MODES:
        raise ArgumentError(f"{where}(mode={arguments['mode']!r}): the mode is one of {', '.join(_MODES)}")
    distribution = arguments["distribution"].lower()
    distribution = "truncated_normal" if distribution == "normal" else distribution  # Keras's alias
    if distribution not in _DISTRIBUTIONS:
        raise ArgumentError(f"{where}(distribution={arguments['distribution']!r}): the distribution is one of "
                            f"{', '.join(_DISTRIBUTIONS)} ('normal' means truncated_normal)")
    arguments["distribution"] = distribution


# -- filling -------------------------------------------------------------------------------

Fill = Callable[[torch.Tensor, Initializer, Optional[Sequence[int]], Optional[Sequence[int]], str], None]


def _family(name: str) -> str:
    return "VarianceScaling" if name in FAMILIES else name


def _generator(init: Initializer, t: torch.Tensor) -> Optional[torch.Generator]:
    seed = init.arguments.get("seed")
    return None if seed is None else torch.Generator(device=t.device).manual_seed(seed & 0xFFFFFFFF)


def _truncated_normal_(t: torch.Tensor, mean: float, stddev: float, generator: Optional[torch.Generator]) -> None:
    """Keras's truncated normal: a normal cut at two standard deviations from the mean."""
    torch.nn.init.trunc_normal_(t, mean, stddev, mean - 2 * stddev, mean + 2 * stddev, generator=generator)


def _random_normal(t: torch.Tensor, init: Initializer, *_: Any) -> None:
    t.normal_(init.arguments["mean"], init.arguments["stddev"], generator=_generator(init, t))


def _truncated(t: torch.Tensor, init: Initializer, *_: Any) -> None:
    _truncated_normal_(t, init.arguments["mean"], init.arguments["stddev"], _generator(init, t))


def _random_uniform(t: torch.Tensor, init: Initializer, *_: Any) -> None:
    t.uniform_(init.arguments["minval"], init.arguments["maxval"], generator=_generator(init, t))


def _axes_in_range(axes: Optional[Sequence[int]], t: torch.Tensor, where: str) -> None:
    if axes is not None and any(not -t.ndim <= a < t.ndim for a in axes):
        raise ArgumentError(f"{where}: axes {tuple(axes)} are out of range for a weight of shape {tuple(t.shape)}")


def _variance_scaling(t: torch.Tensor, init: Initializer, input_axes: Optional[Sequence[int]],
                      output_axes: Optional[Sequence[int]], where: str) -> None:
    args = init.arguments
    scale, mode, distribution = FAMILIES.get(init.name) or (args["scale"], args["mode"], args["distribution"])
    if args["input_axes"] is not None and args["output_axes"] is not None:  # the initializer's own win
        input_axes, output_axes = args["input_axes"], args["output_axes"]
    _axes_in_range(input_axes, t, where)
    _axes_in_range(output_axes, t, where)
    fan_in, fan_out = compute_fans(t.shape, input_axes, output_axes)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    scale /= max(1.0, fan)
    generator = _generator(init, t)
    if distribution == "truncated_normal":
        _truncated_normal_(t, 0.0, math.sqrt(scale) / TRUNCATED_STDDEV, generator)
    elif distribution == "untruncated_normal":
        t.normal_(0.0, math.sqrt(scale), generator=generator)
    else:
        limit = math.sqrt(3.0 * scale)
        t.uniform_(-limit, limit, generator=generator)


def _orthogonal(t: torch.Tensor, init: Initializer, _in: Any, _out: Any, where: str) -> None:
    """Keras's Orthogonal: rows are every axis but the last, the QR of a normal matrix
    with the signs of R's diagonal, transposed when there are fewer rows than columns."""
    if t.ndim < 2:
        raise ArgumentError(f"{where}: Orthogonal fills weights of two or more axes, this one has shape "
                            f"{tuple(t.shape)}")
    rows, cols = math.prod(t.shape[:-1]), t.shape[-1]
    work = torch.float64 if t.dtype == torch.float64 else torch.float32  # QR needs float32 or float64
    a = torch.empty((max(rows, cols), min(rows, cols)), dtype=work, device=t.device)
    a.normal_(generator=_generator(init, t))
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    if rows < cols:
        q = q.mT
    t.copy_(init.arguments["gain"] * q.reshape(t.shape))


def _constant(t: torch.Tensor, init: Initializer, *_: Any) -> None:
    t.fill_(init.arguments["value"])


def _zeros(t: torch.Tensor, *_: Any) -> None:
    t.zero_()


def _ones(t: torch.Tensor, *_: Any) -> None:
    t.fill_(1.0)


def _identity(t: torch.Tensor, init: Initializer, _in: Any, _out: Any, where: str) -> None:
    if t.ndim != 2:
        raise ArgumentError(f"{where}: Identity fills 2-D weights only (as Keras's), this one has shape "
                            f"{tuple(t.shape)}; use an equation whose kernel has two axes, or another initializer")
    t.copy_(init.arguments["gain"] * torch.eye(*t.shape, dtype=t.dtype, device=t.device))


_GLOROT = Initializer("GlorotUniform", dict(_AXES))

_FILLS: dict[str, Fill] = {
    "RandomNormal": _random_normal, "TruncatedNormal": _truncated, "RandomUniform": _random_uniform,
    "VarianceScaling": _variance_scaling, "Orthogonal": _orthogonal, "Constant": _constant,
    "Zeros": _zeros, "Ones": _ones, "Identity": _identity,
}
