"""A dispatch mode that records the aten ops run inside it (for tests of what a call does)."""
from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode


class AtenLog(TorchDispatchMode):
    """``with AtenLog() as log: ...``: ``log.ops`` holds each op's name, e.g. ``"aten.mul.Tensor"``."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))
