"""The layers and input shapes whose ``explain`` reports are recorded in
``layer_explain_reports.json`` (written by the implementation before issue 19 moved
``explain`` into the layers): the reports must stay the same."""
from __future__ import annotations

from typing import Any, Callable

from axisdot import Dot, EinsumDense, MultiHeadAttention

#: name -> (a fresh layer, the input shapes it is explained for)
CASES: dict[str, tuple[Callable[[], Any], tuple[tuple[int, ...], ...]]] = {
    "dense 3d gelu, small": (lambda: EinsumDense("abc,cde->abde", (None, 4, 8), "gelu", "de"), ((2, 5, 16),)),
    "dense 3d gelu, large": (lambda: EinsumDense("abc,cde->abde", (None, 4, 8), "gelu", "de"), ((64, 128, 16),)),
    "dense 3d gelu, built": (lambda: EinsumDense("abc,cde->abde", (None, 4, 8), "gelu", "de",
                                                 input_shape=(None, 5, 16)), ((2, 5, 16),)),
    "dense matrix": (lambda: EinsumDense("ab,bc->ac", 8, bias_axes="c"), ((4, 6),)),
    "dense ellipsis": (lambda: EinsumDense("...b,bc->...c", (5,), "relu"), ((2, 3, 4),)),
    "dense trailing ellipsis": (lambda: EinsumDense("ab...,bc->ac...", 5), ((2, 4, 3),)),
    "dense general": (lambda: EinsumDense("abc,bd->adc", (8, None), bias_axes="d"), ((2, 5, 3),)),
    "dense two contracted": (lambda: EinsumDense("abcd,cde->abe", (None, 6), bias_axes="e"), ((2, 3, 4, 5),)),
    "dense lora": (lambda: EinsumDense("ab,bc->ac", 8, lora_rank=2, input_shape=(None, 6)), ((3, 6),)),
    "attention": (lambda: MultiHeadAttention(2, 4), ((2, 5, 8),)),
    "attention, value": (lambda: MultiHeadAttention(2, 4), ((2, 5, 8), (2, 7, 8))),
    "attention, two axes": (lambda: MultiHeadAttention(2, 4, attention_axes=(1, 2)), ((2, 3, 4, 8),)),
    "attention, gate": (lambda: MultiHeadAttention(2, 4, value_dim=3, use_gate=True, output_shape=6),
                        ((2, 5, 8), (2, 7, 6))),
    "attention, key": (lambda: MultiHeadAttention(3, 2, key_use_bias=False, dropout=0.1),
                       ((2, 5, 8), (2, 7, 6), (2, 7, 4))),
    "attention, built": (lambda: MultiHeadAttention(2, 4, sliding_window=2, query_shape=(None, 5, 8)),
                         ((3, 5, 8),)),
    "attention, no bias": (lambda: MultiHeadAttention(2, 4, use_bias=False, attention_axes=-2), ((2, 6, 8),)),
    "dot": (lambda: Dot((2, 1), normalize=True), ((2, 3, 5), (2, 5, 4))),
    "dot, vectors": (lambda: Dot(-1), ((2, 3), (2, 3))),
}


def normalized(text: str) -> str:
    """A report without the plan-cache state, which depends on what ran before."""
    return text.replace("plan cached)", "plan ...)").replace("plan compiled now)", "plan ...)")


def without_cache_state(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: without_cache_state(v) for k, v in data.items() if k != "cached"}
    if isinstance(data, list):
        return [without_cache_state(v) for v in data]
    return data
