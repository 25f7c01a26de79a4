"""axisdot.explain: the report's content, its code line, and its agreement with what runs."""
from __future__ import annotations

import json
import math
import sys
import threading

import numpy as np
import opt_einsum
import pytest
import torch

import axisdot
from axisdot.testing.reference import reference_dot, reference_einsum, reference_tensordot


def test_explain_of_the_article_case_names_every_axis():
    axisdot.cache_clear()
    e = axisdot.explain((32, 64, 10, 128), (32, 128, 32, 15), (3, 1))
    assert e.equation == "bijk,bklm->bijlm"
    assert e.input_shapes == ((32, 64, 10, 128), (32, 128, 32, 15))
    assert e.output_shape == (32, 64, 10, 32, 15)
    assert e.inputs[0].roles == ("batch", "free", "free", "contracted")
    assert e.inputs[1].roles == ("batch", "contracted", "free", "free")
    assert e.output.letters == "bijlm" and e.reshape is None
    assert e.flops == 2 * 32 * 64 * 10 * 128 * 32 * 15  # one multiply and one add per index combination
    assert e.largest_intermediate == 32 * 64 * 10 * 32 * 15
    assert e.cached is False
    assert axisdot.explain((32, 64, 10, 128), (32, 128, 32, 15), (3, 1)).cached is True


def test_explain_and_dot_share_the_plan_cache():
    axisdot.cache_clear()
    x, y = torch.ones(2, 3, 4), torch.ones(2, 4, 5)
    axisdot.dot(x, y, (2, 1))
    assert axisdot.explain(x, y, (2, 1)).cached is True


def test_the_keras_rank1_rule_is_shown_as_a_final_reshape():
    e = axisdot.explain((8, 16), (8, 16), 1)
    assert e.equation == "bi,bi->b"
    assert e.reshape == ((8,), (8, 1))
    assert e.output_shape == (8, 1)
    assert "then reshape (8,) -> (8, 1)" in str(e)


@pytest.mark.parametrize(
    "x_shape, y_shape, kwargs, reference",
    [
        ((3, 4, 5), (3, 5, 6), {"axes": (2, 1)}, lambda x, y: reference_dot(x, y, (2, 1))),
        ((3, 5), (3, 5), {"axes": 1}, lambda x, y: reference_dot(x, y, 1)),
        ((3, 4, 5), (3, 6, 5), {"axes": -1, "normalize": True}, lambda x, y: reference_dot(x, y, -1, True)),
        ((3, 4, 5), (3, 5, 4), {"axes": ((1, 2), (2, 1)), "normalize": True},
         lambda x, y: reference_dot(x, y, ((1, 2), (2, 1)), True)),
        ((3, 4, 5), (4, 5, 2), {"mode": "tensordot", "axes": 2}, lambda x, y: reference_tensordot(x, y, 2)),
        ((3, 4), (3, 4, 2), {"mode": "batch_dot"}, lambda x, y: reference_dot(x, y, (1, 1))),
    ],
    ids=["dot", "rank1", "normalize", "multi-axis-normalize", "tensordot", "batch_dot-default"],
)
def test_the_pasteable_torch_line_gives_the_same_result(x_shape, y_shape, kwargs, reference):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(x_shape, generator=gen, dtype=torch.float64)
    y = torch.randn(y_shape, generator=gen, dtype=torch.float64)
    e = axisdot.explain(x, y, **kwargs)
    got = eval(e.code, {"torch": torch, "x": x, "y": y})  # noqa: S307 - the line is what users paste
    expected = reference(x, y)
    assert tuple(got.shape) == expected.shape == e.output_shape
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_explain_with_ranks_only_gives_letters_but_no_sizes():
    e = axisdot.explain(3, 3, (2, 1))
    assert e.equation == "bij,bjk->bik" and e.input_shapes == (None, None)
    assert e.output_shape is None and e.flops is None
    assert "rank 3" in str(e) and "give shapes, not ranks" in str(e)


def test_dot_general_explanation_orders_batch_then_free_axes():
    e = axisdot.explain((4, 3, 2), (2, 4), mode="dot_general", contract=((0,), (1,)), batch=((2,), (0,)))
    assert e.output_shape == (2, 3)
    assert e.inputs[0].roles == ("contracted", "free", "batch")


