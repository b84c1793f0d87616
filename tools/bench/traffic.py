"""The byte/FLOP model of the kernel benchmark: unique bytes and FLOPs per call of each hot op, and the bytes one
batch-1 decode step must read (its roofline).

Bytes are *unique* bytes per call (each tensor read or written counted once, as DRAM traffic with perfect L2 reuse),
computed from the sizes of the tensors the call actually touches: for the MoE only the experts the routing selected,
for attention only the visible KV positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.kernels.attention import decode_split_size
from gpt_oss_desktop.kernels.mxfp4 import MXFP4_BLOCK

MXFP4_GROUP_BYTES = MXFP4_BLOCK // 2 + 1  # 16 bytes of e2m1 codes + 1 E8M0 scale per 32 weights


@dataclass(frozen=True)
class Traffic:
    """Unique bytes moved and useful FLOPs of one call, with the byte breakdown (for the README and tests)."""

    bytes: int
    flops: int
    parts: dict[str, int]


def make_traffic(flops: int, **parts: int) -> Traffic:
    return Traffic(bytes=sum(parts.values()), flops=flops, parts=parts)


def mxfp4_bytes(rows: int, in_features: int) -> int:
    """Packed bytes of one ``[rows, in_features]`` MXFP4 matrix: 17 bytes per 32 weights."""
    return rows * (in_features // MXFP4_BLOCK) * MXFP4_GROUP_BYTES


def rmsnorm_traffic(tokens: int, hidden: int, act_bytes: int, scale_bytes: int, *, fused_add: bool) -> Traffic:
    """rmsnorm: read x, write out; add_rmsnorm also reads delta and writes the residual sum (4 row transfers)."""
    rows = 4 if fused_add else 2
    return make_traffic(
        (5 if fused_add else 4) * tokens * hidden,  # square, accumulate, 2 multiplies (+ the add)
        rows=rows * tokens * hidden * act_bytes,
        scale=hidden * scale_bytes,
    )


def rope_traffic(tokens: int, heads: int, head_dim: int, act_bytes: int, table_bytes: int) -> Traffic:
    """rope on q or k: every element read and written once, plus the token's cos and sin rows."""
    elements = tokens * heads * head_dim
    return make_traffic(
        3 * elements,  # 2 multiplies + 1 add per output
        x=elements * act_bytes,
        out=elements * act_bytes,
        tables=2 * tokens * (head_dim // 2) * table_bytes,
    )


def router_traffic(tokens: int, experts: int, hidden: int, top_k: int, act_bytes: int, bias_bytes: int) -> Traffic:
    """router: x and the gate matrix in, fp32 weights and int64 indices out (logits stay in registers)."""
    return make_traffic(
        2 * tokens * experts * hidden,
        x=tokens * hidden * act_bytes,
        weight=experts * hidden * act_bytes,
        bias=experts * bias_bytes,
        out=tokens * top_k * (4 + 8),
    )


def moe_traffic(
    tokens: int,
    top_k: int,
    used_experts: int,
    hidden: int,
    intermediate: int,
    act_bytes: int,
    bias_bytes: int,
    index_bytes: int = 8,
) -> Traffic:
    """MoE (either form): the packed weights and bias rows of the ``used_experts`` the routing selected, x, the
    bf16 activation written by mlp1 and read by mlp2, the fp32 per-pair output written by mlp2 and read by the
    top-k sum, the output, and the routing weights/indices."""
    pairs = tokens * top_k
    per_expert = mxfp4_bytes(2 * intermediate, hidden) + mxfp4_bytes(hidden, intermediate)
    return make_traffic(
        2 * pairs * (2 * intermediate * hidden + hidden * intermediate),
        weights=used_experts * per_expert,
        biases=used_experts * (2 * intermediate + hidden) * bias_bytes,
        x=tokens * hidden * act_bytes,
        act=2 * pairs * intermediate * act_bytes,
        pair_out=2 * pairs * hidden * 4,
        out=tokens * hidden * act_bytes,
        routing=pairs * (4 + index_bytes),
    )


def _decode_visible(length: int, window: int, store_rows: int, ring: bool) -> int:
    visible = min(length, window) if window > 0 else length
    return min(visible, store_rows) if ring else visible


def attention_decode_traffic(
    lengths: list[int],
    cfg: ModelConfig,
    window: int,
    store_rows: int,
    ring: bool,
    act_bytes: int,
    kv_bytes: int,
    sink_bytes: int = 4,
) -> Traffic:
    """Decode attention: the visible K/V rows of each sequence, q and out, and the fp32 split partials (written by
    pass 1, read by pass 2), with the split count the wrapper's heuristic picks for this store."""
    batch = len(lengths)
    hq, hkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    visible = [_decode_visible(n, window, store_rows, ring) for n in lengths]
    bound = min(store_rows, window) if window > 0 else store_rows
    split = decode_split_size(batch, hkv, bound)
    splits = -(-bound // split)
    return make_traffic(
        4 * hq * d * sum(visible),  # q.k and p.v, 2 FLOPs each per head, position and dim
        kv=sum(visible) * 2 * hkv * d * kv_bytes,
        q=batch * hq * d * act_bytes,
        out=batch * hq * d * act_bytes,
        partials=2 * batch * hq * splits * (2 + d) * 4,
        sinks=hq * sink_bytes,
        slots_lengths=batch * 16,
    )


def attention_prefill_traffic(
    tokens: int, cfg: ModelConfig, window: int, act_bytes: int, kv_bytes: int, sink_bytes: int = 4
) -> Traffic:
    """Prefill attention of a fresh prompt (queries and keys at positions 0..T-1); FLOPs are the useful ones
    (visible pairs only), the kernel issues up to a 64x64 tile more per query block."""
    hq, hkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    pairs = sum(min(i + 1, window) if window > 0 else i + 1 for i in range(tokens))
    return make_traffic(
        4 * hq * d * pairs,
        q=tokens * hq * d * act_bytes,
        kv=tokens * 2 * hkv * d * kv_bytes,
        out=tokens * hq * d * act_bytes,
        positions=2 * tokens * 8,
        sinks=hq * sink_bytes,
    )


def linear_traffic(tokens: int, out_features: int, in_features: int, act_bytes: int, *, bias: bool) -> Traffic:
    """A torch ``F.linear`` (qkv/out projections, unembedding): the weight dominates at decode."""
    return make_traffic(
        2 * tokens * out_features * in_features,
        weight=out_features * in_features * act_bytes,
        bias=out_features * act_bytes if bias else 0,
        x=tokens * in_features * act_bytes,
        out=tokens * out_features * act_bytes,
    )


def kv_read_bytes(cfg: ModelConfig, context: int, kv_bytes: int = 2) -> int:
    """K and V bytes one decode step reads at ``context`` cached positions (sliding layers read <= window)."""
    per_position = 2 * cfg.num_key_value_heads * cfg.head_dim * kv_bytes
    return sum(
        per_position * (min(context, cfg.window_for_layer(layer)) if cfg.window_for_layer(layer) else context)
        for layer in range(cfg.num_hidden_layers)
    )


def roofline_bytes_per_token(
    cfg: ModelConfig, context: int, weight_bytes: int = 2, kv_bytes: int = 2
) -> dict[str, int]:
    """Bytes one batch-1 decode step must read (perf-anchors §2.1), native layout: MXFP4 experts, bf16 rest.

    20b at context 0: 3.708 GB (experts 1.271, attention 1.274, unembedding 1.158, router 0.004).
    """
    h, i, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    expert = mxfp4_bytes(2 * i, h) + mxfp4_bytes(h, i) + (2 * i + h) * weight_bytes
    attention = (cfg.qkv_size * h + h * cfg.q_size + cfg.qkv_size + h) * weight_bytes
    parts = {
        "experts": layers * cfg.experts_per_token * expert,
        "attention": layers * attention,
        "router": layers * (cfg.num_experts * h + cfg.num_experts) * weight_bytes,
        "unembedding": cfg.vocab_size * h * weight_bytes,
        "embedding_row": h * weight_bytes,
        "norms_sinks": (2 * layers + 1) * h * 4 + layers * cfg.num_attention_heads * 4,
        "kv": kv_read_bytes(cfg, context, kv_bytes),
    }
    parts["total"] = sum(parts.values())
    return parts


def model_bytes_per_token(model: Any, context: int) -> int:
    """Bytes a batch-1 decode step of a loaded :class:`engine.model.Model` reads: every attention, norm and router
    tensor, k experts' share of each expert tensor, the unembedding, one embedding row and the KV at ``context``."""
    cfg: ModelConfig = model.config
    k = cfg.experts_per_token
    total = model.unembedding.nbytes + model.norm.nbytes + model.embedding[0].nbytes
    for block in model.blocks:
        a, m = block.attn, block.mlp
        total += sum(t.nbytes for t in (a.norm, a.qkv_weight, a.qkv_bias, a.sinks, a.out_weight, a.out_bias))
        total += sum(t.nbytes for t in (m.norm, m.gate_weight, m.gate_bias))
        total += k * (m.mlp1.nbytes + m.mlp2.nbytes) // m.mlp1.num_experts
        total += k * (m.mlp1_bias[0].nbytes + m.mlp2_bias[0].nbytes)
    return int(total + kv_read_bytes(cfg, context, torch.empty((), dtype=model.dtype).element_size()))
