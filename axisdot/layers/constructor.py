"""The line that builds a layer, ``axisdot.EinsumDense('abc,cd->abd', output_shape=(6, 16))``,
rendered from the layer's Keras config: one function for the module's ``repr``,
``explain``'s report and ``axisdot port``'s report, so the three always agree.

Torch-free: it reads only the config (``get_config()`` of the module, or a Keras
config). Arguments left at Keras's defaults are left out; initializers are left out
(they do not change what a ported layer computes).

>>> constructor_line("EinsumDense", {"equation": "abc,cd->abd", "output_shape": [6, 16], "bias_axes": "d",
...                                  "activation": "gelu"})
"axisdot.EinsumDense('abc,cd->abd', output_shape=(6, 16), bias_axes='d', activation='gelu')"
>>> constructor_line("MultiHeadAttention", {"num_heads": 2, "key_dim": 4, "attention_axes": [1]})
'axisdot.MultiHeadAttention(num_heads=2, key_dim=4, attention_axes=(1,))'
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

__all__ = ["constructor_args", "constructor_line"]


def _as_tuple(value: Any) -> Any:
    """A config's lists (JSON has no tuples) as the tuples the constructor takes."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value


def _dot(config: Mapping[str, Any]) -> list[str]:
    return [f"axes={config['axes']!r}", f"normalize={config.get('normalize', False)!r}"]


def _dense(config: Mapping[str, Any]) -> list[str]:
    args = [repr(config["equation"]), f"output_shape={tuple(config['output_shape'])!r}"]
    if config.get("bias_axes"):
        args.append(f"bias_axes={config['bias_axes']!r}")
    if config.get("activation") not in (None, "linear"):
        args.append(f"activation={config['activation']!r}")
    if config.get("lora_rank"):
        args.append(f"lora_rank={config['lora_rank']}, lora_alpha={config['lora_alpha']}")
    return args


#: MultiHeadAttention's optional arguments, in the order shown, with Keras's defaults
#: (``value_dim``'s default is ``key_dim``; ``key_use_bias`` is in a config only where
#: it differs from ``use_bias``)
_ATTENTION_DEFAULTS = (("value_dim", None), ("dropout", 0.0), ("use_bias", True), ("output_shape", None),
                       ("use_gate", False), ("sliding_window", None), ("key_use_bias", None))


def _attention(config: Mapping[str, Any]) -> list[str]:
    args = [f"num_heads={config['num_heads']}", f"key_dim={config['key_dim']}"]
    for key, default in _ATTENTION_DEFAULTS:
        value = config.get(key)
        if value is not None and value != (config["key_dim"] if key == "value_dim" else default):
            args.append(f"{key}={_as_tuple(value)!r}")
    if config.get("attention_axes") is not None:
        args.append(f"attention_axes={_as_tuple(config['attention_axes'])!r}")
    return args


_RENDERERS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "Dot": _dot, "EinsumDense": _dense, "MultiHeadAttention": _attention}


def constructor_args(class_name: str, config: Mapping[str, Any]) -> list[str]:
    """The constructor's arguments for a layer of ``class_name`` with this config, each
    as it is written in the call (``"output_shape=(6, 16)"``)."""
    return _RENDERERS[class_name](config)


def constructor_line(class_name: str, config: Mapping[str, Any]) -> str:
    """``axisdot.<class_name>(<arguments>)``: the line that builds the layer."""
    return f"axisdot.{class_name}({', '.join(constructor_args(class_name, config))})"
