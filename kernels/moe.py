"""Mixture-of-experts MLP with MXFP4 (or dense) expert weights (docs/model.md#experts-and-swiglu): torch reference.

Work is grouped by expert, never by token: tokens routed to an expert are gathered, the expert's weights are
decoded once (only for experts some token selected), and one matmul per projection serves all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gpt_oss_desktop.kernels.mxfp4 import dequantize_mxfp4


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


# ---------------------------------------------------------------------------------------------------------------------
# Triton kernels (GPU path): MXFP4 experts decoded inside the kernels from the checkpoint's own bytes.
#
# Nothing below materialises a bf16/fp32 copy of an expert: every program loads the packed bytes (16 per 32-element
# group) and the group's scale byte for the rows and K range it is about to use, decodes them in registers and uses
# them at once. Two forms share the same decode helper and epilogues:
#   decode  (few tokens): GEMV-like, one program per (token-expert pair, block of output rows); it streams its rows
#           once and reduces with plain fp32 multiply-adds (a [T*k, 1] x [1, K] product is too thin for tl.dot).
#   prefill (many tokens): grouped GEMM over the (token, slot) pairs sorted by expert; one program per (BLOCK_M rows
#           of one expert, BLOCK_N outputs), tl.dot with an fp32 accumulator; each expert's weights are read once per
#           M tile instead of once per pair.
# mlp1 (+bias, interleaved SwiGLU) writes the [*, I] activations directly: a program owns BLOCK_N activation columns
# and loads the gate rows (2n) and linear rows (2n+1) of mlp1 as two strided row sets, so the pair never leaves the
# program. mlp2 (+bias, x routing weight) writes one fp32 row per pair into ``pair_out`` [T*k, H] at the pair's
# original (token, slot) position; the host then sums the k slots of each token (``view(T, k, H).sum(1)``). Chosen
# over fp32 atomic adds into [T, H] because the result is then bitwise deterministic (fixed summation order, like
# moe_ref) and needs no zero-initialised output; the extra traffic is T*k*H*4 bytes written and read once, small
# next to the weights (46 KB per layer at decode for 20b, ~1/1000 of the 52.9 MB of expert bytes).
# ---------------------------------------------------------------------------------------------------------------------

from gpt_oss_desktop.kernels._triton import TRITON_IMPORT_ERROR, tl, triton  # noqa: E402 (the kernels start here)

_TRITON_ERROR: str | None = (
    None
    if TRITON_IMPORT_ERROR is None
    else f"the Triton MoE kernels need triton, which is unavailable here ({TRITON_IMPORT_ERROR}); use moe_ref instead"
)

# Decode form when T <= this: with k=4 that is <= 32 pairs, about one pair per expert for 20b, so the grouped GEMM
# would run BLOCK_M=64 tiles that are >95 % padding while the GEMV form reads each selected expert's rows once per
# pair (for repeated experts the second read mostly hits L2).
DECODE_MAX_TOKENS = 8

# Fixed configs (no autotune: it cannot run in the interpreter, and fixed shapes keep launches graph-capturable).
# Decode: BLOCK_K=256 elements = 128 bytes per row per step (one full cache line, 8 MXFP4 groups); BLOCK_N=16 keeps
# the grid wide (20b mlp1: 4 pairs x 2880/16 = 720 programs, mlp2: 720 as well) so enough loads are in flight to
# approach DRAM bandwidth on a 100+ SM GPU.
DECODE_BLOCK_N = 16
DECODE_BLOCK_K = 256
DECODE_NUM_WARPS = 4
# Prefill: 64x32 output tiles; BLOCK_K=64 = two MXFP4 groups, split into even/odd halves of 32 (each tl.dot has an
# inner dimension of 32 >= 16). mlp1 keeps two [64, 32] fp32 accumulators (gate and linear), hence 8 warps.
# BLOCK_N=32, not 64: ahead-of-time compiles (kernels/triton_aot.py) showed 64x64 tiles at 255 registers per thread
# on sm_80/sm_89, with mlp1 spilling 32-72 bytes and mlp2 at the limit; at 32 both stay under ~220 registers with no
# spills on sm_80, sm_89 and sm_90 (table in kernels/README.md). One config for every GPU keeps the dispatcher
# free of a device query and the launches identical to the ones the AOT test compiles.
PREFILL_BLOCK_M = 64
PREFILL_BLOCK_N = 32
PREFILL_BLOCK_K = 64
PREFILL_MLP1_NUM_WARPS = 8
PREFILL_MLP2_NUM_WARPS = 4

if _TRITON_ERROR is None:

    @triton.jit
    def _e2m1_to_fp32(code: tl.tensor) -> tl.tensor:
        """FP4 code (int32, 0..15, bit 3 = sign) -> fp32 value of the E2M1 table, by bit arithmetic.

        Magnitudes 2..7 (exponent field e >= 1) are 2^(e-1) * (1 + m/2): placing the 3 bits at fp32 bits 22..24 and
        adding 126 to the exponent gives exactly that. Codes 0 and 1 (0 and 0.5) are the subnormal pair, done as
        mag * 0.5. No table gather, no denormals (GPUs may flush them), exact.
        """
        mag = code & 7
        normal = ((mag << 22) + (126 << 23)).to(tl.float32, bitcast=True)
        value = tl.where(mag >= 2, normal, mag.to(tl.float32) * 0.5)
        return tl.where((code & 8) != 0, -value, value)

    @triton.jit
    def _mxfp4_tile(
        blocks_ptr: tl.tensor,
        scales_ptr: tl.tensor,
        expert: tl.tensor,
        stride_be: tl.tensor,
        stride_se: tl.tensor,
        rows: tl.tensor,
        row_mask: tl.tensor,
        k0: tl.tensor,
        K: tl.tensor,
        BLOCK_K: tl.constexpr,
    ) -> tuple[tl.tensor, tl.tensor]:
        """Decode weight rows ``rows`` [R] of ``expert``, inputs k0 .. k0+BLOCK_K, as two fp32 [BLOCK_K/2, R] tiles.

        Returns (even, odd): element k0+2j of each row is ``even[j]``, element k0+2j+1 is ``odd[j]`` — exactly the
        low and high nibble of byte j, so no interleave is needed; callers pair them with the even/odd inputs.
        Layout: per expert, blocks are [N, K/2] bytes and scales [N, K/32] (row-major, checked by the wrapper); the
        expert stride is free. Masked-off rows/columns decode to 0 (code 0, scale byte 0 -> 0.0).
        """
        j = tl.arange(0, BLOCK_K // 2)
        k_even = k0 + 2 * j  # [BLOCK_K/2] input index of the low nibble
        mask = (k_even < K)[:, None] & row_mask[None, :]
        row64 = rows.to(tl.int64)[None, :]
        byte_ptr = blocks_ptr + expert * stride_be + row64 * (K // 2) + (k_even // 2)[:, None]
        codes = tl.load(byte_ptr, mask=mask, other=0).to(tl.int32)  # [BLOCK_K/2, R]
        scale_ptr = scales_ptr + expert * stride_se + row64 * (K // 32) + (k_even // 32)[:, None]
        biased = tl.load(scale_ptr, mask=mask, other=0).to(tl.int32)  # [BLOCK_K/2, R], 16 bytes share one scale
        # 2^(s-127) built directly as fp32 bits (exponent field = s): exact for s in 1..254; s=255 gives inf (as the
        # reference's pow does in fp32); s=0 gives 0 instead of the subnormal 2^-127 (never used by real checkpoints).
        scale = (biased << 23).to(tl.float32, bitcast=True)
        even = _e2m1_to_fp32(codes & 15) * scale
        odd = _e2m1_to_fp32(codes >> 4) * scale
        return even, odd

    @triton.jit
    def _dot(a: tl.tensor, b: tl.tensor, acc: tl.tensor, DOT_BF16: tl.constexpr) -> tl.tensor:
        """acc + a @ b in fp32. DOT_BF16: feed the tensor cores bf16 (exact for bf16 inputs and for FP4 x 2^k weights);
        otherwise full fp32 ("ieee": fp32 models are the accuracy path, and the interpreter mis-computes bf16 dots)."""
        if DOT_BF16:
            return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16), acc)
        return tl.dot(a, b, acc, input_precision="ieee")

    @triton.jit
    def _swiglu(gate: tl.tensor, linear: tl.tensor, limit: tl.tensor, alpha: tl.tensor) -> tl.tensor:
        """gpt-oss SwiGLU on fp32 (gate, linear) pairs: clamp gate from above, linear both ways, +1 on linear."""
        gate = tl.minimum(gate, limit)
        linear = tl.minimum(tl.maximum(linear, -limit), limit)
        return gate * tl.sigmoid(alpha * gate) * (linear + 1.0)

    @triton.jit
    def _mlp1_decode_kernel(
        x_ptr: tl.tensor,  # [T, H] (row stride stride_xt, unit column stride)
        expert_ptr: tl.tensor,  # [T*k] expert of each (token, slot) pair
        blocks_ptr: tl.tensor,  # uint8 [E, 2I, H/32, 16]
        scales_ptr: tl.tensor,  # uint8 [E, 2I, H/32]
        bias_ptr: tl.tensor,  # [E, 2I] contiguous
        act_ptr: tl.tensor,  # out: [T*k, I] contiguous, dtype of x
        stride_xt: tl.tensor,
        stride_be: tl.tensor,
        stride_se: tl.tensor,
        top_k: tl.tensor,
        H: tl.tensor,
        INTER: tl.tensor,
        limit: tl.tensor,
        alpha: tl.tensor,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
    ) -> None:
        """Grid (T*k, cdiv(INTER, BLOCK_N)): act[pair, n] = swiglu(W1[e] x[t] + b1[e]), BLOCK_N activation columns."""
        pair = tl.program_id(0)
        token = pair // top_k
        expert = tl.load(expert_ptr + pair).to(tl.int64)
        n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # [BLOCK_N] activation columns
        n_mask = n < INTER
        j = tl.arange(0, BLOCK_K // 2)
        x_row = x_ptr + token.to(tl.int64) * stride_xt
        # Elementwise [BLOCK_K/2, BLOCK_N] partial sums, reduced once after the loop (no cross-lane work per step).
        acc_gate = tl.zeros((BLOCK_K // 2, BLOCK_N), dtype=tl.float32)
        acc_lin = tl.zeros((BLOCK_K // 2, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, H, BLOCK_K):
            k_even = k0 + 2 * j
            k_mask = k_even < H
            x_even = tl.load(x_row + k_even, mask=k_mask, other=0.0).to(tl.float32)[:, None]  # [BLOCK_K/2, 1]
            x_odd = tl.load(x_row + k_even + 1, mask=k_mask, other=0.0).to(tl.float32)[:, None]
            g_even, g_odd = _mxfp4_tile(
                blocks_ptr, scales_ptr, expert, stride_be, stride_se, 2 * n, n_mask, k0, H, BLOCK_K
            )
            acc_gate += g_even * x_even + g_odd * x_odd
            l_even, l_odd = _mxfp4_tile(
                blocks_ptr, scales_ptr, expert, stride_be, stride_se, 2 * n + 1, n_mask, k0, H, BLOCK_K
            )
            acc_lin += l_even * x_even + l_odd * x_odd
        bias_row = bias_ptr + expert * (2 * INTER)
        gate = tl.sum(acc_gate, axis=0) + tl.load(bias_row + 2 * n, mask=n_mask, other=0.0).to(tl.float32)
        lin = tl.sum(acc_lin, axis=0) + tl.load(bias_row + 2 * n + 1, mask=n_mask, other=0.0).to(tl.float32)
        act = _swiglu(gate, lin, limit, alpha)
        tl.store(act_ptr + pair.to(tl.int64) * INTER + n, act, mask=n_mask)

    @triton.jit
    def _mlp2_decode_kernel(
        act_ptr: tl.tensor,  # [T*k, I] contiguous
        expert_ptr: tl.tensor,  # [T*k]
        weight_ptr: tl.tensor,  # fp32 [T*k] routing weights
        blocks_ptr: tl.tensor,  # uint8 [E, H, I/32, 16]
        scales_ptr: tl.tensor,  # uint8 [E, H, I/32]
        bias_ptr: tl.tensor,  # [E, H] contiguous
        out_ptr: tl.tensor,  # out: fp32 [T*k, H] contiguous
        stride_be: tl.tensor,
        stride_se: tl.tensor,
        H: tl.tensor,
        INTER: tl.tensor,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
    ) -> None:
        """Grid (T*k, cdiv(H, BLOCK_N)): pair_out[pair, n] = w[pair] * (W2[e] act[pair] + b2[e]) for BLOCK_N rows."""
        pair = tl.program_id(0)
        expert = tl.load(expert_ptr + pair).to(tl.int64)
        n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        n_mask = n < H
        j = tl.arange(0, BLOCK_K // 2)
        act_row = act_ptr + pair.to(tl.int64) * INTER
        acc = tl.zeros((BLOCK_K // 2, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, INTER, BLOCK_K):
            k_even = k0 + 2 * j
            k_mask = k_even < INTER
            a_even = tl.load(act_row + k_even, mask=k_mask, other=0.0).to(tl.float32)[:, None]
            a_odd = tl.load(act_row + k_even + 1, mask=k_mask, other=0.0).to(tl.float32)[:, None]
            w_even, w_odd = _mxfp4_tile(
                blocks_ptr, scales_ptr, expert, stride_be, stride_se, n, n_mask, k0, INTER, BLOCK_K
            )
            acc += w_even * a_even + w_odd * a_odd
        y = tl.sum(acc, axis=0) + tl.load(bias_ptr + expert * H + n, mask=n_mask, other=0.0).to(tl.float32)
        y = y * tl.load(weight_ptr + pair)
        tl.store(out_ptr + pair.to(tl.int64) * H + n, y, mask=n_mask)

    @triton.jit
    def _mlp1_prefill_kernel(
        x_ptr: tl.tensor,  # [T, H] (row stride stride_xt)
        sorted_token_ptr: tl.tensor,  # int32 [T*k] token of each expert-sorted pair
        tile_expert_ptr: tl.tensor,  # int32 [tiles] expert of each M tile, -1 for unused grid slots
        tile_start_ptr: tl.tensor,  # int32 [tiles] first sorted row of the tile
        tile_end_ptr: tl.tensor,  # int32 [tiles] end of the expert's sorted rows (tile rows >= this are masked)
        blocks_ptr: tl.tensor,
        scales_ptr: tl.tensor,
        bias_ptr: tl.tensor,  # [E, 2I] contiguous
        act_ptr: tl.tensor,  # out: [T*k, I] contiguous, rows in expert-sorted order
        stride_xt: tl.tensor,
        stride_be: tl.tensor,
        stride_se: tl.tensor,
        H: tl.tensor,
        INTER: tl.tensor,
        limit: tl.tensor,
        alpha: tl.tensor,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
        DOT_BF16: tl.constexpr,
    ) -> None:
        """Grid (tiles, cdiv(INTER, BLOCK_N)): act[m, n] = swiglu(x[token(m)] W1[e]^T + b1[e]) over one M tile."""
        tile = tl.program_id(0)
        expert = tl.load(tile_expert_ptr + tile)
        if expert < 0:  # the grid is an upper bound on the tile count (no host sync to size it)
            return
        expert = expert.to(tl.int64)
        m = tl.load(tile_start_ptr + tile) + tl.arange(0, BLOCK_M)  # [BLOCK_M] sorted rows
        m_mask = m < tl.load(tile_end_ptr + tile)
        token = tl.load(sorted_token_ptr + m, mask=m_mask, other=0).to(tl.int64)
        x_rows = x_ptr + token[:, None] * stride_xt  # [BLOCK_M, 1] gathered rows of x
        n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        n_mask = n < INTER
        j = tl.arange(0, BLOCK_K // 2)
        acc_gate = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        acc_lin = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, H, BLOCK_K):
            k_even = (k0 + 2 * j)[None, :]  # [1, BLOCK_K/2]
            x_mask = m_mask[:, None] & (k_even < H)
            # Even / odd input columns, matching the low / high nibbles: two dots of inner size BLOCK_K/2 each.
            x_even = tl.load(x_rows + k_even, mask=x_mask, other=0.0).to(tl.float32)  # [BLOCK_M, BLOCK_K/2]
            x_odd = tl.load(x_rows + k_even + 1, mask=x_mask, other=0.0).to(tl.float32)
            g_even, g_odd = _mxfp4_tile(
                blocks_ptr, scales_ptr, expert, stride_be, stride_se, 2 * n, n_mask, k0, H, BLOCK_K
            )  # [BLOCK_K/2, BLOCK_N] each
            acc_gate = _dot(x_even, g_even, acc_gate, DOT_BF16)
            acc_gate = _dot(x_odd, g_odd, acc_gate, DOT_BF16)
            l_even, l_odd = _mxfp4_tile(
                blocks_ptr, scales_ptr, expert, stride_be, stride_se, 2 * n + 1, n_mask, k0, H, BLOCK_K
            )
            acc_lin = _dot(x_even, l_even, acc_lin, DOT_BF16)
            acc_lin = _dot(x_odd, l_odd, acc_lin, DOT_BF16)
        bias_row = bias_ptr + expert * (2 * INTER)
        gate = acc_gate + tl.load(bias_row + 2 * n, mask=n_mask, other=0.0).to(tl.float32)[None, :]
        lin = acc_lin + tl.load(bias_row + 2 * n + 1, mask=n_mask, other=0.0).to(tl.float32)[None, :]
        act = _swiglu(gate, lin, limit, alpha)
        out = act_ptr + m.to(tl.int64)[:, None] * INTER + n[None, :]
        tl.store(out, act, mask=m_mask[:, None] & n_mask[None, :])

    @triton.jit
    def _mlp2_prefill_kernel(
        act_ptr: tl.tensor,  # [T*k, I] contiguous, expert-sorted rows
        sorted_pair_ptr: tl.tensor,  # int32 [T*k] original (token*k + slot) index of each sorted row
        weight_ptr: tl.tensor,  # fp32 [T*k] routing weights in original pair order
        tile_expert_ptr: tl.tensor,
        tile_start_ptr: tl.tensor,
        tile_end_ptr: tl.tensor,
        blocks_ptr: tl.tensor,
        scales_ptr: tl.tensor,
        bias_ptr: tl.tensor,  # [E, H] contiguous
        out_ptr: tl.tensor,  # out: fp32 [T*k, H], rows in original pair order
        stride_be: tl.tensor,
        stride_se: tl.tensor,
        H: tl.tensor,
        INTER: tl.tensor,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
        DOT_BF16: tl.constexpr,
    ) -> None:
        """Grid (tiles, cdiv(H, BLOCK_N)): pair_out[pair(m), n] = w * (act[m] W2[e]^T + b2[e]) over one M tile."""
        tile = tl.program_id(0)
        expert = tl.load(tile_expert_ptr + tile)
        if expert < 0:
            return
        expert = expert.to(tl.int64)
        m = tl.load(tile_start_ptr + tile) + tl.arange(0, BLOCK_M)
        m_mask = m < tl.load(tile_end_ptr + tile)
        act_rows = act_ptr + m.to(tl.int64)[:, None] * INTER
        n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        n_mask = n < H
        j = tl.arange(0, BLOCK_K // 2)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, INTER, BLOCK_K):
            k_even = (k0 + 2 * j)[None, :]
            a_mask = m_mask[:, None] & (k_even < INTER)
            a_even = tl.load(act_rows + k_even, mask=a_mask, other=0.0).to(tl.float32)
            a_odd = tl.load(act_rows + k_even + 1, mask=a_mask, other=0.0).to(tl.float32)
            w_even, w_odd = _mxfp4_tile(
                blocks_ptr, scales_ptr, expert, stride_be, stride_se, n, n_mask, k0, INTER, BLOCK_K
            )
            acc = _dot(a_even, w_even, acc, DOT_BF16)
            acc = _dot(a_odd, w_odd, acc, DOT_BF16)
        y = acc + tl.load(bias_ptr + expert * H + n, mask=n_mask, other=0.0).to(tl.float32)[None, :]
        pair = tl.load(sorted_pair_ptr + m, mask=m_mask, other=0).to(tl.int64)
        y = y * tl.load(weight_ptr + pair, mask=m_mask, other=0.0)[:, None]
        tl.store(out_ptr + pair[:, None] * H + n[None, :], y, mask=m_mask[:, None] & n_mask[None, :])


_SUPPORTED_X_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class _MoeArgs:
    """Validated launch arguments shared by both forms (see :func:`_prepare`)."""

    x: torch.Tensor  # [T, H], unit column stride
    weights: torch.Tensor  # fp32 [T*k] contiguous
    experts: torch.Tensor  # int [T*k] contiguous
    mlp1: Mxfp4Experts
    mlp1_bias: torch.Tensor  # [E, 2I] contiguous
    mlp2: Mxfp4Experts
    mlp2_bias: torch.Tensor  # [E, H] contiguous
    top_k: int
    hidden: int
    intermediate: int


def _check_experts(name: str, experts: Mxfp4Experts, out_features: int, in_features: int) -> None:
    blocks, scales = experts.blocks, experts.scales
    if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8:
        raise TypeError(f"{name}: MXFP4 blocks/scales must be uint8, got {blocks.dtype}/{scales.dtype}")
    groups = in_features // 32
    if blocks.dim() != 4 or tuple(blocks.shape[1:]) != (out_features, groups, 16):
        raise ValueError(f"{name}.blocks: expected [E, {out_features}, {groups}, 16], got {tuple(blocks.shape)}")
    if tuple(scales.shape) != (blocks.shape[0], out_features, groups):
        raise ValueError(f"{name}.scales: expected [E, {out_features}, {groups}], got {tuple(scales.shape)}")
    # The kernels address a row as expert*stride(0) + row*(K/2) + byte: each expert's slice must be row-major
    # contiguous. Copying here would duplicate a whole layer's experts (265 MB for 20b), so it is refused instead.
    if blocks.stride()[1:] != (groups * 16, 16, 1) or scales.stride()[1:] != (groups, 1):
        raise ValueError(
            f"{name}: each expert's blocks/scales must be contiguous, got strides {blocks.stride()} / {scales.stride()}"
        )


def _prepare(
    x: torch.Tensor,
    routing_weights: torch.Tensor,
    expert_indices: torch.Tensor,
    mlp1: Mxfp4Experts,
    mlp1_bias: torch.Tensor,
    mlp2: Mxfp4Experts,
    mlp2_bias: torch.Tensor,
) -> _MoeArgs:
    """Check shapes, dtypes, devices and strides before any launch; make the small operands contiguous."""
    if _TRITON_ERROR is not None:
        raise RuntimeError(_TRITON_ERROR)
    if x.dim() != 2:
        raise ValueError(f"x must be [T, H], got {tuple(x.shape)}")
    if x.dtype not in _SUPPORTED_X_DTYPES:
        raise TypeError(f"x must be fp32/bf16/fp16, got {x.dtype}")
    num_tokens, hidden = x.shape
    if expert_indices.dim() != 2 or expert_indices.shape[0] != num_tokens:
        raise ValueError(f"expert_indices must be [T={num_tokens}, k], got {tuple(expert_indices.shape)}")
    if expert_indices.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"expert_indices must be int64/int32, got {expert_indices.dtype}")
    if routing_weights.shape != expert_indices.shape or not routing_weights.is_floating_point():
        raise ValueError(
            f"routing_weights must be float {tuple(expert_indices.shape)}, got {routing_weights.dtype} "
            f"{tuple(routing_weights.shape)}"
        )
    top_k = int(expert_indices.shape[1])
    if mlp1.out_features % 2:
        raise ValueError(f"mlp1 must have an even number of outputs (interleaved gate/linear), got {mlp1.out_features}")
    intermediate = mlp1.out_features // 2
    if hidden % 32 or intermediate % 32:
        raise ValueError(f"hidden ({hidden}) and intermediate ({intermediate}) must be multiples of 32 for MXFP4")
    _check_experts("mlp1", mlp1, 2 * intermediate, hidden)
    _check_experts("mlp2", mlp2, hidden, intermediate)
    num_experts = mlp1.num_experts
    if mlp2.num_experts != num_experts:
        raise ValueError(f"mlp1 has {num_experts} experts but mlp2 has {mlp2.num_experts}")
    if tuple(mlp1_bias.shape) != (num_experts, 2 * intermediate) or not mlp1_bias.is_floating_point():
        raise ValueError(f"mlp1_bias must be float [{num_experts}, {2 * intermediate}], got {tuple(mlp1_bias.shape)}")
    if tuple(mlp2_bias.shape) != (num_experts, hidden) or not mlp2_bias.is_floating_point():
        raise ValueError(f"mlp2_bias must be float [{num_experts}, {hidden}], got {tuple(mlp2_bias.shape)}")
    tensors = (
        routing_weights,
        expert_indices,
        mlp1.blocks,
        mlp1.scales,
        mlp1_bias,
        mlp2.blocks,
        mlp2.scales,
        mlp2_bias,
    )
    if any(t.device != x.device for t in tensors):
        raise ValueError(f"all MoE operands must be on {x.device}")
    check_kernel_device(x)
    # Expert indices are not range-checked here: that needs a device->host sync per layer. Values outside [0, E)
    # read out of bounds in the decode form (the prefill form's scatter_add_ rejects them).
    return _MoeArgs(
        x=x if x.stride(1) == 1 else x.contiguous(),
        weights=routing_weights.reshape(-1).to(torch.float32).contiguous(),
        experts=expert_indices.reshape(-1).contiguous(),
        mlp1=mlp1,
        mlp1_bias=mlp1_bias.contiguous(),
        mlp2=mlp2,
        mlp2_bias=mlp2_bias.contiguous(),
        top_k=top_k,
        hidden=hidden,
        intermediate=intermediate,
    )


def check_kernel_device(x: torch.Tensor) -> None:
    """The operands are on a device the Triton kernels can run on (kernels.triton_aot replaces this to record)."""
    if x.device.type != "cuda" and not _interpreting():
        raise RuntimeError(f"the Triton MoE kernels need a CUDA device (or TRITON_INTERPRET=1), got {x.device}")


def _interpreting() -> bool:
    """Whether the kernels were decorated in interpreter mode (TRITON_INTERPRET=1 at import time)."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(_mlp1_decode_kernel, InterpretedFunction)