def test_the_report_aligns_letters_under_their_sizes():
    text = str(axisdot.explain((32, 64, 10, 128), (32, 128, 32, 15), (3, 1)))
    lines = text.splitlines()
    x_line = next(i for i, line in enumerate(lines) if line.lstrip().startswith("x "))
    sizes, letters = lines[x_line], lines[x_line + 1]
    assert sizes.index("128") + len("128") == letters.index("k*") + len("k*")
    assert sizes.index("64") + 2 == letters.index("i") + 1
    assert "contracted k" in text and "batch b" in text and "free i j l m" in text
    assert 'torch.einsum("bijk,bklm->bijlm", x, y)' in text


def test_to_dict_is_json_ready_and_carries_the_same_facts():
    e = axisdot.explain((4, 3, 5), (4, 5, 2), (2, 1))
    data = json.loads(json.dumps(e.to_dict()))
    assert data["equation"] == e.equation and data["output_shape"] == [4, 3, 2]
    assert data["input_shapes"] == [[4, 3, 5], [4, 5, 2]]
    assert data["inputs"][0]["roles"] == ["batch", "free", "contracted"]
    assert data["code"] == e.code and data["cached"] in (True, False)


def test_einsum_explanation_gives_the_path_and_opt_einsums_cost():
    shapes = [(8, 32, 64), (8, 64, 16), (8, 16, 4)]
    e = axisdot.explain("bij,bjk,bkl->bil", *shapes)
    _, info = opt_einsum.contract_path("bij,bjk,bkl->bil", *shapes, shapes=True)
    assert len(e.path) == 2
    assert e.flops == info.opt_cost
    assert e.largest_intermediate == info.largest_intermediate
    assert e.output_shape == (8, 32, 4)
    ops = [torch.randn(s, dtype=torch.float64) for s in shapes]
    got = eval(e.code, {"torch": torch, "a": ops[0], "b": ops[1], "c": ops[2]})  # noqa: S307
    np.testing.assert_allclose(got.numpy(), reference_einsum("bij,bjk,bkl->bil", *ops), atol=1e-9)
    assert "operands" in str(e) and "chosen by opt_einsum" in str(e)


def test_explain_refuses_what_the_call_would_refuse_with_the_same_error():
    with pytest.raises(axisdot.ShapeError, match=r"x axis 3 \(size 128\)"):
        axisdot.explain((32, 64, 10, 128), (32, 127, 32, 15), (3, 1))
    with pytest.raises(axisdot.AxesError, match="batch axis"):
        axisdot.explain((2, 3), (2, 3), 0)
    with pytest.raises(axisdot.ArgumentError, match="mode"):  # a str, but not a mode: ValueError
        axisdot.explain((2, 3), (2, 3), 1, mode="matmul")
    with pytest.raises(axisdot.EquationError, match="full shape"):
        axisdot.explain("ij,jk->ik", 2, (3, 4))


def test_explain_cost_matches_an_independent_count():
    e = axisdot.explain((5, 7), (7, 3), mode="tensordot", axes=1)
    assert e.flops == 2 * 5 * 7 * 3 and e.largest_intermediate == 15 and math.prod(e.output_shape) == 15


def test_explain_of_dot_general_refuses_what_the_call_refuses():
    x, y = torch.ones(2, 3), torch.ones(2, 3)
    with pytest.raises(axisdot.AxesError, match="batch must be a pair") as call:
        axisdot.dot_general(x, y, ((1,), (1,)), None)
    with pytest.raises(axisdot.AxesError, match="batch must be a pair") as explained:
        axisdot.explain(x, y, mode="dot_general", contract=((1,), (1,)), batch=None)
    assert type(explained.value) is type(call.value)
    # and what the call accepts, explain accepts: batch left out means no batch axes
    e = axisdot.explain(x, y, mode="dot_general", contract=((1,), (1,)))
    assert e.output_shape == tuple(axisdot.dot_general(x, y, ((1,), (1,))).shape)


def test_explanation_cached_is_right_while_other_threads_use_the_cache():
    stop = threading.Event()
    x = torch.ones(2, 3)

    def hammer() -> None:  # cache hits, as fast as they come
        while not stop.is_set():
            axisdot.dot(x, x, 1)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        wrong = []
        for rank in range(2, 24):
            axisdot.cache_clear()
            e = axisdot.explain(rank, rank, (1, 1))  # a plan nobody has built yet
            if e.cached:
                wrong.append(rank)
            if not axisdot.explain(rank, rank, (1, 1)).cached:
                wrong.append(-rank)
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(old)
    assert not wrong, f"cached misreported for ranks {wrong}"
