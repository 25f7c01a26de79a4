"""Large vector dots (``axisdot.vector_dot``): each route against NumPy, in tiles, under
vmap and compile."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from aten_log import AtenLog

import axisdot

# Vector dots above 1 MiB of product: each route of the lowering (one bmm of row views for
# rows of BMM_MIN_ROW or more, column sums for rows of COLUMN_ROW or fewer, one bmm of row by
# column views for rows shorter than SHORT_ROW, row tiles with a remainder for shorter rows, column tiles
# where a row alone is over 1 MiB and no bmm is taken, a full contraction, a layout no
# view flattens) against NumPy in float64, forward and backward, eagerly and under vmap
# and torch.compile.
LARGE_VECTOR_DOTS = {
    "row-bmm": (lambda x, y: axisdot.dot(x, y, 1), (300, 1000), (300, 1000), ([1], [1])),
    "row-bmm-batch": (lambda x, y: axisdot.einsum("bij,bij->bi", x, y), (3, 100, 1000), (3, 100, 1000), ([2], [2])),
    "row-tiles": (lambda x, y: axisdot.dot(x, y, 1), (3001, 400), (3001, 400), ([1], [1])),
    "row-tiles-batch": (lambda x, y: axisdot.einsum("bij,bij->bi", x, y), (3, 1000, 401), (3, 1000, 401), ([2], [2])),
    "columns": (lambda x, y: axisdot.dot(x, y, 1), (200003, 2), (200003, 2), ([1], [1])),
    "columns-one": (lambda x, y: axisdot.einsum("bij,bij->bi", x, y), (3, 300001, 1), (3, 300001, 1),
                    ([2], [2])),
    "columns-batch": (lambda x, y: axisdot.einsum("bij,bij->bi", x, y), (3, 100001, 2), (3, 100001, 2), ([2], [2])),
    "short-row-bmm": (lambda x, y: axisdot.dot(x, y, 1), (40001, 9), (40001, 9), ([1], [1])),
    "short-row-bmm-batch": (lambda x, y: axisdot.einsum("bij,bij->bi", x, y), (2, 10001, 31), (2, 10001, 31),
                            ([2], [2])),
    "full": (lambda x, y: axisdot.tensordot(x, y, 2), (600, 601), (600, 601), ([0, 1], [0, 1])),
    "einsum-rows": (lambda x, y: axisdot.einsum("bij,bij->b", x, y), (5, 300, 200), (5, 300, 200), ([1, 2], [1, 2])),
}


def _expected_rows(x: torch.Tensor, y: torch.Tensor, axes: tuple[list[int], list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The sums of products over ``axes`` (the other axes paired, in order) in float64,
    and a float32 rounding bound for each: 1e-6 of the sum of the products' magnitudes."""
    xs, ys = x.double().numpy(), y.double().numpy()
    letters = "abcdefgh"[:x.ndim]
    out = "".join(letters[a] for a in range(x.ndim) if a not in axes[0])
    eq = f"{letters},{letters}->{out}"
    return np.einsum(eq, xs, ys), 1e-6 * np.einsum(eq, np.abs(xs), np.abs(ys))


def _assert_rows(out: torch.Tensor, expected: tuple[np.ndarray, np.ndarray], dtype: torch.dtype) -> None:
    values, bound = expected
    got = out.detach().double().numpy().reshape(values.shape)
    scale = {torch.float32: 1.0, torch.float64: 1e-8, torch.float16: 1500.0}[dtype]  # float16: its rounding, 2**-11
    assert np.all(np.abs(got - values) <= scale * bound + 1e-12), np.max(np.abs(got - values) / bound)


@pytest.mark.parametrize("case", sorted(LARGE_VECTOR_DOTS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
def test_large_vector_dots_match_numpy(case, dtype, grad):
    call, xs, ys, axes = LARGE_VECTOR_DOTS[case]
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(xs, generator=gen, dtype=dtype), torch.randn(ys, generator=gen, dtype=dtype)
    x.requires_grad_(grad)
    out = call(x, y)
    _assert_rows(out, _expected_rows(x.detach(), y, axes), dtype)
    if grad:  # d(sum of out)/dx = y
        out.sum().backward()
        torch.testing.assert_close(x.grad, y)


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
def test_large_vector_dot_in_column_tiles(grad):
    # a row alone is over 1 MiB and half precision takes no bmm (2-10x slower on the CPU)
    gen = torch.Generator().manual_seed(4)
    x, y = (torch.rand(3, 600001, generator=gen, dtype=torch.float16) - 0.5 for _ in range(2))
    x.requires_grad_(grad)
    out = axisdot.dot(x, y, 1)
    _assert_rows(out, _expected_rows(x.detach(), y, ([1], [1])), torch.float16)
    if grad:
        out.sum().backward()
        torch.testing.assert_close(x.grad, y)


def test_the_large_vector_dot_routes_are_the_ones_described():
    seen = {}
    for name in ("row-bmm", "row-tiles", "columns", "short-row-bmm"):
        call, xs, ys, _ = LARGE_VECTOR_DOTS[name]
        with AtenLog() as log:
            call(torch.ones(xs), torch.ones(ys))
        seen[name] = log.ops
    assert "aten.bmm.default" in seen["row-bmm"] and "aten.mul.Tensor" not in seen["row-bmm"]
    assert "aten.mul.Tensor" in seen["row-tiles"] and "aten.bmm.default" not in seen["row-tiles"]
    assert "aten.bmm.default" in seen["short-row-bmm"] and "aten.mul.Tensor" not in seen["short-row-bmm"]
    assert seen["columns"].count("aten.mul.Tensor") == 1 and "aten.addcmul_.default" in seen["columns"]
    assert "aten.bmm.default" not in seen["columns"]


def test_large_vector_dot_on_a_layout_no_view_flattens():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, 1000, 300, generator=gen).transpose(1, 2)  # (4, 300, 1000), no (4, 300000) view
    y = torch.randn(4, 300, 1000, generator=gen)
    _assert_rows(axisdot.batch_dot(x, y, ((1, 2), (1, 2))), _expected_rows(x, y, ([1, 2], [1, 2])), torch.float32)


def test_large_vector_dot_under_vmap_and_compile():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(2, 300, 1000, generator=gen), torch.randn(2, 300, 1000, generator=gen)
    expected = _expected_rows(x, y, ([2], [2]))
    _assert_rows(torch.func.vmap(lambda a, b: axisdot.dot(a, b, 1))(x, y), expected, torch.float32)
    compiled = torch.compile(lambda a, b: axisdot.einsum("bij,bij->bi", a, b), backend="aot_eager", fullgraph=True)
    _assert_rows(compiled(x, y), expected, torch.float32)
