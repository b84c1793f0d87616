"""MoE router (spec §2.6 steps 2–3): linear with bias, top-k on the logits, softmax over the k. Torch reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def router_ref(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Route each token to ``k`` experts.

    Args:
        x: ``[T, H]`` normed activations.
        weight: ``[E, H]``; bias: ``[E]``.
        k: experts per token.

    Returns:
        ``(weights, indices)``: fp32 ``[T, k]`` routing weights summing to 1 per token, int64 ``[T, k]`` expert ids
        in descending logit order.
    """
    logits = F.linear(x, weight, bias)  # [T, E]
    top_values, top_indices = torch.topk(logits, k, dim=-1, sorted=True)
    return torch.softmax(top_values.float(), dim=-1), top_indices
