"""``axisdot.MultiHeadAttention``: ``keras.layers.MultiHeadAttention`` as a ``torch.nn.Module``.

The projections are :class:`~axisdot.layers.einsum_dense.EinsumDense` submodules named
and laid out as Keras's (``query_dense``, ``key_dense``, ``value_dense``,
``output_dense``, and ``gate_dense`` with ``use_gate``), so Keras weights copy in
directly. The attention equations come from :mod:`axisdot.attention_spec` and run as
planned contractions, except where Keras itself runs its fused kernel: inputs of rank
3 (one attention axis), no dropout and no scores returned go to
``torch.nn.functional.scaled_dot_product_attention``, with Keras's additive mask.
Each path computes what Keras's same path computes, masks and fully masked rows
included (the fused path averages the values there, the einsum path gives zeros).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter, is_lazy

from .. import cache as _cache
from ..attention_spec import AttentionSpec, analyze_attention, attention_axes_arg, check_heads
from ..dense_spec import output_shape_arg, parse_dense_equation
from ..errors import ArgumentError, AxisdotTypeError, OperandError, ShapeError
from ..layer_explanation import DensePart, LayerExplanation, attention_explanation, full_shape
from . import initializers
from .constructor import constructor_args, constructor_line
from .dense_plan import dense_part
from .einsum_dense import EinsumDense
from .keras_classes import check_class
from .keras_interop import load_keras_weights, policy_dtype

__all__ = ["MultiHeadAttention"]

Shape = Sequence[Optional[int]]


def _mask(value: Any, name: str) -> Optional[torch.Tensor]:
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        raise OperandError(f"MultiHeadAttention: {name} must be a torch.Tensor (bool, or nonzero for 'attend'), "
                           f"got {type(value).__name__}")
    return value if value.dtype == torch.bool else value != 0


def _causal(t: int, s: int, device: torch.device) -> torch.Tensor:
    """Keras's causal mask, ``(1, T, S)``: query i attends to keys 0 to i."""
    return torch.ones((1, t, s), dtype=torch.bool, device=device).tril()


def _large_negative_fused(dtype: torch.dtype) -> float:
    return -0.7 * (65500.0 if dtype == torch.float16 else 3.38953e38)


#: The projections, by the names Keras gives them (``gate_dense`` with ``use_gate`` only).
PROJECTIONS = ("query_dense", "key_dense", "value_dense", "gate_dense", "output_dense")


class PendingProjection(LazyModuleMixin, torch.nn.Module):
    """A projection of a :class:`MultiHeadAttention` that is not built yet: its equation
    waits for the inputs' ranks, but its ``kernel`` (and ``bias``) exist, uninitialized,
    so that an optimizer made now trains them and a state dict loads into them (as into
    ``torch.nn.LazyLinear``). The layer's build hands them to the
    :class:`~axisdot.layers.einsum_dense.EinsumDense` that replaces this module."""

    cls_to_become = None

    def __init__(self, use_bias: bool, device: Any = None, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__()
        self.kernel = UninitializedParameter(device=device, dtype=dtype)
        if use_bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)

    def initialize_parameters(self, *args: Any, **kwargs: Any) -> None:  # LazyModuleMixin, before forward
        raise OperandError("this projection is built by its MultiHeadAttention on the layer's first call: call the "
                           "MultiHeadAttention, or give it query_shape")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.initialize_parameters()


