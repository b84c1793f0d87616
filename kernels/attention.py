"""Grouped-query attention with learned sinks and an optional sliding window (docs/model.md#attention): torch reference.

The reference works on explicit absolute positions for queries and keys, so one function serves prefill from any
cache offset, decode, and ring-buffer (sliding-window) caches whose keys are not stored in position order.
"""

from __future__ import annotations

import torch

# The Triton kernels below are optional: without the package this module still imports (the references work) and
# the Triton wrappers raise a clear error.
from gpt_oss_desktop.kernels._triton import TRITON_IMPORT_ERROR as _TRITON_IMPORT_ERROR
from gpt_oss_desktop.kernels._triton import tl, triton
from gpt_oss_desktop.kernels._triton import triton_jit as _triton_jit

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
        count = stop - start
        # [t, Hq, D] -> [Hkv, G*t, D]: one batched matmul per KV head serves its whole query group, so K and V are
        # never expanded G times (a broadcast matmul would copy them).
        q32 = q[start:stop].float().view(count, num_kv_heads, group, head_dim).permute(1, 2, 0, 3)
        q32 = q32.reshape(num_kv_heads, group * count, head_dim)
        scores = torch.bmm(q32, k32.transpose(1, 2)).view(num_kv_heads, group, count, num_keys) * sm_scale
        qp = q_pos[start:stop, None]  # [t, 1]
        kp = k_pos[None, :]  # [1, S]
        visible = (kp <= qp) & (kp >= 0)
        if window > 0:
            visible &= kp > qp - window
        scores = scores.masked_fill(~visible, float("-inf"))
        # Sink as an extra column: softmax over [scores | sink], then drop the sink's probability.
        logits = torch.cat((scores, sink_column.expand(-1, -1, count, 1)), dim=-1)
        probs = torch.softmax(logits, dim=-1)[..., :-1]  # [Hkv, G, t, S]
        o = torch.bmm(probs.reshape(num_kv_heads, group * count, num_keys), v32)  # [Hkv, G*t, D]
        o = o.view(num_kv_heads, group, count, head_dim)
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


# ================================================================================================ Triton kernels
#
# Layout conventions shared by the kernels below (all row-major, last dim unit-stride):
#   prefill: q [T, Hq, D], k/v [S, Hkv, D], out [T, Hq, D]
#   decode:  q [B, Hq, D], k/v store [R, S, Hkv, D], partials m/l [B, Hq, NS], acc [B, Hq, NS, D], out [B, Hq, D]
# Softmax runs in the log2 domain: scores are multiplied by sm_scale * log2(e) and sinks by log2(e), so exp2 of a
# difference equals exp of the natural-log difference; the sink seeds the running max (finite from the start, so
# exp2(m_old - m_new) never sees -inf - -inf) and joins the denominator once at the end.

_LOG2E = 1.4426950408889634
# Prefill tile: 64 queries x 64 keys of one query head. Big enough for tensor-core MMAs with D = 64 (and few
# programs in the interpreter), small enough for fp32 q/acc tiles (2 x 16 KiB) to stay in registers.
_PREFILL_BLOCK_M = 64
_PREFILL_BLOCK_N = 64
# Decode: 64 cached positions per step; one program holds all G query heads of its KV head (padded to >= 16 rows,
# the smallest M of tl.dot on a GPU) so each K/V byte is read once per group, not G times.
_DECODE_BLOCK_N = 64
# Split-K sizing: aim for about this many (sequence, kv head, split) programs so a small batch still fills the GPU
# (132 SMs on an H100, ~2 programs each); cap the split count so the combine step holds all partials of one head in
# registers ([64, D] fp32).
_DECODE_TARGET_PROGRAMS = 256
_DECODE_MAX_SPLITS = 64
_DECODE_MAX_FORCED_SPLITS = 128  # bound for an explicit split_size
# Tests set this to fill internal scratch (split partials) with NaN, so an unwritten partial shows up in the output.
_POISON_SCRATCH = False


