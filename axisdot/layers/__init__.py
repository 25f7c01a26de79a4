"""Keras layers as ``torch.nn.Module`` s, one module a layer, all on the same
spec -> plan pipeline as the functions."""
from .dot import Dot

__all__ = ["Dot"]
