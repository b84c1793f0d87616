"""Every transformer block of a CPU decode step as one C++ call (``kernels/cpu/decode_layers.cpp``).

The call runs the kernels that :meth:`engine.model.Model.decode_forward` reaches through :mod:`engine.ops` for a bf16
decode batch (fused GEMVs, RoPE, the KV-cache write, decode attention, the router's top-k, the MoE, the fused
add+RMSNorms) with the same arguments and in the same order, so it gives the same bits; what it removes is ~10
Python-level op calls per block. Right after a kernel has streamed megabytes of weights, those calls find the
interpreter's and torch's state out of the caches and take 4-8x their warm time (see the C++ file's header).

:meth:`CpuDecodeBlocks.pack` collects each block's tensors once per model; :meth:`CpuDecodeBlocks.run` returns None
whenever a step is not one the call takes (fused kernels off or unbuilt, fp32 activations, a batch past the GEMVs'
row-exact limit), and the model then runs its blocks op by op.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.kv_cache import KVCache
from gpt_oss_desktop.engine.ops import BF16_FUSED_MAX_TOKENS, cpu_fused_enabled
from gpt_oss_desktop.kernels import cpu_build
from gpt_oss_desktop.kernels.bf16_packed import PackedBf16Weight
from gpt_oss_desktop.kernels.moe import Mxfp4Experts
from gpt_oss_desktop.kernels.q8 import Q8Weight

if TYPE_CHECKING:
    from gpt_oss_desktop.engine.model import BlockWeights

logger = logging.getLogger(__name__)

__all__ = ["CpuDecodeBlocks"]

_NO_SCALES = torch.empty(0)  # a bf16 projection's scales slot (decode_layers.cpp's BlockTensor order)


def _projection(weight: torch.Tensor | Q8Weight | PackedBf16Weight) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(weight, int8 values or packed data; an empty tensor, scales or packed meta) as the C++ call takes a
    projection, or None if it cannot."""
    if isinstance(weight, Q8Weight):
        return weight.values, weight.scales
    if isinstance(weight, PackedBf16Weight):
        return weight.data, weight.meta
    if weight.dtype == torch.bfloat16:
        return weight, _NO_SCALES
    return None


def _block_tensors(block: BlockWeights) -> list[torch.Tensor] | None:
    """One block's tensors in decode_layers.cpp's BlockTensor order, or None if a kernel of the call cannot take one
    (dense experts, fp32 weights: the op-by-op path handles those)."""
    attn, mlp = block.attn, block.mlp
    qkv, out = _projection(attn.qkv_weight), _projection(attn.out_weight)
    if qkv is None or out is None or not isinstance(mlp.mlp1, Mxfp4Experts) or not isinstance(mlp.mlp2, Mxfp4Experts):
        return None
    if any(t.dtype != torch.bfloat16 for t in (mlp.gate_weight, attn.qkv_bias, attn.out_bias, mlp.gate_bias)):
        return None
    tensors = [
        attn.norm,
        *qkv,
        attn.qkv_bias,
        attn.sinks,
        *out,
        attn.out_bias,
        mlp.norm,
        mlp.gate_weight,
        mlp.gate_bias,
        mlp.mlp1.blocks,
        mlp.mlp1.scales,
        mlp.mlp1_bias,
        mlp.mlp2.blocks,
        mlp.mlp2.scales,
        mlp.mlp2_bias,
    ]
    if any(t.device.type != "cpu" or not t.is_contiguous() for t in tensors):
        return None
    if any(t.dtype != torch.float32 for t in (attn.norm, attn.sinks, mlp.norm)):
        return None
    if any(b.dtype not in (torch.float32, torch.bfloat16) for b in (mlp.mlp1_bias, mlp.mlp2_bias)):
        return None
    return tensors


@dataclass(frozen=True)
class CpuDecodeBlocks:
    """A model's blocks packed for the one-call decode; ``tensors`` is None where the model cannot use it."""

    config: ModelConfig
    tensors: tuple[torch.Tensor, ...] | None
    final_norm: torch.Tensor

    @classmethod
    def pack(cls, blocks: Sequence[BlockWeights], final_norm: torch.Tensor, config: ModelConfig) -> CpuDecodeBlocks:
        per_block = [_block_tensors(block) for block in blocks]
        usable = bool(per_block) and all(t is not None for t in per_block) and final_norm.dtype == torch.float32
        if not usable:
            logger.info("decode runs block by block: a block's weights are not ones the one-call decode takes")
        tensors = tuple(t for block in per_block if block is not None for t in block) if usable else None
        return cls(config=config, tensors=tensors, final_norm=final_norm)

    def run(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        slots: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache,
    ) -> torch.Tensor | None:
        """The final-normed hidden states ``[B, H]`` after every block, having written each block's K/V of
        ``positions[b]`` into slot ``slots[b]`` of ``cache`` (room reserved by the caller); None when this step is
        not one the call takes.

        ``x``: the tokens' embeddings ``[B, H]``; ``cos``/``sin``: fp32 RoPE tables ``[B, D/2]`` of ``positions``.
        """
        if (
            self.tensors is None
            or x.device.type != "cpu"
            or x.dtype != torch.bfloat16
            or x.dim() != 2
            or x.shape[0] > BF16_FUSED_MAX_TOKENS
            or cache.dtype != torch.bfloat16
            or not cpu_fused_enabled()
        ):
            return None
        cfg = self.config
        normed: torch.Tensor = cpu_build.ops().decode_layers(
            x.contiguous(),
            cos.float().contiguous(),
            sin.float().contiguous(),
            slots.to(torch.int64).contiguous(),
            positions.to(torch.int64).contiguous(),
            list(self.tensors),
            cache.keys,
            cache.values,
            cache.windows,
            self.final_norm,
            float(cfg.rms_norm_eps),
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.experts_per_token,
            float(cfg.swiglu_limit),
            float(cfg.swiglu_alpha),
            float(cfg.head_dim**-0.5),
        )
        return normed
