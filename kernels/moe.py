"""Mixture-of-experts MLP with MXFP4 (or dense) expert weights (spec §2.6): torch reference.

Work is grouped by expert, never by token: tokens routed to an expert are gathered, the expert's weights are
decoded once (only for experts some token selected), and one matmul per projection serves all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kernels.mxfp4 import dequantize_mxfp4


@dataclass(frozen=True)
class Mxfp4Experts:
    """Packed expert weights exactly as the checkpoint stores them.

    blocks: uint8 ``[E, out, in/32, 16]``; scales: uint8 ``[E, out, in/32]``.
    """

    blocks: torch.Tensor
    scales: torch.Tensor

    @property
    def num_experts(self) -> int:
        return int(self.blocks.shape[0])

    @property
    def out_features(self) -> int:
        return int(self.blocks.shape[1])

    @property
    def in_features(self) -> int:
        return int(self.blocks.shape[2] * 32)

    def expert(self, index: int, dtype: torch.dtype) -> torch.Tensor:
        """``[out, in]`` weight of one expert, decoded now (never cached)."""
        return dequantize_mxfp4(self.blocks[index], self.scales[index], dtype)

    @property
    def nbytes(self) -> int:
        return self.blocks.numel() + self.scales.numel()


@dataclass(frozen=True)
class DenseExperts:
    """Unquantised expert weights ``[E, out, in]`` (nn.Linear orientation)."""

    weight: torch.Tensor

    @property
    def num_experts(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[2])

    def expert(self, index: int, dtype: torch.dtype) -> torch.Tensor:
        return self.weight[index].to(dtype)

    @property
    def nbytes(self) -> int:
        return self.weight.numel() * self.weight.element_size()


ExpertWeights = Mxfp4Experts | DenseExperts

# ``linear(x [n, in], experts, index, bias [out]) -> [n, out]``: one expert's projection.
ExpertLinear = Callable[[torch.Tensor, ExpertWeights, int, torch.Tensor], torch.Tensor]


def expert_linear_ref(x: torch.Tensor, experts: ExpertWeights, index: int, bias: torch.Tensor) -> torch.Tensor:
    """Decode one expert's weight to ``x.dtype`` and apply it (the reference; materialises that one expert)."""
    return F.linear(x, experts.expert(index, x.dtype), bias.to(x.dtype))


def swiglu_ref(h: torch.Tensor, limit: float, alpha: float) -> torch.Tensor:
    """gpt-oss SwiGLU on interleaved ``h`` ``[T, 2I]``: even columns gate, odd columns linear -> ``[T, I]``."""
    gate = h[..., 0::2].clamp(max=limit)
    linear = h[..., 1::2].clamp(min=-limit, max=limit)
    return gate * torch.sigmoid(alpha * gate) * (linear + 1.0)


def moe_ref(
    x: torch.Tensor,
    routing_weights: torch.Tensor,
    expert_indices: torch.Tensor,
    mlp1: ExpertWeights,
    mlp1_bias: torch.Tensor,
    mlp2: ExpertWeights,
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
    swiglu_alpha: float,
    expert_linear: ExpertLinear = expert_linear_ref,
) -> torch.Tensor:
    """Weighted sum over each token's selected experts of ``mlp2(swiglu(mlp1(x)))``.

    Args:
        x: ``[T, H]`` normed activations.
        routing_weights: fp32 ``[T, k]``; expert_indices: int64 ``[T, k]``.
        mlp1: experts ``[E, 2I, H]``; mlp1_bias ``[E, 2I]``.
        mlp2: experts ``[E, H, I]``; mlp2_bias ``[E, H]``.
        expert_linear: how one expert's projection is computed (the CPU path swaps in a fused MXFP4 kernel).

    Returns:
        ``[T, H]`` in ``x.dtype`` (accumulated in fp32).
    """
    num_tokens, top_k = expert_indices.shape
    flat_experts = expert_indices.reshape(-1)  # [T*k]
    # Sort (token, slot) pairs by expert so each expert sees one contiguous run of rows.
    order = torch.argsort(flat_experts, stable=True)
    counts = torch.bincount(flat_experts, minlength=mlp1.num_experts).tolist()
    token_of = order // top_k  # [T*k] source token of each sorted pair
    # Expert outputs in sorted order; gathered back per token below (cheaper than index_add_ on CPU).
    sorted_out = torch.empty(num_tokens * top_k, x.shape[-1], dtype=x.dtype, device=x.device)  # [T*k, H]
    start = 0
    for expert, count in enumerate(counts):
        if count == 0:
            continue
        xs = x[token_of[start : start + count]]  # [n, H]
        h = expert_linear(xs, mlp1, expert, mlp1_bias[expert])  # [n, 2I]
        a = swiglu_ref(h, swiglu_limit, swiglu_alpha)  # [n, I]
        sorted_out[start : start + count] = expert_linear(a, mlp2, expert, mlp2_bias[expert])  # [n, H]
        start += count
    per_slot = sorted_out[torch.argsort(order)].view(num_tokens, top_k, -1)  # [T, k, H] in routing order
    # Weight each expert's output by its routing probability and sum over the k experts, in fp32.
    return torch.einsum("tkh,tk->th", per_slot.float(), routing_weights.float()).to(x.dtype)