class MultiHeadAttention(LazyModuleMixin, torch.nn.Module):
    """``keras.layers.MultiHeadAttention`` of Keras 3, with Keras's weights and results.

    Constructor arguments are Keras's: ``num_heads``, ``key_dim``, ``value_dim``,
    ``dropout``, ``use_bias``, ``output_shape``, ``attention_axes`` (any input axes but
    the batch and the last, negative counting from the end), ``use_gate`` and
    ``sliding_window``. Give ``query_shape`` (and ``value_shape``, ``key_shape`` when
    they differ; batch axis first, None for unknown sizes) to build at construction;
    otherwise the layer is lazy, as ``torch.nn.LazyLinear``: its parameters exist,
    uninitialized, until the first call builds it (so an optimizer made before it
    trains them, ``.to()`` applies, and ``load_state_dict`` fills them).
    ``kernel_initializer`` / ``bias_initializer`` take any Keras initializer, as
    :class:`~axisdot.layers.einsum_dense.EinsumDense` does (each projection draws its
    own values; with a ``seed``, projections of one shape draw the same, as in Keras);
    Keras's regularizer and constraint arguments are accepted as None only.

    Call: ``(query, value, key=None, attention_mask=None, return_attention_scores=False,
    training=None, use_causal_mask=False, query_mask=None, value_mask=None,
    key_mask=None)``. Masks are bool (or nonzero for "attend") and broadcast as Keras
    broadcasts them: ``attention_mask`` ``(B, T, S)`` (with several attention axes,
    ``(B, T1, T2, S1, S2)``), per-input masks ``(B, T)`` / ``(B, S)``. ``training``
    defaults to the module's mode: dropout applies to the attention probabilities in
    training only. ``query_mask`` is applied as given (Keras reads it only from a
    Keras tensor's mask).

    >>> mha = MultiHeadAttention(num_heads=4, key_dim=8, query_shape=(None, 5, 16))
    >>> tuple(mha(torch.ones(2, 5, 16), torch.ones(2, 7, 16)).shape)
    (2, 5, 16)
    """

    def __init__(self, num_heads: int, key_dim: int, value_dim: Optional[int] = None, dropout: float = 0.0,
                 use_bias: bool = True, output_shape: Union[None, int, Sequence[int]] = None,
                 attention_axes: Union[None, int, Sequence[int]] = None, *, use_gate: bool = False,
                 sliding_window: Optional[int] = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, bias_constraint: Any = None,
                 query_shape: Optional[Shape] = None, value_shape: Optional[Shape] = None,
                 key_shape: Optional[Shape] = None, key_use_bias: Optional[bool] = None, device: Any = None,
                 dtype: Optional[torch.dtype] = None) -> None:
        super().__init__()
        check_heads(num_heads, key_dim, value_dim)
        initializers.refuse_training_arguments(
            "MultiHeadAttention", kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint)
        self.kernel_initializer = initializers.get(kernel_initializer, "MultiHeadAttention.kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "MultiHeadAttention.bias_initializer")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ArgumentError(f"MultiHeadAttention: dropout must be a float in [0, 1), got {dropout!r}")
        if sliding_window is not None and (isinstance(sliding_window, bool) or not isinstance(sliding_window, int)
                                           or sliding_window < 1):
            raise ArgumentError(f"MultiHeadAttention: sliding_window must be None or an int >= 1, got {sliding_window!r}")
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim if value_dim else key_dim
        self.dropout = float(dropout)
        self.use_bias, self.use_gate, self.sliding_window = bool(use_bias), bool(use_gate), sliding_window
        #: the key projection's bias, where it differs from the others' (Whisper's has none)
        self.key_use_bias = self.use_bias if key_use_bias is None else bool(key_use_bias)
        if output_shape is not None:
            output_shape = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
        self.output_shape: Optional[tuple[int, ...]] = output_shape  # type: ignore[assignment]
        self.attention_axes = attention_axes_arg(attention_axes)
        self._factory = {"device": device, "dtype": dtype}
        self.spec: Optional[AttentionSpec] = None
        for name in PROJECTIONS:
            pending = PendingProjection(self._has_bias(name), **self._factory) \
                if self.use_gate or name != "gate_dense" else None
            setattr(self, name, pending)
        if query_shape is not None:
            self.build(query_shape, value_shape if value_shape is not None else query_shape, key_shape)

    # -- building ------------------------------------------------------------------------

    def _has_bias(self, projection: str) -> bool:
        return self.key_use_bias if projection == "key_dense" else self.use_bias

    def _analyze(self, query_shape: Shape, value_shape: Shape, key_shape: Optional[Shape]) -> AttentionSpec:
        return analyze_attention(query_shape, value_shape, key_shape, self.num_heads, self.key_dim, self.value_dim,
                                 self.output_shape, self.attention_axes)

    def _projections(self, spec: AttentionSpec) -> dict[str, tuple[tuple[str, str, Any], Shape, Optional[str]]]:
        """Each projection's ``((equation, bias axes, output shape), input shape,
        activation)``, by name, its bias axes None where it has no bias."""
        table = {"query_dense": (spec.query_projection, spec.query_shape, None),
                 "key_dense": (spec.key_projection, spec.key_shape, None),
                 "value_dense": (spec.value_projection, spec.value_shape, None)}
        if self.use_gate:
            table["gate_dense"] = (spec.value_projection, spec.query_shape, "sigmoid")
        table["output_dense"] = (spec.output_projection, spec.output_projection_input, None)
        return {name: ((eq, bias if self._has_bias(name) else None, out), shape, activation)
                for name, ((eq, bias, out), shape, activation) in table.items()}

    def projections(self, query_shape: Shape, value_shape: Shape, key_shape: Optional[Shape] = None
                    ) -> tuple[AttentionSpec, dict[str, tuple[EinsumDense, Shape]]]:
        """The attention spec for inputs of these shapes, and each projection as an
        unbuilt EinsumDense with the shape of its input. Changes nothing in the layer."""
        spec = self._analyze(query_shape, value_shape, key_shape)
        return spec, {name: (EinsumDense(equation, out, activation, bias, kernel_initializer=self.kernel_initializer,
                                         bias_initializer=self.bias_initializer, **self._factory), shape)
                      for name, ((equation, bias, out), shape, activation) in self._projections(spec).items()}

    def build(self, query_shape: Shape, value_shape: Shape, key_shape: Optional[Shape] = None) -> None:
        """Build the projections for inputs of these shapes (Keras's ``build``). Each
        takes over the parameters the layer already has (uninitialized, or loaded from
        a state dict, then checked against these shapes), so that an optimizer made
        before keeps training them."""
        spec, layers = self.projections(query_shape, value_shape, key_shape)
        for name, (dense, shape) in layers.items():
            for weight in ("kernel", "bias"):
                mine = getattr(self._modules[name], weight)
                if mine is not None and getattr(dense, weight) is not None:
                    setattr(dense, weight, mine)
            dense.build(shape)
        for name, (dense, _) in layers.items():  # only once every projection is built and checked
            setattr(self, name, dense)
        self.spec = spec

    def initialize_parameters(self, query: Any, value: Any, key: Any = None, *args: Any, **kwargs: Any) -> None:
        """Build on the first call (``LazyModuleMixin``), unless already built."""
        if self.spec is None:
            self._check_inputs(query, value, key)
            key = value if key is None else key
            self.build(tuple(query.shape), tuple(value.shape), tuple(key.shape))

    def has_uninitialized_params(self) -> bool:
        """Whether the layer is yet to be built (its parameters sit in its projections)."""
        return self.spec is None or any(is_lazy(p) for p in self.parameters())

    # -- running --------------------------------------------------------------------------

    def forward(self, query: torch.Tensor, value: torch.Tensor, key: Optional[torch.Tensor] = None,
                attention_mask: Optional[torch.Tensor] = None, return_attention_scores: bool = False,
                training: Optional[bool] = None, use_causal_mask: bool = False,
                query_mask: Optional[torch.Tensor] = None, value_mask: Optional[torch.Tensor] = None,
                key_mask: Optional[torch.Tensor] = None, cache: Optional[torch.Tensor] = None,
                cache_update_index: Any = None) -> Any:
        self._check_inputs(query, value, key)
        if key is None:
            key = value
        if self.spec is None:  # .forward called directly, past the lazy hook
            self.build(tuple(query.shape), tuple(value.shape), tuple(key.shape))
        spec = self.spec
        assert spec is not None and self.query_dense is not None  # built above
        if query.ndim != len(spec.query_shape):
            raise ShapeError(f"MultiHeadAttention: built for queries of rank {len(spec.query_shape)} "
                             f"(shape {spec.query_shape}), got shape {tuple(query.shape)}")
        training = self.training if training is None else bool(training)
        if cache is not None or cache_update_index is not None:
            return self._cached(query, value, key, attention_mask, cache, cache_update_index,
                                return_attention_scores, training)
        masks = [_mask(m, n) for m, n in ((query_mask, "query_mask"), (value_mask, "value_mask"),
                                          (key_mask, "key_mask"), (attention_mask, "attention_mask"))]
        causal_only = use_causal_mask and all(m is None for m in masks) and self.sliding_window is None
        mask = None if causal_only else self._combined_mask(query, value, *masks, use_causal_mask)
        gate = self.gate_dense(query) if self.gate_dense is not None else None
        dense = self._modules  # the projections, read directly: nn.Module.__getattr__ costs 0.5 us a name
        q, k, v = dense["query_dense"](query), dense["key_dense"](key), dense["value_dense"](value)  # type: ignore[misc]
        if q.ndim == 4 and self.dropout == 0.0 and not return_attention_scores:
            out, scores = self._fused(q, k, v, mask, causal_only), None
        else:
            out, scores = self._einsum(q, k, v, mask, causal_only, training)
        if gate is not None:
            out = out * gate
        out = dense["output_dense"](out)  # type: ignore[misc]
        return (out, scores) if return_attention_scores else out

    def _cached(self, query: torch.Tensor, value: torch.Tensor, key: torch.Tensor,
                attention_mask: Optional[torch.Tensor], cache: Optional[torch.Tensor], cache_update_index: Any,
                return_attention_scores: bool, training: bool) -> Any:
        """KerasHub's ``CachedMultiHeadAttention`` decoding step: ``cache`` is the keys' and
        values' projections, ``(B, 2, S, heads, dim)``; with ``cache_update_index`` the
        inputs' projections are written into it at that position along S (and the
        updated cache returned), without it the cache is used as it is. Only
        ``attention_mask`` masks, as there."""
        if cache is None:
            raise ArgumentError(f"MultiHeadAttention: cache_update_index={cache_update_index!r} needs a cache "
                                f"(the keys' and values' projections, (batch, 2, length, heads, dim))")
        if not isinstance(cache, torch.Tensor) or cache.ndim != 5 or cache.shape[1] != 2 or query.ndim != 3:
            raise ShapeError(f"MultiHeadAttention: a decoding cache is (batch, 2, length, heads, dim) for queries "
                             f"(batch, length, features); got cache {getattr(cache, 'shape', type(cache).__name__)} "
                             f"and query {tuple(query.shape)}")
        dense = self._modules
        q = dense["query_dense"](query)  # type: ignore[misc]
        k, v = cache[:, 0], cache[:, 1]
        if cache_update_index is not None:
            k_new, v_new = dense["key_dense"](key), dense["value_dense"](value)  # type: ignore[misc]
            start = int(cache_update_index)
            k = torch.slice_scatter(k, k_new.to(k.dtype), dim=1, start=start, end=start + k_new.shape[1])
            v = torch.slice_scatter(v, v_new.to(v.dtype), dim=1, start=start, end=start + v_new.shape[1])
            cache = torch.stack((k, v), dim=1)
        mask = _mask(attention_mask, "attention_mask")
        if self.dropout == 0.0 and not return_attention_scores:
            out, scores = self._fused(q, k, v, mask, False), None
        else:
            out, scores = self._einsum(q, k, v, mask, False, training)
        out = dense["output_dense"](out)  # type: ignore[misc]
        return (out, scores, cache) if return_attention_scores else (out, cache)

    @staticmethod
    def _check_inputs(query: Any, value: Any, key: Any) -> None:
        for name, t in (("query", query), ("value", value), ("key", key)):
            if (t is not None or name != "key") and not isinstance(t, torch.Tensor):
                raise OperandError(f"MultiHeadAttention: {name} must be a torch.Tensor, got {type(t).__name__}")

    def _combined_mask(self, query: torch.Tensor, value: torch.Tensor, query_mask: Optional[torch.Tensor],
                       value_mask: Optional[torch.Tensor], key_mask: Optional[torch.Tensor],
                       attention_mask: Optional[torch.Tensor], use_causal_mask: bool) -> Optional[torch.Tensor]:
        """Keras's ``_compute_attention_mask``: every mask ANDed, shaped (B, T, S)."""
        auto = None
        for part in (None if query_mask is None else query_mask.unsqueeze(-1),
                     None if value_mask is None else value_mask.unsqueeze(-2),
                     None if key_mask is None else key_mask.unsqueeze(-2)):
            if part is not None:
                auto = part if auto is None else auto & part
        t, s = query.shape[1], value.shape[1]
        if use_causal_mask:
            causal = _causal(t, s, query.device)
            auto = causal if auto is None else auto & causal
        if self.sliding_window is not None:
            rows = torch.arange(t, device=query.device).view(1, t, 1)
            cols = torch.arange(s, device=query.device).view(1, 1, s)
            band = (rows - cols).abs() < self.sliding_window
            auto = band if auto is None else auto & band
        if auto is None:
            return attention_mask
        return auto if attention_mask is None else attention_mask & auto

    def _expand(self, mask: torch.Tensor, rank: int, scores_shape: Optional[tuple[int, ...]]) -> torch.Tensor:
        spec = self.spec
        assert spec is not None
        at = spec.mask_expansion_axis
        while mask.ndim < rank:
            mask = mask.unsqueeze(at)
        if scores_shape is not None:
            try:
                fits = torch.broadcast_shapes(tuple(mask.shape), scores_shape) == scores_shape
            except RuntimeError:
                fits = False
            if not fits or mask.ndim > rank:
                raise ShapeError(
                    f"MultiHeadAttention: the attention mask of shape {tuple(mask.shape)} (after Keras inserts axes "
                    f"at {at}) does not broadcast to the scores {scores_shape} (batch, other axes, heads, query "
                    f"attention axes, key attention axes)"
                )
        return mask

    def _fused(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
               causal_only: bool) -> torch.Tensor:
        """Keras's fused path (``ops.dot_product_attention`` on the torch backend)."""
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, N, T, H)
        scale = 1.0 / math.sqrt(float(self.key_dim))
        additive = None
        if mask is not None:
            shape = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
            bool_mask = self._expand(mask, 4, shape)
            additive = torch.where(bool_mask, torch.zeros((), dtype=q.dtype, device=q.device),
                                   torch.tensor(_large_negative_fused(q.dtype), dtype=q.dtype, device=q.device))
        if additive is not None and q.device.type == "cpu":
            # PyTorch's CPU flash kernel gets the gradient of a fully masked row wrong (it
            # weighs every key by 1, not by the uniform 1/S its forward uses): the math kernel
            with sdpa_kernel(SDPBackend.MATH):
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, scale=scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=additive,
                                                 is_causal=causal_only and mask is None, scale=scale)
        return out.transpose(1, 2)

    def _einsum(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
                causal_only: bool, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Keras's einsum path: scaled query, scores, masked softmax, dropout, combination."""
        spec = self.spec
        assert spec is not None
        if causal_only:
            mask = _causal(q.shape[1], v.shape[1], q.device)
        q = q * torch.tensor(1.0 / math.sqrt(float(self.key_dim)), dtype=q.dtype)
        scores = _cache.einsum_ranked(spec.dot_product_equation, (k.ndim, q.ndim))([k, q])
        if mask is not None:
            mask = self._expand(mask, scores.ndim, tuple(scores.shape))
            scores = torch.where(mask, scores, -3e4 if scores.dtype == torch.float16 else -1e9)
        if len(spec.softmax_axes) == 1:
            probs = torch.softmax(scores, dim=spec.softmax_axes[0])
        else:
            probs = torch.exp(scores - torch.logsumexp(scores, dim=spec.softmax_axes, keepdim=True))
        if mask is not None:
            probs = torch.where(mask, probs, 0.0)
        final = F.dropout(probs, self.dropout, training=True) if training and self.dropout > 0 else probs
        out = _cache.einsum_ranked(spec.combine_equation, (final.ndim, v.ndim))([final, v])
        return out, probs

    def extra_repr(self) -> str:
        return ", ".join(constructor_args("MultiHeadAttention", self.get_config())) + (
            "" if self.spec is not None else ", unbuilt")

    def explain(self, *input_shapes: Shape) -> LayerExplanation:
        """The contractions this layer runs on a query of the first shape (and a value
        and key of the next, where they differ; batch axis included), its weights and
        FLOPs: what :func:`axisdot.explain` gives for it. Worked out from the attention
        and dense specs (:mod:`axisdot.attention_spec`), never by building or changing
        the layer; a query a built layer does not take is refused.

        >>> MultiHeadAttention(num_heads=2, key_dim=4).explain((2, 5, 8)).equations["scores"]
        'aecd,abcd->acbe'
        """
        if not 1 <= len(input_shapes) <= 3:
            raise AxisdotTypeError("explain(MultiHeadAttention): give the query shape, and the value and key "
                                   "shapes when they differ")
        name = "MultiHeadAttention"
        query = full_shape(input_shapes[0], "query", name)
        value = full_shape(input_shapes[1], "value", name) if len(input_shapes) > 1 else query
        key = full_shape(input_shapes[2], "key", name) if len(input_shapes) > 2 else value
        built = self.spec
        if built is not None and built.query_shape[1:] != query[1:] and None not in built.query_shape[1:]:
            raise ShapeError(f"explain(MultiHeadAttention): the layer is built for queries {built.query_shape}, "
                             f"got {query}")
        spec = self._analyze(query, value, key)
        parts: dict[str, DensePart] = {}
        for projection, ((equation, bias, out), shape, _) in self._projections(spec).items():
            parsed = parse_dense_equation(equation)
            parts[projection] = dense_part(parsed, output_shape_arg(out, parsed), bias, shape)  # type: ignore[arg-type]
        fused = len(query) == 3 and self.dropout == 0.0
        notes = (f"softmax over the scores' axes {spec.softmax_axes}, masks as Keras applies them",
                 "runs as torch.nn.functional.scaled_dot_product_attention (as Keras fuses it) unless the scores "
                 "are returned" if fused else "runs the scores and combine equations as planned contractions")
        if self.use_gate:
            notes += ("the gate projection of the query goes through a sigmoid and multiplies the combined heads "
                      "before the output projection",)
        return attention_explanation(constructor_line(name, self.get_config()), spec, parts, notes)

    # -- Keras configs and layers ---------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The keys of Keras's ``MultiHeadAttention.get_config()`` that define the layer."""
        return {
            "num_heads": self.num_heads, "key_dim": self.key_dim, "value_dim": self.value_dim,
            "dropout": self.dropout, "use_bias": self.use_bias, "use_gate": self.use_gate,
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "attention_axes": list(self.spec.axes) if self.spec is not None else (
                None if self.attention_axes is None else list(self.attention_axes)),
            "sliding_window": self.sliding_window,
            "kernel_initializer": initializers.get_config(self.kernel_initializer),
            "bias_initializer": initializers.get_config(self.bias_initializer),
            **({} if self.key_use_bias == self.use_bias else {"key_use_bias": self.key_use_bias}),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, query_shape: Optional[Shape] = None,
                    value_shape: Optional[Shape] = None, key_shape: Optional[Shape] = None,
                    dtype: Optional[torch.dtype] = None) -> "MultiHeadAttention":
        """Build from a Keras MultiHeadAttention config (keys Keras added over time,
        ``use_gate`` and ``sliding_window``, default to off). Every Keras initializer is
        read, as by EinsumDense; the regularizers and constraints (they act on Keras's
        training, not on the layer's output) are accepted and change nothing here."""
        for key in ("num_heads", "key_dim"):
            if key not in config:
                raise ArgumentError(f"MultiHeadAttention.from_config: the config has no {key!r} key")
        return cls(config["num_heads"], config["key_dim"], config.get("value_dim"), config.get("dropout", 0.0),
                   config.get("use_bias", True), config.get("output_shape"), config.get("attention_axes"),
                   use_gate=bool(config.get("use_gate", False)), sliding_window=config.get("sliding_window"),
                   key_use_bias=config.get("key_use_bias"),
                   kernel_initializer=config.get("kernel_initializer", "glorot_uniform"),
                   bias_initializer=config.get("bias_initializer", "zeros"), query_shape=query_shape, value_shape=value_shape, key_shape=key_shape,
                   dtype=dtype if dtype is not None else policy_dtype(config.get("dtype")))

    @classmethod
    def from_keras(cls, layer: Any) -> "MultiHeadAttention":
        """The module for a live, built ``keras.layers.MultiHeadAttention`` (or a subclass
        computing the same, see :mod:`axisdot.layers.keras_classes`), with its weights."""
        check_class(layer, "MultiHeadAttention")
        if not layer.built:
            raise ArgumentError(f"MultiHeadAttention.from_keras: the Keras layer {layer.name!r} is not built yet; "
                                f"call it once or build it first")
        shapes = (layer.get_build_config() or {}).get("shapes_dict", {})
        config = dict(layer.get_config())
        if config.get("use_bias", True) and layer.key_dense.bias is None:  # Whisper's key projection
            config["key_use_bias"] = False
        module = cls.from_config(config, query_shape=shapes.get("query_shape"),
                                 value_shape=shapes.get("value_shape"), key_shape=shapes.get("key_shape"))
        sources = {"query_dense": layer.query_dense, "key_dense": layer.key_dense, "value_dense": layer.value_dense,
                   "output_dense": layer.output_dense}
        if module.use_gate:
            sources["gate_dense"] = layer._gate_dense  # Keras keeps its gate under a private name
        weights = {}
        for name, sub in sources.items():
            weights[f"{name}.kernel"] = sub.kernel
            if getattr(module, name).bias is not None:
                weights[f"{name}.bias"] = sub.bias
        load_keras_weights(module, weights, where=f"MultiHeadAttention.from_keras({layer.name!r})")
        return module
