"""A dispatch mode that records the aten ops run inside it (for tests of what a call does)."""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class AtenLog(TorchDispatchMode):
    """``with AtenLog() as log: ...``: ``log.ops`` holds each op's name, e.g. ``"aten.mul.Tensor"``,
    and ``log.shapes`` the shapes of its tensor arguments, in the same order."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []
        self.shapes: list[tuple[tuple[int, ...], ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        self.shapes.append(tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor)))
        return func(*args, **(kwargs or {}))
