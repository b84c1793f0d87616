"""MoE router (docs/model.md#moe-router): linear with bias, top-k on the logits, softmax over the k.

Torch reference and the fused Triton kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gpt_oss_desktop.kernels.op_signatures import Linear

# Triton import guard and shared helpers live in kernels.rmsnorm (triton / tl are None without the package).
from gpt_oss_desktop.kernels.rmsnorm import (
    _TRITON_IMPORT_ERROR,
    _triton_jit,
    check_kernel_device,
    round_to_dtype,
    tl,
    triton,
)


def router_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    k: int,
    linear: Linear = F.linear,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Route each token to ``k`` experts.

    Args:
        x: ``[T, H]`` normed activations.
        weight: ``[E, H]``; bias: ``[E]``.
        k: experts per token.
        linear: computes the logits like ``F.linear`` (the CPU path swaps in its fused GEMV).

    Returns:
        ``(weights, indices)``: fp32 ``[T, k]`` routing weights summing to 1 per token, int64 ``[T, k]`` expert ids
        in descending logit order.
    """
    logits = linear(x, weight, bias)  # [T, E]
    top_values, top_indices = torch.topk(logits, k, dim=-1, sorted=True)
    return torch.softmax(top_values.float(), dim=-1), top_indices


# ------------------------------------------------------------------------------------------------------ Triton kernel
# Grid (cdiv(T, 16),): one program routes 16 tokens. It computes their [16, E] logits with tl.dot while streaming W
# [E, H] in [BLOCK_K, E] slices (all E logits stay in registers: E <= 128), then picks the top k by k rounds of
# "row max, lowest index holding it, mask it out" and writes the softmax of the k picked logits. The logits never
# reach memory. 16 tokens per program (the smallest tl.dot M on a GPU) amortise the weight stream: at prefill
# T = 512 the 20b router's 184 KB of bf16 weights are read by 32 programs (~6 MB from L2) instead of 512 times.

_KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_BLOCK_T = 16
_MAX_EXPERTS = 128


