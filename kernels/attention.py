"""Grouped-query attention with learned sinks and an optional sliding window (spec §2.4): torch reference.

The reference works on explicit absolute positions for queries and keys, so one function serves prefill from any
cache offset, decode, and ring-buffer (sliding-window) caches whose keys are not stored in position order.
"""

from __future__ import annotations

import torch

# Largest fp32 score block (heads x queries x keys) materialised at once; bounds prefill memory on long prompts.
_MAX_SCORE_ELEMENTS = 1 << 26  # 256 MiB of fp32


def attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    sinks: torch.Tensor,
    q_pos: torch.Tensor,
    k_pos: torch.Tensor,
    window: int,
    sm_scale: float,
) -> torch.Tensor:
    """Causal (optionally banded) attention with one sink logit per query head, computed in fp32.

    Args:
        q: ``[T, Hq, D]`` queries (RoPE applied).
        k, v: ``[S, Hkv, D]`` keys (RoPE applied) and values; ``Hq`` is a multiple of ``Hkv`` and query head ``h``
            reads KV head ``h // (Hq // Hkv)``.
        sinks: ``[Hq]`` sink logits: an extra softmax column with no value vector (denominator only), unscaled.
        q_pos: ``[T]`` int64 absolute positions of the queries.
        k_pos: ``[S]`` int64 absolute positions of the keys; negative marks an empty slot.
        window: keys visible to a query including itself (``q - window < k <= q``); 0 means full causal.
        sm_scale: multiplier of the q·k dot product.

    Returns:
        ``[T, Hq, D]`` in ``q.dtype``.
    """
    num_queries, num_q_heads, head_dim = q.shape
    num_keys, num_kv_heads, _ = k.shape
    group = num_q_heads // num_kv_heads
    # GQA without repeating K/V: view query heads as [Hkv, G] so each group shares one key head.
    k32 = k.float().permute(1, 0, 2)  # [Hkv, S, D]
    v32 = v.float().permute(1, 0, 2)  # [Hkv, S, D]
    sink_column = sinks.float().view(num_kv_heads, group, 1, 1)  # [Hkv, G, 1, 1]
    out = torch.empty_like(q)
    chunk = max(1, _MAX_SCORE_ELEMENTS // max(1, num_q_heads * num_keys))
    for start in range(0, num_queries, chunk):
        stop = min(num_queries, start + chunk)
        q32 = q[start:stop].float().view(stop - start, num_kv_heads, group, head_dim).permute(1, 2, 0, 3)
        # q32: [Hkv, G, t, D]; scores: [Hkv, G, t, S]
        scores = torch.matmul(q32, k32.unsqueeze(1).transpose(-1, -2)) * sm_scale
        qp = q_pos[start:stop, None]  # [t, 1]
        kp = k_pos[None, :]  # [1, S]
        visible = (kp <= qp) & (kp >= 0)
        if window > 0:
            visible &= kp > qp - window
        scores = scores.masked_fill(~visible, float("-inf"))
        # Sink as an extra column: softmax over [scores | sink], then drop the sink's probability.
        logits = torch.cat((scores, sink_column.expand(-1, -1, stop - start, 1)), dim=-1)
        probs = torch.softmax(logits, dim=-1)[..., :-1]  # [Hkv, G, t, S]
        o = torch.matmul(probs, v32.unsqueeze(1))  # [Hkv, G, t, D]
        out[start:stop] = o.permute(2, 0, 1, 3).reshape(stop - start, num_q_heads, head_dim).to(q.dtype)
    return out


def attention_decode_ref(
    q: torch.Tensor,
    k_store: torch.Tensor,
    v_store: torch.Tensor,
    sinks: torch.Tensor,
    slots: torch.Tensor,
    lengths: torch.Tensor,
    window: int,
    ring: bool,
    sm_scale: float,
) -> torch.Tensor:
    """One query per sequence against that sequence's cached keys (the batched decode step).

    Args:
        q: ``[B, Hq, D]`` queries, the one for sequence ``b`` at absolute position ``lengths[b] - 1``.
        k_store, v_store: the cache storage of one layer, ``[slots_total, S, Hkv, D]``; row ``slots[b]`` holds
            sequence ``b``, its current token already written.
        sinks: ``[Hq]``; slots: int64 ``[B]`` cache rows; lengths: int64 ``[B]`` tokens held (current included).
        window: keys visible including the current one (0 = full causal).
        ring: the store is a ring of ``S == window`` rows where position ``p`` lives at row ``p % S``; otherwise
            position ``p`` lives at row ``p``.
        sm_scale: multiplier of q·k.

    Returns:
        ``[B, Hq, D]`` in ``q.dtype``.
    """
    outputs = []
    rows = k_store.shape[1]
    for b in range(q.shape[0]):
        length = int(lengths[b])
        held = min(length, rows) if ring else length
        positions = torch.arange(length - held, length, device=q.device)  # [held]
        index = positions % rows if ring else positions
        slot = int(slots[b])
        outputs.append(
            attention_ref(
                q[b : b + 1],
                k_store[slot, index],
                v_store[slot, index],
                sinks,
                positions[-1:],
                positions,
                window,
                sm_scale,
            )
        )
    return torch.cat(outputs)
