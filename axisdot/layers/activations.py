"""Keras's activation functions by name, as PyTorch functions.

Each is Keras 3's definition (``keras/src/activations/activations.py``) with its default
arguments: ``"gelu"`` is the exact (erf) GELU, as Keras's default
``approximate=False``; ``"gelu_approximate"`` (an axisdot name) is Keras's
``gelu(x, approximate=True)``; ``"leaky_relu"`` has slope 0.2; ``"softmax"`` and
``"log_softmax"`` act on the last axis; ``"hard_sigmoid"`` is ``relu6(x + 3) / 6``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
import torch.nn.functional as F

from ..errors import ArgumentError, AxisdotTypeError

__all__ = ["ACTIVATIONS", "CODE", "code", "get", "name_of", "Activation"]

Activation = Callable[[torch.Tensor], torch.Tensor]


def _squareplus(x: torch.Tensor) -> torch.Tensor:
    return (x + torch.sqrt(x * x + 4.0)) / 2.0


def _sparse_plus(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= -1, torch.zeros_like(x), torch.where(x >= 1, x, (x + 1) ** 2 / 4))


def _sparse_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= -1, torch.zeros_like(x), torch.where(x >= 1, torch.ones_like(x), (x + 1) / 2))


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x + 3.0) / 6.0


# Named, module-level functions (never lambdas), so that a layer holding one pickles,
# deep-copies and goes through torch.save.

def linear(x: torch.Tensor) -> torch.Tensor:
    return x


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def gelu_approximate(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def hard_silu(x: torch.Tensor) -> torch.Tensor:
    return x * _hard_sigmoid(x)


def softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


def log_softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(x, dim=-1)


def glu(x: torch.Tensor) -> torch.Tensor:
    return F.glu(x, dim=-1)


#: Keras's names (and aliases) -> the same function in PyTorch.
ACTIVATIONS: dict[str, Activation] = {
    "linear": linear,
    "relu": F.relu,
    "relu6": F.relu6,
    "leaky_relu": leaky_relu,
    "elu": F.elu,
    "celu": F.celu,
    "selu": F.selu,
    "gelu": F.gelu,
    "gelu_approximate": gelu_approximate,
    "silu": F.silu,
    "swish": F.silu,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
    "hard_tanh": F.hardtanh,
    "tanh": torch.tanh,
    "tanh_shrink": F.tanhshrink,
    "soft_shrink": F.softshrink,
    "hard_shrink": F.hardshrink,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "squareplus": _squareplus,
    "sparse_plus": _sparse_plus,
    "sparse_sigmoid": _sparse_sigmoid,
    "exponential": torch.exp,
    "mish": F.mish,
    "log_sigmoid": F.logsigmoid,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "glu": glu,
}


#: A line of plain PyTorch for each activation, ``{}`` standing for its input.
CODE: dict[str, str] = {
    "linear": "{}", "relu": "torch.relu({})", "relu6": "torch.nn.functional.relu6({})",
    "leaky_relu": "torch.nn.functional.leaky_relu({}, 0.2)", "elu": "torch.nn.functional.elu({})",
    "celu": "torch.nn.functional.celu({})", "selu": "torch.selu({})", "gelu": "torch.nn.functional.gelu({})",
    "gelu_approximate": "torch.nn.functional.gelu({}, approximate='tanh')", "silu": "torch.nn.functional.silu({})",
    "swish": "torch.nn.functional.silu({})", "sigmoid": "torch.sigmoid({})", "tanh": "torch.tanh({})",
    "hard_tanh": "torch.nn.functional.hardtanh({})", "softplus": "torch.nn.functional.softplus({})",
    "softsign": "torch.nn.functional.softsign({})", "exponential": "torch.exp({})",
    "mish": "torch.nn.functional.mish({})", "log_sigmoid": "torch.nn.functional.logsigmoid({})",
    "softmax": "torch.softmax({}, dim=-1)", "log_softmax": "torch.log_softmax({}, dim=-1)",
    "glu": "torch.nn.functional.glu({}, dim=-1)", "tanh_shrink": "torch.nn.functional.tanhshrink({})",
    "soft_shrink": "torch.nn.functional.softshrink({})", "hard_shrink": "torch.nn.functional.hardshrink({})",
}


def code(name: str, inner: str) -> str:
    """The activation ``name`` applied to the expression ``inner``, as plain PyTorch
    where there is one line for it (else through axisdot's table)."""
    template = CODE.get(name, f"axisdot.layers.activations.ACTIVATIONS[{name!r}]({{}})")
    return template.format(inner)


def get(activation: Union[None, str, Activation, dict[str, Any]], where: str = "activation") -> tuple[str, Activation]:
    """``(name, function)`` for a Keras activation given as None (linear), a name, a
    Keras serialized activation (``{"class_name": "function", "config": "relu"}``) or a
    callable (kept as it is; its name is ``"custom"`` unless it has a known ``__name__``)."""
    if activation is None:
        return "linear", ACTIVATIONS["linear"]
    if isinstance(activation, dict):
        config = activation.get("config")
        activation = config if isinstance(config, str) else activation.get("class_name")
    if isinstance(activation, str):
        name = activation.lower()
        if name not in ACTIVATIONS:
            raise ArgumentError(f"{where}={activation!r} is not a Keras activation axisdot knows; use one of "
                                f"{', '.join(sorted(ACTIVATIONS))}, or pass a function")
        return name, ACTIVATIONS[name]
    if callable(activation):
        name = getattr(activation, "__name__", "custom")
        return (name if name in ACTIVATIONS else "custom"), activation
    raise AxisdotTypeError(f"{where} must be a name, a function or None, got {type(activation).__name__}")


def name_of(activation: Any) -> Optional[str]:
    """The Keras name of a Keras activation object (its ``__name__``), or None."""
    name = getattr(activation, "__name__", None)
    return name if name in ACTIVATIONS else None