@_triton_jit
def _router_kernel(
    x_ptr: tl.tensor,  # [T, H]
    w_ptr: tl.tensor,  # [E, H]
    b_ptr: tl.tensor,  # [E]
    weights_ptr: tl.tensor,  # [T, k] fp32, contiguous
    indices_ptr: tl.tensor,  # [T, k] int64, contiguous
    num_tokens: tl.tensor,
    hidden: tl.tensor,
    num_experts: tl.tensor,
    stride_x: tl.tensor,
    stride_w: tl.tensor,
    TOP_K: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_E: tl.constexpr,  # >= E
    BLOCK_K: tl.constexpr,  # slice of H per step
    BLOCK_SLOTS: tl.constexpr,  # >= k
    PRECISION: tl.constexpr,
) -> None:
    rows = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)  # [BT] token indices
    row_ok = rows < num_tokens
    experts = tl.arange(0, BLOCK_E)  # [BE]
    expert_ok = experts < num_experts
    logits = tl.zeros([BLOCK_T, BLOCK_E], dtype=tl.float32)
    for start in range(0, hidden, BLOCK_K):
        cols = start + tl.arange(0, BLOCK_K)  # [BK]
        col_ok = cols < hidden
        # Upcast right after the load (bf16 arithmetic is wrong in the interpreter). Masked rows/cols are 0 and
        # add nothing to the dot.
        x = tl.load(
            x_ptr + rows[:, None] * stride_x + cols[None, :], mask=row_ok[:, None] & col_ok[None, :], other=0.0
        ).to(tl.float32)  # [BT, BK]
        w = tl.load(
            w_ptr + experts[None, :].to(tl.int64) * stride_w + cols[:, None],
            mask=expert_ok[None, :] & col_ok[:, None],
            other=0.0,
        ).to(tl.float32)  # [BK, BE] = W^T slice
        logits = tl.dot(x, w, logits, input_precision=PRECISION)
    bias = tl.load(b_ptr + experts, mask=expert_ok, other=0.0).to(tl.float32)  # [BE]
    # Like the reference (F.linear in x's dtype), the logits are rounded once to x's dtype before top-k: the same
    # ties and the same softmax inputs as the CPU path (a no-op for fp32).
    logits = round_to_dtype(logits + bias[None, :], x_ptr.dtype.element_ty)  # [BT, BE]

    slots = tl.arange(0, BLOCK_SLOTS)  # [BS]
    unpicked = tl.broadcast_to(expert_ok[None, :], [BLOCK_T, BLOCK_E])
    top_values = tl.zeros([BLOCK_T, BLOCK_SLOTS], dtype=tl.float32)
    top_indices = tl.zeros([BLOCK_T, BLOCK_SLOTS], dtype=tl.int32)
    for slot in tl.static_range(TOP_K):
        candidates = unpicked & (logits == logits)  # a NaN logit never wins by value
        best = tl.max(tl.where(candidates, logits, float("-inf")), axis=1)  # [BT]
        # Ties: the lowest expert index wins, so the order is deterministic and the same on every device.
        choice = tl.min(tl.where(candidates & (logits == best[:, None]), experts[None, :], BLOCK_E), axis=1)  # [BT]
        # A row with NaN logits can run out of candidates: take its lowest unpicked expert instead (whose NaN logit
        # makes the row's weights NaN), so no index >= E is ever written (the MoE would read out of bounds).
        fallback = tl.min(tl.where(unpicked, experts[None, :], BLOCK_E), axis=1)
        choice = tl.where(choice < BLOCK_E, choice, fallback)
        picked = experts[None, :] == choice[:, None]  # [BT, BE], one True per row
        value = tl.sum(tl.where(picked, logits, 0.0), axis=1)  # exactly logits[row, choice]
        unpicked = unpicked & ~picked
        top_values = tl.where(slots[None, :] == slot, value[:, None], top_values)
        top_indices = tl.where(slots[None, :] == slot, choice[:, None], top_indices)
    # Softmax over the k picked logits in fp32; slot 0 holds the largest, so exp(v - v0) <= 1.
    slot_ok = slots < TOP_K
    largest = tl.max(tl.where(slot_ok[None, :], top_values, float("-inf")), axis=1)
    p = tl.where(slot_ok[None, :], tl.exp(top_values - largest[:, None]), 0.0)
    weights = p / tl.sum(p, axis=1)[:, None]
    out_ok = row_ok[:, None] & slot_ok[None, :]
    offsets = rows[:, None] * TOP_K + slots[None, :]
    tl.store(weights_ptr + offsets, weights, mask=out_ok)
    tl.store(indices_ptr + offsets, top_indices.to(tl.int64), mask=out_ok)


# ------------------------------------------------------------------------------------------------------ host wrapper


def _require_triton() -> None:
    if triton is None:
        raise RuntimeError(
            f"the Triton router kernel needs triton, which is unavailable here ({_TRITON_IMPORT_ERROR}); "
            "use router_ref instead"
        ) from _TRITON_IMPORT_ERROR


def _dot_precision(dtype: torch.dtype) -> str:
    # bf16/fp16 values are exact in tf32 (<= 10 explicit mantissa bits), so tf32 MMAs give exact products with fp32
    # accumulation; fp32 inputs ask for full-precision dots to match the fp32 reference.
    return "ieee" if dtype == torch.float32 else "tf32"


