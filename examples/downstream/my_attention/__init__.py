"""Attention scores written by hand in plain torch: no axisdot at run time."""
import torch


def my_attention_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``keras.layers.Dot(axes=(2, 2))([q, k])``: q (batch, q_len, d), k (batch, k_len, d)
    -> scores (batch, q_len, k_len)."""
    return torch.matmul(q, k.transpose(1, 2))