@_triton_jit
def _attention_prefill_kernel(
    q_ptr: tl.tensor,  # [T, Hq, D]
    k_ptr: tl.tensor,  # [S, Hkv, D]
    v_ptr: tl.tensor,  # [S, Hkv, D]
    sinks_ptr: tl.tensor,  # [Hq]
    q_pos_ptr: tl.tensor,  # [T] int64
    k_pos_ptr: tl.tensor,  # [S] int64, negative = empty
    out_ptr: tl.tensor,  # [T, Hq, D]
    num_queries: tl.tensor,
    num_keys: tl.tensor,
    stride_qt: tl.tensor,
    stride_qh: tl.tensor,
    stride_kt: tl.tensor,
    stride_kh: tl.tensor,
    stride_vt: tl.tensor,
    stride_vh: tl.tensor,
    stride_ot: tl.tensor,
    stride_oh: tl.tensor,
    window: tl.tensor,
    score_scale: tl.tensor,  # sm_scale * log2(e)
    sink_scale: tl.tensor,  # log2(e)
    GROUP: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    WINDOWED: tl.constexpr,
    PRECISION: tl.constexpr,
) -> None:
    # Program (query block, query head); query head h reads KV head h // GROUP straight from k/v (no repeat).
    block = tl.program_id(0).to(tl.int64)
    head = tl.program_id(1).to(tl.int64)
    kv_head = head // GROUP
    rows = block * BLOCK_M + tl.arange(0, BLOCK_M)  # [BM] query indices
    row_ok = rows < num_queries
    dims = tl.arange(0, HEAD_DIM)  # [D]

    # Upcast right after the load: bf16 arithmetic is wrong in the interpreter, and fp32 is what we want anyway.
    q = tl.load(
        q_ptr + rows[:, None] * stride_qt + head * stride_qh + dims[None, :], mask=row_ok[:, None], other=0.0
    ).to(tl.float32)  # [BM, D]
    q_pos = tl.load(q_pos_ptr + rows, mask=row_ok, other=-1)  # [BM] int64; padded rows see nothing
    # Position range of the real queries in this block: a key block can only matter if some key lies inside
    # [q_lo - window + 1, q_hi] (or [0, q_hi] without a window). Works for any key order (ring caches).
    q_hi = tl.max(tl.where(row_ok, q_pos, -1), axis=0)
    q_lo = tl.min(tl.where(row_ok, q_pos, 1 << 62), axis=0)

    sink = tl.load(sinks_ptr + head).to(tl.float32) * sink_scale  # scalar, log2 domain
    m = tl.zeros([BLOCK_M], dtype=tl.float32) + sink  # running max, seeded by the sink
    denom = tl.zeros([BLOCK_M], dtype=tl.float32)  # running sum of exp2(score - m) over keys only
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)  # running sum of exp2(score - m) * v

    for start in range(0, num_keys, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)  # [BN] key indices (storage order, not positions)
        k_pos = tl.load(k_pos_ptr + cols, mask=cols < num_keys, other=-1)  # [BN] int64
        k_hi = tl.max(k_pos, axis=0)
        k_lo = tl.min(tl.where(k_pos >= 0, k_pos, 1 << 62), axis=0)
        live = (k_hi >= 0) & (k_lo <= q_hi)
        if WINDOWED:
            live = live & (k_hi > q_lo - window)
        # Skip the K/V loads and both MMAs when no (query, key) pair of this tile can be visible.
        if live:
            key_ok = (cols < num_keys) & (k_pos >= 0)  # empty slots may hold anything: never load them
            k = tl.load(
                k_ptr + cols[:, None] * stride_kt + kv_head * stride_kh + dims[None, :],
                mask=key_ok[:, None],
                other=0.0,
            ).to(tl.float32)  # [BN, D]
            v = tl.load(
                v_ptr + cols[:, None] * stride_vt + kv_head * stride_vh + dims[None, :],
                mask=key_ok[:, None],
                other=0.0,
            ).to(tl.float32)  # [BN, D]
            scores = tl.dot(q, tl.trans(k), input_precision=PRECISION) * score_scale  # [BM, BN]
            visible = (k_pos[None, :] >= 0) & (k_pos[None, :] <= q_pos[:, None])
            if WINDOWED:
                visible = visible & (k_pos[None, :] > q_pos[:, None] - window)
            scores = tl.where(visible, scores, float("-inf"))
            m_new = tl.maximum(m, tl.max(scores, axis=1))  # finite: m started at the sink
            rescale = tl.exp2(m - m_new)  # [BM]
            p = tl.exp2(scores - m_new[:, None])  # [BM, BN]; masked -> exactly 0
            denom = denom * rescale + tl.sum(p, axis=1)
            acc = acc * rescale[:, None] + tl.dot(p, v, input_precision=PRECISION)
            m = m_new

    # The sink adds exp(sink - m) to the denominator only (it has no value vector).
    out = acc / (denom + tl.exp2(sink - m))[:, None]
    tl.store(
        out_ptr + rows[:, None] * stride_ot + head * stride_oh + dims[None, :],
        out.to(out_ptr.dtype.element_ty),
        mask=row_ok[:, None],
    )