def _buffer(given: torch.Tensor | None, shape: tuple[int, ...], like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A kernel output buffer: ``given`` (tests pass NaN-poisoned ones) after checking it, else a fresh empty one."""
    if given is None:
        return torch.empty(shape, dtype=dtype, device=like.device)
    if tuple(given.shape) != shape or given.dtype != dtype or given.device != like.device or not given.is_contiguous():
        raise ValueError(
            f"workspace must be contiguous {dtype} {shape} on {like.device}, got {given.dtype} "
            f"{tuple(given.shape)} (contiguous={given.is_contiguous()})"
        )
    return given


def _finish(pair_out: torch.Tensor, args: _MoeArgs) -> torch.Tensor:
    """Sum the k weighted expert rows of each token: [T*k, H] fp32 -> [T, H] in x's dtype (fixed order)."""
    num_tokens = args.x.shape[0]
    return pair_out.view(num_tokens, args.top_k, args.hidden).sum(dim=1).to(args.x.dtype)


def moe_decode(
    x: torch.Tensor,
    routing_weights: torch.Tensor,
    expert_indices: torch.Tensor,
    mlp1: Mxfp4Experts,
    mlp1_bias: torch.Tensor,
    mlp2: Mxfp4Experts,
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
    swiglu_alpha: float,
    *,
    act: torch.Tensor | None = None,
    pair_out: torch.Tensor | None = None,
) -> torch.Tensor:
    """GEMV form of :func:`moe` (any T, meant for T <= DECODE_MAX_TOKENS).

    ``act`` ([T*k, I], x.dtype) and ``pair_out`` ([T*k, H], fp32) are optional preallocated workspaces (for tests
    that poison them, or callers that reuse them); both are fully overwritten.
    """
    args = _prepare(x, routing_weights, expert_indices, mlp1, mlp1_bias, mlp2, mlp2_bias)
    pairs = args.experts.numel()
    hidden, inter = args.hidden, args.intermediate
    act = _buffer(act, (pairs, inter), x, x.dtype)
    pair_out = _buffer(pair_out, (pairs, hidden), x, torch.float32)
    if pairs == 0:
        return torch.zeros_like(x)
    _mlp1_decode_kernel[(pairs, triton.cdiv(inter, DECODE_BLOCK_N))](
        args.x, args.experts, mlp1.blocks, mlp1.scales, args.mlp1_bias, act,
        args.x.stride(0), mlp1.blocks.stride(0), mlp1.scales.stride(0), args.top_k, hidden, inter,
        float(swiglu_limit), float(swiglu_alpha),
        BLOCK_N=DECODE_BLOCK_N, BLOCK_K=DECODE_BLOCK_K, num_warps=DECODE_NUM_WARPS,
    )  # fmt: skip
    _mlp2_decode_kernel[(pairs, triton.cdiv(hidden, DECODE_BLOCK_N))](
        act, args.experts, args.weights, mlp2.blocks, mlp2.scales, args.mlp2_bias, pair_out,
        mlp2.blocks.stride(0), mlp2.scales.stride(0), hidden, inter,
        BLOCK_N=DECODE_BLOCK_N, BLOCK_K=DECODE_BLOCK_K, num_warps=DECODE_NUM_WARPS,
    )  # fmt: skip
    return _finish(pair_out, args)


@dataclass(frozen=True)
class _TileMap:
    """Expert-sorted pairs and the M tiles over them, all on the device (built without a host sync)."""

    sorted_token: torch.Tensor  # int32 [P] token of each sorted row
    sorted_pair: torch.Tensor  # int32 [P] original pair index (token*k + slot) of each sorted row
    tile_expert: torch.Tensor  # int32 [tiles] expert of each tile, -1 past the last real tile
    tile_start: torch.Tensor  # int32 [tiles] first sorted row of each tile
    tile_end: torch.Tensor  # int32 [tiles] end (exclusive) of that expert's rows


def _tile_map(experts: torch.Tensor, top_k: int, num_experts: int, block_m: int) -> _TileMap:
    """Sort pairs by expert and cut each expert's run into BLOCK_M tiles.

    The grid must not depend on the routing (a .item() per layer would sync the host and break CUDA-graph capture),
    so it is sized by an upper bound: sum_e ceil(c_e / BM) <= min(P, ceil(P / BM) + E); unused slots get expert -1.
    """
    pairs = experts.numel()
    device = experts.device
    flat = experts.to(torch.int64)
    order = torch.argsort(flat, stable=True)  # [P] sorted row -> pair; stable keeps token order within an expert
    counts = torch.zeros(num_experts, dtype=torch.int64, device=device)
    counts.scatter_add_(0, flat, torch.ones_like(flat))  # bincount without its data-dependent output size
    ends = torch.cumsum(counts, 0)  # [E] end of each expert's sorted rows
    tiles_per_expert = (counts + block_m - 1) // block_m
    tile_ends = torch.cumsum(tiles_per_expert, 0)  # [E] end of each expert's tile range
    max_tiles = min(pairs, triton.cdiv(pairs, block_m) + num_experts)
    tile = torch.arange(max_tiles, device=device)
    # Tile t belongs to the first expert whose tile range ends after t (experts with no tiles are skipped).
    owner = torch.searchsorted(tile_ends, tile, right=True)  # [tiles], E past the last real tile
    valid = owner < num_experts
    owner = owner.clamp(max=num_experts - 1)
    first_tile = tile_ends[owner] - tiles_per_expert[owner]
    start = ends[owner] - counts[owner] + (tile - first_tile) * block_m
    return _TileMap(
        sorted_token=(order // top_k).to(torch.int32),
        sorted_pair=order.to(torch.int32),
        tile_expert=torch.where(valid, owner, -1).to(torch.int32),
        tile_start=start.to(torch.int32),
        tile_end=ends[owner].to(torch.int32),
    )


def moe_prefill(
    x: torch.Tensor,
    routing_weights: torch.Tensor,
    expert_indices: torch.Tensor,
    mlp1: Mxfp4Experts,
    mlp1_bias: torch.Tensor,
    mlp2: Mxfp4Experts,
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
    swiglu_alpha: float,
    *,
    act: torch.Tensor | None = None,
    pair_out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Grouped-GEMM form of :func:`moe` (any T, meant for T > DECODE_MAX_TOKENS); workspaces as in moe_decode,
    with ``act`` rows in expert-sorted order."""
    args = _prepare(x, routing_weights, expert_indices, mlp1, mlp1_bias, mlp2, mlp2_bias)
    pairs = args.experts.numel()
    hidden, inter = args.hidden, args.intermediate
    act = _buffer(act, (pairs, inter), x, x.dtype)
    pair_out = _buffer(pair_out, (pairs, hidden), x, torch.float32)
    if pairs == 0:
        return torch.zeros_like(x)
    if pairs >= 2**31:
        raise ValueError(f"too many (token, expert) pairs for int32 row indices: {pairs}")
    tiles = _tile_map(args.experts, args.top_k, mlp1.num_experts, PREFILL_BLOCK_M)
    num_tiles = tiles.tile_expert.numel()
    dot_bf16 = x.dtype == torch.bfloat16 and not _interpreting()
    _mlp1_prefill_kernel[(num_tiles, triton.cdiv(inter, PREFILL_BLOCK_N))](
        args.x, tiles.sorted_token, tiles.tile_expert, tiles.tile_start, tiles.tile_end,
        mlp1.blocks, mlp1.scales, args.mlp1_bias, act,
        args.x.stride(0), mlp1.blocks.stride(0), mlp1.scales.stride(0), hidden, inter,
        float(swiglu_limit), float(swiglu_alpha),
        BLOCK_M=PREFILL_BLOCK_M, BLOCK_N=PREFILL_BLOCK_N, BLOCK_K=PREFILL_BLOCK_K, DOT_BF16=dot_bf16,
        num_warps=PREFILL_MLP1_NUM_WARPS,
    )  # fmt: skip
    _mlp2_prefill_kernel[(num_tiles, triton.cdiv(hidden, PREFILL_BLOCK_N))](
        act, tiles.sorted_pair, args.weights, tiles.tile_expert, tiles.tile_start, tiles.tile_end,
        mlp2.blocks, mlp2.scales, args.mlp2_bias, pair_out,
        mlp2.blocks.stride(0), mlp2.scales.stride(0), hidden, inter,
        BLOCK_M=PREFILL_BLOCK_M, BLOCK_N=PREFILL_BLOCK_N, BLOCK_K=PREFILL_BLOCK_K, DOT_BF16=dot_bf16,
        num_warps=PREFILL_MLP2_NUM_WARPS,
    )  # fmt: skip
    return _finish(pair_out, args)


def moe(
    x: torch.Tensor,
    routing_weights: torch.Tensor,
    expert_indices: torch.Tensor,
    mlp1: ExpertWeights,
    mlp1_bias: torch.Tensor,
    mlp2: ExpertWeights,
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
    swiglu_alpha: float,
) -> torch.Tensor:
    """Triton MoE: same signature and semantics as :func:`moe_ref` (``[T, H]`` in ``x.dtype``).

    MXFP4 experts run the fused kernels (decode form for T <= DECODE_MAX_TOKENS, grouped GEMM above); dense
    experts fall back to moe_ref. Differences from moe_ref: mlp1's output h is never rounded to x's dtype (it stays in
    fp32 registers through the SwiGLU), only the activation a is, so bf16 results are slightly more accurate.
    """
    if isinstance(mlp1, DenseExperts) or isinstance(mlp2, DenseExperts):
        return moe_ref(x, routing_weights, expert_indices, mlp1, mlp1_bias, mlp2, mlp2_bias, swiglu_limit, swiglu_alpha)
    form = moe_decode if x.shape[0] <= DECODE_MAX_TOKENS else moe_prefill
    return form(x, routing_weights, expert_indices, mlp1, mlp1_bias, mlp2, mlp2_bias, swiglu_limit, swiglu_alpha)
