"""The vector dot of large inputs: sums of products that hold nothing beyond the output
and 1 MiB at any moment, with the routes measured fastest on the CPU.

A vector dot (neither input has a free axis) multiplies elementwise and sums while the
product is at most :data:`SMALL_PRODUCT_BYTES`; above that, :func:`large_vector_dot`.
Its thresholds are measured on the development machine, not derived.
"""
from __future__ import annotations

import math

import torch

__all__ = ["SMALL_PRODUCT_BYTES", "BMM_MIN_ROW", "SHORT_ROW", "COLUMN_ROW", "SMALL_ELEMENTS", "large_vector_dot"]

#: Above this many bytes, a vector dot no longer multiplies elementwise first.
SMALL_PRODUCT_BYTES = 2**20
#: On the CPU, a large vector dot over rows of at least this many float32/float64
#: elements is one bmm of row views (see large_vector_dot): measured, not derived.
BMM_MIN_ROW = 512
#: On the CPU, a large vector dot over float32/float64 rows of fewer elements than this is
#: one bmm of ``(n, 1, k)`` by ``(n, k, 1)`` views (torch.einsum's own route), which beats
#: the product in 1 MiB tiles there (0.67-0.96x of the tiles' time for float32 rows of 3 to
#: 16 at 4 and 16 MiB of operands, 0.3-1.03x for float64) and holds no temporary; measured.
SHORT_ROW = 32
#: ... and rows of at most this many elements are summed column by column into the output
#: (one mul, then one addcmul_ a column): no temporary, 0.36x torch.einsum's bmm on
#: pytorch#101249's (1048576, 2) rows, 0.58x for float64 (2097152, 2); from 3 columns on,
#: slower than the bmm (measured).
COLUMN_ROW = 2
_BMM_ROW_DTYPES = frozenset({torch.float32, torch.float64})
#: floating dtypes -> the most elements whose elementwise product is at most SMALL_PRODUCT_BYTES
SMALL_ELEMENTS = {dtype: SMALL_PRODUCT_BYTES // dtype.itemsize
                  for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}
_bmm, _mul, _sum = torch.bmm, torch.mul, torch.sum
_tracing = torch._C._is_tracing  # torch.jit.is_tracing without its Python frame (nothing here is scripted)
_transforms_active = torch._C._are_functorch_transforms_active  # vmap, grad, ... (their tensors are wrapped)


def large_vector_dot(x: torch.Tensor, y: torch.Tensor, nb: int, expand: bool = False) -> torch.Tensor:
    """Sums of products over the trailing axes of x and y (same shape, the first ``nb``
    batch axes) that hold nothing beyond the output and 1 MiB at any moment; ``expand``
    adds a trailing size-1 axis to the result (Keras's ``(batch, 1)``).

    On the CPU, for float32 and float64 rows of at least :data:`BMM_MIN_ROW` elements,
    one ``bmm`` of ``(n, 1, k)`` by the transposed view of the other ``(n, 1, k)``: BLAS
    runs each row as a dot, with no product at all (0.1–0.9× mul+sum on the development
    machine; on shorter rows, and for half precision, 2–10× slower). For float32 and
    float64 rows shorter than :data:`SHORT_ROW`, no product either: rows of at most
    :data:`COLUMN_ROW` elements summed column by column into the output (one ``mul``,
    then ``addcmul_``), longer ones one ``bmm`` of ``(n, 1, k)`` by ``(n, k, 1)`` views
    (what torch.einsum runs). Otherwise the elementwise product in tiles of at most 1 MiB (rows of the batch, or columns when a
    row alone is larger), each summed straight into the output: as fast as one product
    and sum once the product outgrows the caches. With autograd, the tiles' sums are
    concatenated instead (an ``out=`` has no gradient). A full contraction is one
    ``torch.dot``. Under torch.compile or jit tracing, one product and sum (which
    inductor fuses into one reduction); under torch.func transforms and for tensor
    subclasses, the same (every transform and subclass has it). Elsewhere, or when no
    view flattens the inputs, one ``bmm`` of ``(n, 1, k)`` by ``(n, k, 1)``. (Below
    1 MiB of product a bmm of row views wins too, 0.8–0.95× from 256 KiB, but not by the
    ~4 µs this route costs in Python.)"""
    if nb == 0:
        return torch.dot(x.reshape(-1), y.reshape(-1))
    if (_tracing() or _transforms_active() or type(x) is not torch.Tensor or type(y) is not torch.Tensor
            or torch.compiler.is_compiling()):
        out = (x * y).sum(tuple(range(nb, x.ndim)))
        return out.unsqueeze(-1) if expand else out
    batch = x.shape[:nb]
    n = math.prod(batch)
    k = x.numel() // n if n else math.prod(x.shape[nb:])
    out_shape = (*batch, 1) if expand else batch  # unpacked below: view(torch.Size) costs 2.4 us, view(*ints) 1
    dtype = x.dtype if x.dtype is y.dtype else torch.result_type(x, y)
    size = dtype.itemsize  # of the product
    if x.is_cpu and n and k:
        try:
            xs, ys = (x, y) if x.ndim == 2 else (x.view(n, k), y.view(n, k))
        except RuntimeError:  # no view flattens this layout
            pass
        else:
            if dtype in _BMM_ROW_DTYPES and x.dtype is y.dtype:
                if k >= BMM_MIN_ROW:
                    return _bmm(xs.view(n, 1, k), ys.view(n, 1, k).mT).view(*out_shape)
                if k <= COLUMN_ROW:
                    return _column_sums(xs, ys, k).view(*out_shape)
                if k < SHORT_ROW:
                    return _bmm(xs.view(n, 1, k), ys.view(n, k, 1)).view(*out_shape)
            grad = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)
            if k * size <= SMALL_PRODUCT_BYTES:  # tiles of whole rows
                step = SMALL_PRODUCT_BYTES // (k * size)
                if grad:
                    return torch.cat([_sum(_mul(xs[i:i + step], ys[i:i + step]), 1)
                                      for i in range(0, n, step)]).view(*out_shape)
                out = torch.empty(n, dtype=dtype, device=x.device)
                for i in range(0, n, step):  # slices: cheaper than split's tuples of views
                    j = i + step
                    _sum(_mul(xs[i:j], ys[i:j]), 1, out=out[i:j])
                return out if nb == 1 and not expand else out.view(*out_shape)
            if 2 * n * size <= SMALL_PRODUCT_BYTES:  # tiles of columns, accumulated
                # a tile's product and its sum beside the running sum: at most the output + 1 MiB
                step = (SMALL_PRODUCT_BYTES - n * size) // (n * size)
                tiles = zip(xs.split(step, 1), ys.split(step, 1))
                a, b = next(tiles)
                out = (a * b).sum(1)
                for a, b in tiles:
                    out = out + (a * b).sum(1) if grad else out.add_((a * b).sum(1))
                return out.view(*out_shape)
    return _bmm(x.reshape(n, 1, k), y.reshape(n, k, 1)).view(*out_shape)


def _column_sums(x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """The row dots of two ``(n, k)`` matrices, column by column: the first columns'
    product, then each other column's added in place (autograd keeps the columns, not
    the running sum)."""
    out = _mul(x[:, 0], y[:, 0])
    for j in range(1, k):
        out.addcmul_(x[:, j], y[:, j])
    return out