@_triton_jit
def _attention_decode_split_kernel(
    q_ptr: tl.tensor,  # [B, Hq, D]
    k_ptr: tl.tensor,  # [R, S, Hkv, D]
    v_ptr: tl.tensor,  # [R, S, Hkv, D]
    sinks_ptr: tl.tensor,  # [Hq]
    slots_ptr: tl.tensor,  # [B] int64
    lengths_ptr: tl.tensor,  # [B] int64
    part_m_ptr: tl.tensor,  # [B, Hq, NS] fp32
    part_l_ptr: tl.tensor,  # [B, Hq, NS] fp32
    part_acc_ptr: tl.tensor,  # [B, Hq, NS, D] fp32
    stride_qb: tl.tensor,
    stride_qh: tl.tensor,
    stride_kr: tl.tensor,
    stride_ks: tl.tensor,
    stride_kh: tl.tensor,
    stride_vr: tl.tensor,
    stride_vs: tl.tensor,
    stride_vh: tl.tensor,
    store_rows: tl.tensor,  # S
    window: tl.tensor,
    split_size: tl.tensor,  # positions per split, a multiple of BLOCK_N
    num_splits: tl.tensor,
    num_q_heads: tl.tensor,
    score_scale: tl.tensor,
    sink_scale: tl.tensor,
    GROUP: tl.constexpr,
    BLOCK_G: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_N: tl.constexpr,
    WINDOWED: tl.constexpr,
    RING: tl.constexpr,
    PRECISION: tl.constexpr,
) -> None:
    # Program (sequence, KV head, split): all GROUP query heads of this KV head against one contiguous run of
    # positions; it writes unnormalised partials (m, l, acc) that the combine kernel merges with the sink.
    seq = tl.program_id(0).to(tl.int64)
    kv_head = tl.program_id(1).to(tl.int64)
    split = tl.program_id(2).to(tl.int64)
    length = tl.load(lengths_ptr + seq)  # int64, the current token included
    slot = tl.load(slots_ptr + seq)  # int64
    # Visible positions are [first, length): the window's start, and on a ring also the oldest position still held.
    first = length * 0
    if WINDOWED:
        first = tl.maximum(first, length - window)
    if RING:
        first = tl.maximum(first, length - store_rows)
    start = first + split * split_size
    end = tl.minimum(start + split_size, length)  # start >= end: an empty split (zero-trip loop below)

    g = tl.arange(0, BLOCK_G)  # [BG] query head within the group (rows >= GROUP are padding)
    g_ok = g < GROUP
    heads = kv_head * GROUP + g  # [BG]
    dims = tl.arange(0, HEAD_DIM)
    q = tl.load(q_ptr + seq * stride_qb + heads[:, None] * stride_qh + dims[None, :], mask=g_ok[:, None], other=0.0).to(
        tl.float32
    )  # [BG, D]
    sink = tl.load(sinks_ptr + heads, mask=g_ok, other=0.0).to(tl.float32) * sink_scale  # [BG]
    m = sink  # seeding every split with the sink keeps m finite; the combine counts the sink once
    denom = tl.zeros([BLOCK_G], dtype=tl.float32)
    acc = tl.zeros([BLOCK_G, HEAD_DIM], dtype=tl.float32)

    k_base = k_ptr + slot * stride_kr + kv_head * stride_kh
    v_base = v_ptr + slot * stride_vr + kv_head * stride_vh
    for block_start in range(start, end, BLOCK_N):
        pos = block_start + tl.arange(0, BLOCK_N)  # [BN] absolute positions (int64)
        ok = pos < end  # all of [first, length) is visible; only the tail of the last block is not
        if RING:
            row = pos % store_rows
        else:
            row = pos
        k = tl.load(k_base + row[:, None] * stride_ks + dims[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
        v = tl.load(v_base + row[:, None] * stride_vs + dims[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
        scores = tl.dot(q, tl.trans(k), input_precision=PRECISION) * score_scale  # [BG, BN]
        scores = tl.where(ok[None, :], scores, float("-inf"))
        m_new = tl.maximum(m, tl.max(scores, axis=1))
        rescale = tl.exp2(m - m_new)
        p = tl.exp2(scores - m_new[:, None])
        denom = denom * rescale + tl.sum(p, axis=1)
        acc = acc * rescale[:, None] + tl.dot(p, v, input_precision=PRECISION)
        m = m_new

    part = (seq * num_q_heads + heads) * num_splits + split  # [BG] index into [B, Hq, NS]
    tl.store(part_m_ptr + part, m, mask=g_ok)
    tl.store(part_l_ptr + part, denom, mask=g_ok)
    tl.store(part_acc_ptr + part[:, None] * HEAD_DIM + dims[None, :], acc, mask=g_ok[:, None])


@_triton_jit
def _attention_decode_combine_kernel(
    part_m_ptr: tl.tensor,  # [B, Hq, NS] fp32
    part_l_ptr: tl.tensor,  # [B, Hq, NS] fp32
    part_acc_ptr: tl.tensor,  # [B, Hq, NS, D] fp32
    sinks_ptr: tl.tensor,  # [Hq]
    out_ptr: tl.tensor,  # [B, Hq, D]
    stride_ob: tl.tensor,
    stride_oh: tl.tensor,
    num_splits: tl.tensor,
    num_q_heads: tl.tensor,
    sink_scale: tl.tensor,
    HEAD_DIM: tl.constexpr,
    BLOCK_S: tl.constexpr,
) -> None:
    # Program (sequence, query head): rescale every split's partial to a common max, add the sink once.
    seq = tl.program_id(0).to(tl.int64)
    head = tl.program_id(1).to(tl.int64)
    s = tl.arange(0, BLOCK_S)  # [BS] split index
    s_ok = s < num_splits
    dims = tl.arange(0, HEAD_DIM)
    base = (seq * num_q_heads + head) * num_splits
    m = tl.load(part_m_ptr + base + s, mask=s_ok, other=float("-inf"))  # [BS]
    denom = tl.load(part_l_ptr + base + s, mask=s_ok, other=0.0)  # [BS]
    acc = tl.load(part_acc_ptr + (base + s)[:, None] * HEAD_DIM + dims[None, :], mask=s_ok[:, None], other=0.0)
    sink = tl.load(sinks_ptr + head).to(tl.float32) * sink_scale
    m_all = tl.maximum(tl.max(m, axis=0), sink)  # every split's m is >= sink already; padding is -inf
    weight = tl.exp2(m - m_all)  # [BS]; padding -> 0
    total = tl.sum(denom * weight, axis=0) + tl.exp2(sink - m_all)
    out = tl.sum(acc * weight[:, None], axis=0) / total  # [D]
    tl.store(out_ptr + seq * stride_ob + head * stride_oh + dims, out.to(out_ptr.dtype.element_ty))


# ------------------------------------------------------------------------------------------------ host wrappers
_KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _require_triton() -> None:
    if triton is None:
        raise RuntimeError(
            f"the Triton attention kernels need triton, which is unavailable here ({_TRITON_IMPORT_ERROR}); "
            "use attention_ref instead"
        ) from _TRITON_IMPORT_ERROR


def _check_head_dim(head_dim: int) -> None:
    # tl.arange needs a power of two, and tl.dot on a GPU needs every block dimension >= 16.
    if head_dim < 16 or head_dim > 256 or head_dim & (head_dim - 1):
        raise ValueError(f"head_dim must be a power of two in [16, 256], got {head_dim}")


def _check_unit_last_stride(**tensors: torch.Tensor) -> None:
    # Rows of D elements are loaded as one vector; other strides are free (e.g. q/k/v views into the qkv output).
    for name, t in tensors.items():
        if t.shape[-1] > 1 and t.stride(-1) != 1:
            raise ValueError(f"{name} must be contiguous along its last dim (stride {t.stride(-1)})")


def _dot_precision(dtype: torch.dtype) -> str:
    # bf16/fp16 operands are exact in tf32 (q.k exact on tensor cores; only p is rounded to 10 bits for p@v).
    # fp32 inputs are asked for full-precision dots so they match the fp32 reference closely.
    return "ieee" if dtype == torch.float32 else "tf32"


def _check_same_device(*tensors: torch.Tensor) -> None:
    device = tensors[0].device
    for t in tensors[1:]:
        if t.device != device:
            raise ValueError(f"all tensors must be on one device, got {device} and {t.device}")


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    sinks: torch.Tensor,
    q_pos: torch.Tensor,
    k_pos: torch.Tensor,
    window: int,
    sm_scale: float,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triton version of :func:`attention_ref` (same arguments and result); ``out`` optionally receives it.

    Grid ``(cdiv(T, 64), Hq)``: one program per 64 queries of one query head, streaming all keys in blocks of 64
    with an fp32 online softmax; key blocks whose positions cannot be visible to any query of the program are
    skipped, whatever the key order.
    """
    _require_triton()
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError(f"q, k, v must be [T, H, D], got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    num_queries, num_q_heads, head_dim = q.shape
    num_keys, num_kv_heads, _ = k.shape
    if tuple(k.shape) != tuple(v.shape) or k.shape[2] != head_dim:
        raise ValueError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must be [S, Hkv, {head_dim}]")
    if num_kv_heads == 0 or num_q_heads % num_kv_heads:
        raise ValueError(f"query heads ({num_q_heads}) must be a multiple of KV heads ({num_kv_heads})")
    _check_head_dim(head_dim)
    if q.dtype not in _KERNEL_DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(f"q, k, v must share one of {_KERNEL_DTYPES}, got {q.dtype}, {k.dtype}, {v.dtype}")
    if tuple(sinks.shape) != (num_q_heads,) or not sinks.is_floating_point():
        raise ValueError(f"sinks must be a float [{num_q_heads}] tensor, got {sinks.dtype} {tuple(sinks.shape)}")
    if tuple(q_pos.shape) != (num_queries,) or tuple(k_pos.shape) != (num_keys,):
        raise ValueError(
            f"q_pos/k_pos must be [{num_queries}]/[{num_keys}], got {tuple(q_pos.shape)}/{tuple(k_pos.shape)}"
        )
    if q_pos.dtype != torch.int64 or k_pos.dtype != torch.int64:
        raise TypeError(f"q_pos/k_pos must be int64, got {q_pos.dtype}/{k_pos.dtype}")
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    _check_unit_last_stride(q=q, k=k, v=v)
    _check_same_device(q, k, v, sinks, q_pos, k_pos)
    if out is None:
        out = torch.empty_like(q, memory_format=torch.contiguous_format)
    elif tuple(out.shape) != tuple(q.shape) or out.dtype != q.dtype or out.device != q.device:
        raise ValueError(f"out must be {q.dtype} {tuple(q.shape)} on {q.device}")
    _check_unit_last_stride(out=out)
    if num_queries == 0:
        return out
    # Positions and sinks are indexed as flat vectors: make them dense (no-ops for the usual arange/parameter).
    q_pos = q_pos.contiguous()
    k_pos = k_pos.contiguous()
    sinks = sinks.contiguous()
    grid = (triton.cdiv(num_queries, _PREFILL_BLOCK_M), num_q_heads)
    _attention_prefill_kernel[grid](
        q, k, v, sinks, q_pos, k_pos, out,
        num_queries, num_keys,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1), out.stride(0), out.stride(1),
        window, sm_scale * _LOG2E, _LOG2E,
        GROUP=num_q_heads // num_kv_heads,
        HEAD_DIM=head_dim,
        BLOCK_M=_PREFILL_BLOCK_M,
        BLOCK_N=_PREFILL_BLOCK_N,
        WINDOWED=window > 0,
        PRECISION=_dot_precision(q.dtype),
    )  # fmt: skip
    return out


def decode_split_size(batch: int, num_kv_heads: int, visible_bound: int) -> int:
    """Positions per KV split for a decode launch (a multiple of the 64-position block).

    ``visible_bound`` bounds the positions any sequence can see (store rows, capped by the window), known on the
    host without reading ``lengths`` from the device. Splits are added until about 256 (sequence, KV head, split)
    programs exist, at most 64 splits and at least one 64-position block per split.
    """
    blocks = max(1, _cdiv(visible_bound, _DECODE_BLOCK_N))
    wanted = max(1, _cdiv(_DECODE_TARGET_PROGRAMS, max(1, batch * num_kv_heads)))
    splits = max(1, min(blocks, wanted, _DECODE_MAX_SPLITS))
    return _cdiv(blocks, splits) * _DECODE_BLOCK_N


def _cdiv(a: int, b: int) -> int:
    # triton.cdiv without needing Triton (decode_split_size is usable for planning on any install).
    return -(-a // b)


def _scratch(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    # fp32 split partials; every element is written by pass 1, so empty() unless tests ask for NaN poisoning.
    if _POISON_SCRATCH:
        return torch.full(shape, float("nan"), dtype=torch.float32, device=device)
    return torch.empty(shape, dtype=torch.float32, device=device)


def attention_decode(
    q: torch.Tensor,
    k_store: torch.Tensor,
    v_store: torch.Tensor,
    sinks: torch.Tensor,
    slots: torch.Tensor,
    lengths: torch.Tensor,
    window: int,
    ring: bool,
    sm_scale: float,
    *,
    out: torch.Tensor | None = None,
    split_size: int | None = None,
) -> torch.Tensor:
    """Triton version of :func:`attention_decode_ref` (same arguments and result), flash-decoding style.

    Pass 1, grid ``(B, Hkv, splits)``: each program takes the ``G`` query heads of one KV head of one sequence and
    one run of ``split_size`` positions out of the visible ones (the last ``window`` on sliding layers, the last
    ``S`` on a ring), reading the rows straight from the store, and writes fp32 partials (max, sum, weighted V).
    Pass 2, grid ``(B, Hq)``: merges the splits and adds the sink. ``lengths`` stays on the device (no sync);
    the split count is sized from the store shape. ``split_size`` (a multiple of 64) overrides the heuristic.
    As with the reference, a full store must hold every position below ``lengths[b]`` (``lengths <= S``); this is
    not checked (it would need a device sync) and larger lengths read past the slot's rows.
    """
    _require_triton()
    if q.dim() != 3 or k_store.dim() != 4:
        raise ValueError(
            f"q must be [B, Hq, D] and k_store [R, S, Hkv, D], got {tuple(q.shape)}, {tuple(k_store.shape)}"
        )
    batch, num_q_heads, head_dim = q.shape
    _, store_rows, num_kv_heads, _ = k_store.shape
    if tuple(v_store.shape) != tuple(k_store.shape) or k_store.shape[3] != head_dim:
        raise ValueError(
            f"k_store {tuple(k_store.shape)} and v_store {tuple(v_store.shape)} must be [R, S, Hkv, {head_dim}]"
        )
    if num_kv_heads == 0 or num_q_heads % num_kv_heads:
        raise ValueError(f"query heads ({num_q_heads}) must be a multiple of KV heads ({num_kv_heads})")
    _check_head_dim(head_dim)
    if q.dtype not in _KERNEL_DTYPES or k_store.dtype != q.dtype or v_store.dtype != q.dtype:
        raise TypeError(
            f"q and the stores must share one of {_KERNEL_DTYPES}, got {q.dtype}, {k_store.dtype}, {v_store.dtype}"
        )
    if tuple(sinks.shape) != (num_q_heads,) or not sinks.is_floating_point():
        raise ValueError(f"sinks must be a float [{num_q_heads}] tensor, got {sinks.dtype} {tuple(sinks.shape)}")
    if tuple(slots.shape) != (batch,) or tuple(lengths.shape) != (batch,):
        raise ValueError(f"slots/lengths must be [{batch}], got {tuple(slots.shape)}/{tuple(lengths.shape)}")
    if slots.dtype != torch.int64 or lengths.dtype != torch.int64:
        raise TypeError(f"slots/lengths must be int64, got {slots.dtype}/{lengths.dtype}")
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    if store_rows == 0:
        raise ValueError("the store holds no rows")
    _check_unit_last_stride(q=q, k_store=k_store, v_store=v_store)
    _check_same_device(q, k_store, v_store, sinks, slots, lengths)
    if out is None:
        out = torch.empty_like(q, memory_format=torch.contiguous_format)
    elif tuple(out.shape) != tuple(q.shape) or out.dtype != q.dtype or out.device != q.device:
        raise ValueError(f"out must be {q.dtype} {tuple(q.shape)} on {q.device}")
    _check_unit_last_stride(out=out)
    if batch == 0:
        return out

    group = num_q_heads // num_kv_heads
    # No sequence sees more than the store's rows (full: position p sits at row p < S), nor more than the window.
    visible_bound = min(store_rows, window) if window > 0 else store_rows
    if split_size is None:
        split_size = decode_split_size(batch, num_kv_heads, visible_bound)
    elif split_size <= 0 or split_size % _DECODE_BLOCK_N:
        raise ValueError(f"split_size must be a positive multiple of {_DECODE_BLOCK_N}, got {split_size}")
    num_splits = triton.cdiv(visible_bound, split_size)
    # The combine step holds [next_pow2(splits), D] fp32 per program in registers.
    if num_splits > _DECODE_MAX_FORCED_SPLITS:
        raise ValueError(f"{num_splits} splits are too many for the combine step; use a larger split_size")

    # Partials, fp32: [B, Hq, NS] running max / sum and [B, Hq, NS, D] weighted values (each written once).
    part_m = _scratch((batch, num_q_heads, num_splits), q.device)
    part_l = _scratch((batch, num_q_heads, num_splits), q.device)
    part_acc = _scratch((batch, num_q_heads, num_splits, head_dim), q.device)
    slots = slots.contiguous()
    lengths = lengths.contiguous()
    sinks = sinks.contiguous()
    _attention_decode_split_kernel[(batch, num_kv_heads, num_splits)](
        q, k_store, v_store, sinks, slots, lengths, part_m, part_l, part_acc,
        q.stride(0), q.stride(1),
        k_store.stride(0), k_store.stride(1), k_store.stride(2),
        v_store.stride(0), v_store.stride(1), v_store.stride(2),
        store_rows, window, split_size, num_splits, num_q_heads,
        sm_scale * _LOG2E, _LOG2E,
        GROUP=group,
        BLOCK_G=max(16, triton.next_power_of_2(group)),
        HEAD_DIM=head_dim,
        BLOCK_N=_DECODE_BLOCK_N,
        WINDOWED=window > 0,
        RING=ring,
        PRECISION=_dot_precision(q.dtype),
    )  # fmt: skip
    _attention_decode_combine_kernel[(batch, num_q_heads)](
        part_m, part_l, part_acc, sinks, out,
        out.stride(0), out.stride(1),
        num_splits, num_q_heads, _LOG2E,
        HEAD_DIM=head_dim,
        BLOCK_S=max(16, triton.next_power_of_2(num_splits)),
    )  # fmt: skip
    return out