def router(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    k: int,
    *,
    weights_out: torch.Tensor | None = None,
    indices_out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton version of :func:`router_ref`: ``(weights fp32 [T, k], indices int64 [T, k])``.

    ``x`` ``[T, H]`` and ``weight`` ``[E, H]`` (E <= 128) share a dtype and have contiguous rows (row strides are
    free); ``bias`` ``[E]`` may be any float dtype (it is added in fp32). The logits ``x·Wᵀ + b`` are accumulated
    in fp32 and rounded once to x's dtype, as ``F.linear`` does, then the k largest are taken in descending order
    and softmaxed in fp32. Ties go to the lowest expert index. ``torch.topk`` on CPU does NOT promise that (it
    returned e.g. [22, 21, 20, 23] for 32 equal logits), so the indices equal ``router_ref``'s only where the
    picked logits are distinct; the weights depend on the values only and agree either way.
    ``weights_out`` / ``indices_out`` (contiguous ``[T, k]`` fp32 / int64) optionally receive the results.
    """
    _require_triton()
    if x.dim() != 2 or weight.dim() != 2 or bias.dim() != 1:
        raise ValueError(
            f"x, weight, bias must be [T, H], [E, H], [E], got {tuple(x.shape)}, {tuple(weight.shape)}, "
            f"{tuple(bias.shape)}"
        )
    num_tokens, hidden = x.shape
    num_experts = weight.shape[0]
    if x.dtype not in _KERNEL_DTYPES or weight.dtype != x.dtype:
        raise TypeError(f"x and weight must share one of {_KERNEL_DTYPES}, got {x.dtype}, {weight.dtype}")
    if weight.shape[1] != hidden or hidden == 0:
        raise ValueError(f"weight must be [E, {hidden}] with H > 0, got {tuple(weight.shape)}")
    if not 0 < num_experts <= _MAX_EXPERTS:
        raise ValueError(
            f"E must be in [1, {_MAX_EXPERTS}] (all logits of a token live in one program), got {num_experts}"
        )
    if tuple(bias.shape) != (num_experts,) or not bias.is_floating_point():
        raise ValueError(f"bias must be a float [{num_experts}] tensor, got {bias.dtype} {tuple(bias.shape)}")
    if not 0 < k <= num_experts:
        raise ValueError(f"k must be in [1, E={num_experts}], got {k}")
    for name, t in (("x", x), ("weight", weight)):
        if t.stride(1) != 1 and hidden > 1:
            raise ValueError(f"{name} must be contiguous along its last dim (stride {t.stride(1)})")
    shape = (num_tokens, k)
    if weights_out is None:
        weights_out = torch.empty(shape, dtype=torch.float32, device=x.device)
    if indices_out is None:
        indices_out = torch.empty(shape, dtype=torch.int64, device=x.device)
    for name, t, dtype in (("weights_out", weights_out, torch.float32), ("indices_out", indices_out, torch.int64)):
        if tuple(t.shape) != shape or t.dtype != dtype or not t.is_contiguous():
            raise ValueError(f"{name} must be contiguous {dtype} {shape}, got {t.dtype} {tuple(t.shape)}")
    check_kernel_device(x, weight, bias, weights_out, indices_out)
    if num_tokens == 0:
        return weights_out, indices_out
    bias = bias.contiguous()  # indexed as a flat vector (a no-op for a parameter)
    block_e = max(16, triton.next_power_of_2(num_experts))
    _router_kernel[(triton.cdiv(num_tokens, _BLOCK_T),)](
        x, weight, bias, weights_out, indices_out,
        num_tokens, hidden, num_experts, x.stride(0), weight.stride(0),
        TOP_K=k,
        BLOCK_T=_BLOCK_T,
        BLOCK_E=block_e,
        # [BLOCK_K, BLOCK_E] fp32 weight slice of <= 8192 values (64 per thread at 4 warps): 128 wide up to E = 64
        # (20b: 256 B of each bf16 weight row per step), 64 at E = 128.
        BLOCK_K=max(16, min(128, 8192 // block_e)),
        BLOCK_SLOTS=max(16, triton.next_power_of_2(k)),
        PRECISION=_dot_precision(x.dtype),
        num_warps=4,
    )  # fmt: skip
    return weights_out, indices_out
