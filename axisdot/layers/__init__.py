"""Keras layers as ``torch.nn.Module`` s, one module a layer, all on the same
spec -> plan pipeline as the functions: a layer is a spec (and its weights).

* :class:`Dot` (``keras.layers.Dot``): :mod:`axisdot.axes` -> a two-operand plan;
* :class:`EinsumDense` (``keras.layers.EinsumDense``): :mod:`axisdot.dense_spec` -> a
  planned einsum step (or ``F.linear``) with Keras's kernel and bias;
* :class:`MultiHeadAttention` (``keras.layers.MultiHeadAttention``):
  :mod:`axisdot.attention_spec` -> EinsumDense projections and planned attention
  equations (or PyTorch's fused attention where Keras uses its own).

Beside them, what the layers share: :mod:`~axisdot.layers.dense_plan` (an EinsumDense's
torch calls), :mod:`~axisdot.layers.initializers`, :mod:`~axisdot.layers.activations`,
:mod:`~axisdot.layers.keras_interop` (dtype policies, Keras weights in),
:mod:`~axisdot.layers.keras_classes` (which Keras classes port) and
:mod:`~axisdot.layers.constructor` (a layer's constructor line). Each layer's
``explain(*input_shapes)`` reports what it runs (:mod:`axisdot.layer_explanation`).
"""
from .dot import Dot
from .einsum_dense import EinsumDense
from .multi_head_attention import MultiHeadAttention

__all__ = ["Dot", "EinsumDense", "MultiHeadAttention"]
