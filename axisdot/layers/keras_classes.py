"""Which live Keras classes ``from_keras`` ports: Keras's own ``Dot``, ``EinsumDense`` and
``MultiHeadAttention``, and subclasses that compute the same thing.

A subclass that overrides how the layer computes (``call``, ``build``,
``_compute_attention``, ...) is a different computation: ported as its base, it would
give other numbers (Moonshine's attention applies rotary embeddings inside ``call``;
XLNet's runs two streams). Such a class is refused, naming what it overrides, unless it
is one of :data:`KNOWN`, whose overrides axisdot reproduces: KerasHub's
``CachedMultiHeadAttention`` (its decoding ``cache``, supported by
:meth:`axisdot.MultiHeadAttention.forward`) and Whisper's (its key projection has no
bias). Keras itself is not imported here: the layer's class carries everything.
"""
from __future__ import annotations

from typing import Any

from ..errors import ArgumentError

__all__ = ["COMPUTING", "KNOWN", "check_class"]

#: per Keras class, the methods whose override changes what the layer computes
COMPUTING = {
    "Dot": ("call", "build", "_merge_function", "compute_output_shape"),
    "EinsumDense": ("call", "build"),
    "MultiHeadAttention": ("call", "build", "_compute_attention", "_compute_attention_mask", "_masked_softmax",
                           "_build_attention"),
}

_CACHED = "keras_hub.src.layers.modeling.cached_multi_head_attention.CachedMultiHeadAttention"
#: subclasses (module.qualname) whose overrides (method: the class that may define it) axisdot reproduces
KNOWN = {
    _CACHED: {"call": _CACHED},
    "keras_hub.src.models.whisper.whisper_cached_multi_head_attention.WhisperCachedMultiHeadAttention": {
        "call": _CACHED,
        "build": "keras_hub.src.models.whisper.whisper_cached_multi_head_attention.WhisperCachedMultiHeadAttention"},
}


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _keras_base(layer: Any, kind: str) -> type:
    """The Keras class ``kind`` among the layer's bases (the first class of that name
    defined in a ``keras`` module)."""
    for cls in type(layer).__mro__:
        if cls.__name__ == kind and cls.__module__.split(".")[0] == "keras":
            return cls
    raise ArgumentError(f"{kind}.from_keras: a {type(layer).__name__} is not a keras.layers.{kind}")


def check_class(layer: Any, kind: str) -> None:
    """Refuse ``layer`` unless its class computes what Keras's ``kind`` computes (see the
    module docstring), naming the class and what it overrides."""
    base = _keras_base(layer, kind)
    allowed = KNOWN.get(_name(type(layer)), {})
    overridden = []
    for method in COMPUTING[kind]:
        owner = next((cls for cls in type(layer).__mro__ if method in vars(cls)), None)
        if owner is None or owner is base or any(owner is b for b in base.__mro__):
            continue
        if allowed.get(method) != _name(owner):
            overridden.append(f"{method} (in {owner.__qualname__})")
    if overridden:
        raise ArgumentError(f"{kind}.from_keras: {type(layer).__qualname__} is a subclass of Keras's {kind} that "
                            f"overrides {', '.join(overridden)}: it computes something else, and porting it as a "
                            f"{kind} would give other numbers")
