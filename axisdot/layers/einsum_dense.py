"""``axisdot.EinsumDense``: ``keras.layers.EinsumDense`` as a ``torch.nn.Module``.

An EinsumDense layer is a spec plus a weight: :mod:`axisdot.dense_spec` derives the
kernel, bias and output shapes from the equation (Keras's rules), and
:mod:`axisdot.layers.dense_plan` the torch calls for inputs of each rank (one
``torch.nn.functional.linear`` where the equation is a dense matmul, else a planned
einsum step); :mod:`axisdot.layers.initializers` fills fresh weights as Keras does and
:mod:`axisdot.layers.keras_interop` takes Keras's in. This module is the shell that owns
the parameters, builds them lazily and looks its plan up per input rank.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from ..dense_spec import (DenseEquation, DenseSpec, analyze_dense, check_bias_axes, output_shape_arg,
                          parse_dense_equation)
from ..errors import ArgumentError, AxisdotTypeError, OperandError, ShapeError
from ..layer_explanation import LayerExplanation, dense_explanation, full_shape
from ..render import mark_axes, shape_text
from . import activations, initializers
from .constructor import constructor_args, constructor_line
from .dense_plan import SMALL_DENSE_OUTPUT, DensePlan, FlattenMismatch, dense_part, dense_plan  # noqa: F401
from .keras_classes import check_class
from .keras_interop import load_keras_weights, policy_dtype

__all__ = ["EinsumDense"]
# SMALL_DENSE_OUTPUT, DensePlan (axisdot.layers.dense_plan) and policy_dtype
# (axisdot.layers.keras_interop) are imported here too: their import path before the split

_ABSENT: Any = object()


class EinsumDense(LazyModuleMixin, torch.nn.Module):
    """``keras.layers.EinsumDense(equation, output_shape, activation, bias_axes)``.

    ``kernel`` and ``bias`` are parameters in Keras's layout (Keras weights copy in
    unchanged). With ``input_shape`` (Keras's build shape, batch axis first, None for
    unknown sizes) the layer is built at construction; otherwise on its first call, as
    ``torch.nn.LazyLinear`` (``load_state_dict`` also builds it). ``kernel_initializer``
    and ``bias_initializer`` take any Keras initializer (:mod:`~axisdot.layers.initializers`:
    a name, a config dict with its arguments); the defaults are Keras's, glorot uniform
    over the kernel's input and output axes and zeros. Keras's regularizer and constraint
    arguments are accepted as None only (they mean nothing to a torch module).
    ``lora_rank`` / ``lora_alpha`` / :meth:`enable_lora` are Keras 3's LoRA. Floating
    inputs are computed in the parameters' dtype, as Keras casts them to the layer's.

    >>> layer = EinsumDense("abc,cde->abde", output_shape=(None, 4, 8), bias_axes="de", input_shape=(None, 5, 16))
    >>> tuple(layer.kernel.shape), tuple(layer.bias.shape), tuple(layer(torch.ones(2, 5, 16)).shape)
    ((16, 4, 8), (4, 8), (2, 5, 4, 8))
    """

    cls_to_become = None
    kernel: torch.nn.Parameter
    bias: Optional[torch.nn.Parameter]

    def __init__(self, equation: str, output_shape: Union[int, Sequence[Optional[int]]],
                 activation: Any = None, bias_axes: Optional[str] = None, *,
                 input_shape: Optional[Sequence[Optional[int]]] = None, lora_rank: Optional[int] = None,
                 lora_alpha: Optional[float] = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, bias_constraint: Any = None,
                 device: Any = None, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__()
        initializers.refuse_training_arguments(
            f"EinsumDense({equation!r})", kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint)
        self.spec_equation: DenseEquation = parse_dense_equation(equation)
        self.equation = equation
        self.partial_output_shape = output_shape_arg(output_shape, self.spec_equation)
        if bias_axes is not None:
            check_bias_axes(bias_axes, self.spec_equation)
        self.bias_axes = bias_axes
        self.activation_name, self.activation = activations.get(activation, f"EinsumDense({equation!r}).activation")
        if lora_rank is not None and (isinstance(lora_rank, bool) or not isinstance(lora_rank, int) or lora_rank < 1):
            raise ArgumentError(f"EinsumDense({equation!r}): lora_rank must be an int >= 1, got {lora_rank!r}")
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else lora_rank
        self.lora_enabled = False
        self.kernel_initializer = initializers.get(kernel_initializer, f"EinsumDense({equation!r}).kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, f"EinsumDense({equation!r}).bias_initializer")
        factory = {"device": device, "dtype": dtype}
        self.kernel = UninitializedParameter(**factory)
        if bias_axes is not None:
            self.bias = UninitializedParameter(**factory)
        else:
            self.register_parameter("bias", None)
        self.register_parameter("lora_kernel_a", None)
        self.register_parameter("lora_kernel_b", None)
        self.spec: Optional[DenseSpec] = None
        self._plans: dict[int, DensePlan] = {}
        if input_shape is not None:
            self.build(input_shape)

    # -- building ------------------------------------------------------------------------

    def analyze(self, input_shape: Sequence[Optional[int]]) -> DenseSpec:
        """Kernel, bias and output shapes for this input shape (Keras's rules)."""
        return analyze_dense(self.spec_equation, tuple(input_shape), self.partial_output_shape, self.bias_axes)

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Create (or check) the kernel and bias for inputs of ``input_shape``."""
        spec = self.analyze(input_shape)
        fresh = isinstance(self.kernel, UninitializedParameter)
        with torch.no_grad():
            if fresh:
                self.kernel.materialize(spec.kernel_shape)
            if self.bias is not None and isinstance(self.bias, UninitializedParameter):
                self.bias.materialize(spec.bias_shape)
        self._check_weights(spec, tuple(input_shape))
        self.spec = spec
        self._plans.clear()
        self._plan(len(input_shape))  # made here, not in a forward that torch.compile traces
        if fresh:
            self.reset_parameters()
            if self.lora_rank and not self.lora_enabled:
                self.enable_lora(self.lora_rank, self.lora_alpha)

    def initialize_parameters(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> None:  # LazyModuleMixin
        if self.has_uninitialized_params() or self.spec is None:
            if not isinstance(x, torch.Tensor):
                raise OperandError(f"EinsumDense({self.equation!r}): the input must be a torch.Tensor, "
                                   f"got {type(x).__name__}")
            self.build(tuple(x.shape))

    def reset_parameters(self) -> None:
        """Fill the kernel and bias as Keras's layer does: the kernel initializer with the
        kernel's input and output axes (VarianceScaling's fans, as Keras's EinsumDense
        passes them), the bias initializer on the bias's shape."""
        if isinstance(self.kernel, UninitializedParameter) or self.spec is None:
            return
        spec, call = self.spec, f"EinsumDense({self.equation!r})"
        axes = (spec.input_axes, spec.output_axes) if self.kernel_initializer is not None else (None, None)
        initializers.fill_(self.kernel_initializer, self.kernel, *axes, where=f"{call}.kernel_initializer")
        if self.bias is not None and not isinstance(self.bias, UninitializedParameter):
            initializers.fill_(self.bias_initializer, self.bias, where=f"{call}.bias_initializer")

    def _check_weights(self, spec: DenseSpec, input_shape: tuple) -> None:
        for name, want in (("kernel", spec.kernel_shape), ("bias", spec.bias_shape)):
            weight = getattr(self, name)
            if weight is None or isinstance(weight, UninitializedParameter):
                continue
            if tuple(weight.shape) != want:
                letters = self.spec_equation.kernel if name == "kernel" else self.bias_axes
                raise ShapeError(
                    f"EinsumDense({self.equation!r}): an input of shape {input_shape} needs a {name} of shape "
                    f"{want}, but the layer's {name} has shape {tuple(weight.shape)} (letters {letters!r})"
                )

    # -- LoRA -----------------------------------------------------------------------------

    def enable_lora(self, rank: int, lora_alpha: Optional[float] = None, a_initializer: str = "he_uniform",
                    b_initializer: str = "zeros") -> None:
        """Keras 3's ``enable_lora``: freeze the kernel and add ``lora_kernel_a`` (the
        kernel's shape with its last axis replaced by ``rank``) and ``lora_kernel_b``
        (``(rank, kernel.shape[-1])``), float32 as Keras makes them; the kernel used is
        ``kernel + lora_alpha / rank * lora_kernel_a @ lora_kernel_b``, in the kernel's dtype."""
        if isinstance(self.kernel, UninitializedParameter):
            raise ArgumentError(f"EinsumDense({self.equation!r}): cannot enable LoRA on a layer that isn't built "
                                f"yet (give input_shape, or call it once)")
        if self.lora_enabled:
            raise ArgumentError(f"EinsumDense({self.equation!r}): LoRA is already enabled; it is enabled once")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ArgumentError(f"EinsumDense({self.equation!r}): the LoRA rank must be an int >= 1, got {rank!r}")
        shape = tuple(self.kernel.shape)
        factory = {"device": self.kernel.device, "dtype": torch.float32}  # Keras's LoRA weights are float32
        self.lora_kernel_a = torch.nn.Parameter(torch.empty(shape[:-1] + (rank,), **factory))
        self.lora_kernel_b = torch.nn.Parameter(torch.empty((rank, shape[-1]), **factory))
        for t, init, name in ((self.lora_kernel_a, a_initializer, "a_initializer"),
                              (self.lora_kernel_b, b_initializer, "b_initializer")):
            where = f"EinsumDense({self.equation!r}).enable_lora({name})"
            initializers.fill_(initializers.get(init, where), t, where=where)
        self.kernel.requires_grad_(False)
        self.lora_enabled = True
        self.lora_rank = rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else rank

    def effective_kernel(self) -> torch.Tensor:
        """The kernel the layer multiplies by: with LoRA, ``kernel + alpha / rank * A @ B``."""
        if not self.lora_enabled:
            return self.kernel
        scale = self.lora_alpha / self.lora_rank  # type: ignore[operator]
        delta = scale * torch.matmul(self.lora_kernel_a, self.lora_kernel_b)  # in the LoRA weights' dtype
        return (self.kernel + delta).to(self.kernel.dtype)

    # -- running --------------------------------------------------------------------------

    def plan_for(self, spec: DenseSpec) -> DensePlan:
        """The plan this layer runs for inputs like ``spec``'s (its lowering, say)."""
        return dense_plan(self.spec_equation, self.bias_axes, len(spec.input_shape), spec)

    def _plan(self, rank: int) -> DensePlan:
        plan = self._plans[rank] = dense_plan(self.spec_equation, self.bias_axes, rank, self.spec)
        return plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise OperandError(f"EinsumDense({self.equation!r}): the input must be a torch.Tensor, "
                               f"got {type(x).__name__}")
        # the parameter dict, read directly: nn.Module.__getattr__ costs 0.5 us a name (a
        # parametrization, torch.nn.utils.parametrize, takes its name off the dict)
        params = self._parameters
        kernel, bias = params.get("kernel"), params.get("bias", _ABSENT)
        if kernel is None or bias is _ABSENT or self.lora_enabled:
            kernel, bias = self.effective_kernel(), self.bias
        if x.dtype != kernel.dtype:
            if not (x.is_floating_point() or x.is_complex()):
                raise OperandError(f"EinsumDense({self.equation!r}): the input has dtype {x.dtype}; the layer "
                                   f"takes floating-point inputs (cast it first, e.g. x.float())")
            x = x.to(kernel.dtype)
        plan = self._plans.get(x.ndim) or self._plan(x.ndim)
        try:
            out = plan.run(x, kernel, bias)
        except (RuntimeError, ShapeError) as err:
            raise self._mismatch(x, kernel) from (None if isinstance(err, FlattenMismatch) else err)
        return self.activation(out)

    def _mismatch(self, x: torch.Tensor, kernel: torch.Tensor) -> Exception:
        """The error for an input that does not fit the built kernel: the letter, both shapes."""
        try:
            spec = self.analyze(tuple(x.shape))
        except ShapeError as err:
            return err
        y = self.spec_equation.kernel
        for axis, (want, have) in enumerate(zip(spec.kernel_shape, kernel.shape)):
            if want != have:
                return ShapeError(
                    f"EinsumDense({self.equation!r}): letter {y[axis]!r} has size {want} in the input "
                    f"but {have} in the kernel\n  input:  {tuple(x.shape)}\n  kernel: {mark_axes(tuple(kernel.shape), [axis])}"
                )
        return ShapeError(f"EinsumDense({self.equation!r}): the input of shape {tuple(x.shape)} does not fit "
                          f"the kernel {tuple(kernel.shape)}")

    def extra_repr(self) -> str:
        shape = "unbuilt" if isinstance(self.kernel, UninitializedParameter) else f"kernel={tuple(self.kernel.shape)}"
        return ", ".join(constructor_args("EinsumDense", self.get_config()) + [shape])

    def explain(self, *input_shapes: Sequence[int]) -> LayerExplanation:
        """The contraction this layer runs on an input of this shape (batch axis
        included), its weights and FLOPs: what :func:`axisdot.explain` gives for it. It
        is worked out from the equation (:mod:`axisdot.dense_spec`), never by building
        or changing the layer; an input a built layer's kernel does not fit is refused.

        >>> EinsumDense("abc,cd->abd", (None, 8), bias_axes="d").explain((2, 5, 16)).weights
        {'kernel': (16, 8), 'bias': (8,)}
        """
        if len(input_shapes) != 1:
            raise AxisdotTypeError(f"explain(EinsumDense): give the input shape, got {len(input_shapes)} shapes")
        shape = full_shape(input_shapes[0], "input", "EinsumDense")
        part = dense_part(self.spec_equation, self.partial_output_shape, self.bias_axes, shape)
        self._check_weights(part.spec, shape)
        notes = []
        if self.bias_axes:
            notes.append(f"then the bias {shape_text(part.spec.bias_shape)} is added (broadcast over the output)")
        if self.activation_name != "linear":
            notes.append(f"then the activation {self.activation_name!r}")
        lora = {}
        if self.lora_enabled:
            notes.append(f"the kernel is kernel + {self.lora_alpha}/{self.lora_rank} * lora_kernel_a @ lora_kernel_b")
            lora = {name: tuple(getattr(self, name).shape) for name in ("lora_kernel_a", "lora_kernel_b")}
        return dense_explanation(constructor_line("EinsumDense", self.get_config()), part, notes, lora)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_plans"] = {}  # plans hold functions: rebuilt when loaded
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if self.spec is not None:  # the built rank's plan, ready before a torch.compile traces a call
            self._plan(len(self.spec.input_shape))

    # -- Keras configs and layers ---------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The keys of Keras's ``EinsumDense.get_config()`` that define the layer."""
        config: dict[str, Any] = {
            "output_shape": list(self.partial_output_shape),
            "equation": self.equation,
            "activation": self.activation_name,
            "bias_axes": self.bias_axes,
            "kernel_initializer": initializers.get_config(self.kernel_initializer),
            "bias_initializer": initializers.get_config(self.bias_initializer),
        }
        if self.lora_rank:
            config.update(lora_rank=self.lora_rank, lora_alpha=self.lora_alpha)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, input_shape: Optional[Sequence[Optional[int]]] = None,
                    dtype: Optional[torch.dtype] = None) -> "EinsumDense":
        """Build from a Keras EinsumDense config. Every Keras initializer (with its
        arguments) is read and fills fresh weights as Keras would; base-layer keys such
        as ``name`` and ``trainable``, and the regularizers and constraints (they act on
        Keras's training, not on the layer's output), are accepted and change nothing
        here. ``dtype`` defaults to the config's dtype policy."""
        for key in ("equation", "output_shape"):
            if key not in config:
                raise ArgumentError(f"EinsumDense.from_config: the config has no {key!r} key")
        return cls(config["equation"], config["output_shape"], config.get("activation"), config.get("bias_axes"),
                   input_shape=input_shape, lora_rank=config.get("lora_rank"), lora_alpha=config.get("lora_alpha"),
                   kernel_initializer=config.get("kernel_initializer", "glorot_uniform"),
                   bias_initializer=config.get("bias_initializer", "zeros"),
                   dtype=dtype if dtype is not None else policy_dtype(config.get("dtype")))

    @classmethod
    def from_keras(cls, layer: Any) -> "EinsumDense":
        """The module for a live ``keras.layers.EinsumDense``, with its weights (LoRA
        included). Needs keras only to read the layer."""
        check_class(layer, "EinsumDense")
        config = dict(layer.get_config())
        build = layer.get_build_config() if layer.built else None
        input_shape = (build or {}).get("input_shape")
        if input_shape is None:
            raise ArgumentError(f"EinsumDense.from_keras: the Keras layer {layer.name!r} is not built yet; "
                                f"call it once or build it first")
        lora = bool(getattr(layer, "lora_enabled", False))
        config.pop("lora_rank", None)
        module = cls.from_config(config, input_shape=input_shape)
        raw = getattr(layer, "_kernel", None)  # Keras's own kernel, without a LoRA update merged in
        weights = {"kernel": raw if raw is not None else layer.kernel}
        if module.bias is not None:
            weights["bias"] = layer.bias
        if lora:
            module.enable_lora(layer.lora_rank, getattr(layer, "lora_alpha", layer.lora_rank))
            weights.update(lora_kernel_a=layer.lora_kernel_a, lora_kernel_b=layer.lora_kernel_b)
        load_keras_weights(module, weights, where=f"EinsumDense.from_keras({layer.name!r})")
        return module
