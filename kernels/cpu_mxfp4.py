"""Fused MXFP4 dequant + GEMV / small GEMM for the CPU decode path (a C++ extension built at first use).

``mxfp4_linear(x, blocks, scales, bias)`` computes ``x @ dequantize_mxfp4(blocks, scales).T + bias`` without ever
materialising the dequantised weight: each packed group of 32 weights is decoded in registers (the 16-entry E2M1 table
lives in one vector register), multiplied by its power-of-two scale and reduced against ``x`` with fp32 accumulation.
Output rows are split across threads with ``at::parallel_for``. The point is that decode is bandwidth-bound: an expert
matrix is ~9 MB packed, so the kernel should run near memory speed instead of paying for a 33 MB bf16 copy per expert.

The C++ is in ``kernels/cpu/`` (``gemv.cpp``, ``moe.cpp``, ``attention.cpp``, ``elementwise.cpp``; shipped as package
data). The AVX-512 path (with or without AVX512-BF16), the AVX2 path or the portable scalar path is chosen by the
compiler's predefined macros; ``kernels.cpu_build`` compiles one variant per instruction-set level with explicit ``-m``
flags, picks the best level this CPU has at run time (``GPTOSS_CPU_ISA`` forces one) and caches the builds per
source, flags, level, torch version and install.

Meant for small ``T`` (decode: 1..16 tokens); the weights are re-decoded (from L2) for every 4 tokens, so large
prefill batches should use ``dequantize_mxfp4`` + a BLAS matmul instead.

The same extension also holds the other fused kernels of CPU decode (one build for all):
- ``bf16_linear(x, weight, bias)``, a streaming GEMV for the dense bf16 projections of decode (attention qkv/out,
  router, unembedding): measured here at T=1 it reads weights at ~25 GB/s where ``F.linear``'s oneDNN path reached
  ~16 GB/s;
- ``moe_mxfp4(...)``, the whole MoE MLP (mlp1, SwiGLU, mlp2, weighted sum) of a decode-sized batch in one call;
- ``attention_decode(...)``, decode attention straight from the KV cache store;
- RMSNorm and RoPE (``kernels.cpu_elementwise``; their C++ is ``kernels/cpu/elementwise.cpp``).

Decode-sized calls give each token (sequence) a result independent of the rest of the batch, bit for bit, so batched
greedy decoding picks exactly the tokens single-sequence decoding picks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from gpt_oss_desktop.kernels import cpu_build
from gpt_oss_desktop.kernels.mxfp4 import MXFP4_BLOCK

if TYPE_CHECKING:
    from gpt_oss_desktop.kernels.op_signatures import Attention, AttentionDecode

__all__ = [
    "attention_decode",
    "available",
    "bf16_linear",
    "build_error",
    "extension_ops",
    "isa",
    "moe_decode_rounds_activations",
    "moe_mxfp4",
    "mxfp4_linear",
]

# Levels whose MoE decode rounds each projection's bf16 activations to int16 per group of 32 (x ~ q * absmax / 32767)
# and sums the products in integers (kernels/cpu/mxfp4_rows.h, row_dot_i16); the others, and fp32 activations
# everywhere, multiply the activations as they are (fp32 FMAs, or vdpbf16ps for bf16).
INT16_MOE_DECODE_LEVELS = frozenset({"avx2"})


def available() -> bool:
    """Whether the fused CPU kernels can be used; builds (or loads the cached build of) them on first call.

    Never raises: a missing compiler, a failed build or an unsupported platform returns ``False`` and is logged once
    (as a warning) with the reason, which ``build_error()`` also returns. See ``kernels.cpu_build``.
    """
    return cpu_build.available()


def build_error() -> str | None:
    """Why ``available()`` returned ``False`` (``None`` if it has not been called or succeeded)."""
    return cpu_build.build_error()


def isa() -> str | None:
    """The instruction-set level that runs (``"avx512bf16"``, ``"avx512"``, ``"avx2"``, ``"scalar"``); None if
    unavailable."""
    return cpu_build.active_level()


def moe_decode_rounds_activations(dtype: torch.dtype) -> bool:
    """Whether the active level's MoE decode (``moe_mxfp4(..., prefill=False)``) of ``dtype`` activations rounds them
    to int16 per group of 32 (each off by at most the group's absmax / 65534) before multiplying."""
    return dtype == torch.bfloat16 and isa() in INT16_MOE_DECODE_LEVELS


def _op() -> Any:
    """The active variant's op namespace; raises RuntimeError if it could not be built here."""
    return cpu_build.ops()


def extension_ops() -> Any:
    """The built extension's op namespace (``torch.ops.<namespace>``), for modules whose C++ shares this build
    (kernels.cpu_elementwise). Raises RuntimeError if the extension could not be built here."""
    return cpu_build.ops()


def _checked_bias(bias: torch.Tensor | None, n_out: int) -> torch.Tensor | None:
    """A linear op's optional ``[N]`` bias as the kernels read it: on CPU, contiguous, fp32 or bf16."""
    if bias is None:
        return None
    if bias.device.type != "cpu" or bias.dim() != 1 or bias.shape[0] != n_out:
        raise ValueError(f"bias must be a CPU [N={n_out}] tensor, got {tuple(bias.shape)} on {bias.device}")
    if bias.dtype not in (torch.float32, torch.bfloat16):
        bias = bias.float()
    return bias.contiguous()


def mxfp4_linear(
    x: torch.Tensor,
    blocks: torch.Tensor,
    scales: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x @ W.T + bias`` with ``W = dequantize_mxfp4(blocks, scales)``, accumulated in fp32, never materialising W.

    Args:
        x: ``[T, K]`` bf16 or fp32 activations on CPU (made contiguous if it is not: it is small).
        blocks: uint8 ``[N, K/32, 16]``, contiguous (e.g. ``blocks[e]`` of a contiguous ``[E, N, G, 16]`` tensor,
            memory-mapped or not). A non-contiguous view raises rather than silently copying megabytes per call.
        scales: uint8 ``[N, K/32]``, contiguous.
        bias: optional ``[N]`` bias (bf16 or fp32 are read directly; other float dtypes are converted), added in fp32.

    Returns:
        ``[T, N]`` in ``x.dtype`` (rounded once from the fp32 result).

    Raises:
        ValueError: bad shapes, dtypes, devices or non-contiguous weights.
        RuntimeError: the extension is not available (check ``available()`` first).
    """
    if x.dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"x must be float32 or bfloat16, got {x.dtype}")
    if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8:
        raise ValueError(f"blocks/scales must be uint8, got {blocks.dtype}/{scales.dtype}")
    for name, t in (("x", x), ("blocks", blocks), ("scales", scales)):
        if t.device.type != "cpu":
            raise ValueError(f"{name} must be on CPU, got {t.device}")
    if x.dim() != 2:
        raise ValueError(f"x must be [T, K], got shape {tuple(x.shape)}")
    if blocks.dim() != 3 or blocks.shape[2] != MXFP4_BLOCK // 2:
        raise ValueError(f"blocks must be [N, K/32, 16], got shape {tuple(blocks.shape)}")
    n_out, groups = blocks.shape[0], blocks.shape[1]
    if tuple(scales.shape) != (n_out, groups):
        raise ValueError(f"scales must be [N, K/32] = {(n_out, groups)}, got {tuple(scales.shape)}")
    if x.shape[1] != groups * MXFP4_BLOCK:
        raise ValueError(f"x has K={x.shape[1]} but the weights have K={groups * MXFP4_BLOCK} ({groups} groups of 32)")
    if not blocks.is_contiguous() or not scales.is_contiguous():
        raise ValueError(
            "blocks and scales must be contiguous (pass one expert's slice of a contiguous [E, N, G, 16] tensor); "
            f"got strides {blocks.stride()} / {scales.stride()}"
        )
    bias = _checked_bias(bias, n_out)
    op = _op()
    out: torch.Tensor = op.linear(x.contiguous(), blocks, scales, bias)
    return out


def bf16_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *, fp32_out: bool = False
) -> torch.Tensor:
    """``x @ weight.T + bias`` for a bf16 weight, accumulated in fp32: a streaming GEMV for decode (small ``T``).

    Same extension as ``mxfp4_linear`` (one build). Each weight row is read once per tile of tokens (up to 4 while
    their activations fit in L1) and reduced in fp32: with ``vdpbf16ps`` against bf16 activations where the CPU has
    AVX512-BF16, else widened to fp32 in registers; rows are shared between threads like ``mxfp4_linear``'s.

    Args:
        x: ``[T, K]`` bf16 or fp32 activations on CPU (made contiguous if it is not). Meant for ``T <= 4``; larger
            ``T`` works but re-reads the weight once per tile, where a BLAS matmul is the better choice.
        weight: bf16 ``[N, K]``, contiguous (memory-mapped is fine). A non-contiguous weight raises.
        bias: optional ``[N]`` bias (bf16 or fp32 are read directly; other float dtypes are converted), added in fp32.

    Returns:
        ``[T, N]`` in ``x.dtype`` (rounded once from the fp32 result), or the fp32 result itself with ``fp32_out``.

    Raises:
        ValueError: bad shapes, dtypes, devices or a non-contiguous weight.
        RuntimeError: the extension is not available (check ``available()`` first).
    """
    if x.dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"x must be float32 or bfloat16, got {x.dtype}")
    if weight.dtype != torch.bfloat16:
        raise ValueError(f"weight must be bfloat16, got {weight.dtype}")
    for name, t in (("x", x), ("weight", weight)):
        if t.device.type != "cpu":
            raise ValueError(f"{name} must be on CPU, got {t.device}")
    if x.dim() != 2 or weight.dim() != 2:
        raise ValueError(f"x must be [T, K] and weight [N, K], got {tuple(x.shape)} and {tuple(weight.shape)}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has K={x.shape[1]} but the weight has K={weight.shape[1]}")
    if not weight.is_contiguous():
        raise ValueError(f"weight must be contiguous, got strides {weight.stride()}")
    n_out = weight.shape[0]
    bias = _checked_bias(bias, n_out)
    op = _op()
    out: torch.Tensor = op.bf16_linear(x.contiguous(), weight, bias, fp32_out)
    return out


def moe_mxfp4(
    x: torch.Tensor,
    routing_weights: torch.Tensor,
    expert_indices: torch.Tensor,
    mlp1: tuple[torch.Tensor, torch.Tensor],
    mlp1_bias: torch.Tensor,
    mlp2: tuple[torch.Tensor, torch.Tensor],
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
    swiglu_alpha: float,
    prefill: bool = False,
) -> torch.Tensor:
    """The whole MoE MLP of ``kernels.moe.moe_ref`` in one call (MXFP4 experts only).

    Decode (``prefill=False``): each token's result is independent of the other tokens in the batch (bit for bit),
    so batched decode of several sequences gives exactly what decoding each alone gives. At the levels of
    ``moe_decode_rounds_activations`` it rounds each projection's bf16 activations to int16 per group of 32 first.
    Prefill (``prefill=True``): the projections run as a blocked GEMM that decodes each weight block once per call
    (kernels/cpu/moe_gemm.h), much faster for many tokens per expert, with sums in another order (compared with the
    torch reference, like BLAS).

    Args:
        x: ``[T, H]`` bf16 or fp32 normed activations.
        routing_weights: ``[T, k]`` (fp32); expert_indices: ``[T, k]`` integer expert ids.
        mlp1: ``(blocks [E, 2I, H/32, 16], scales [E, 2I, H/32])``; mlp1_bias ``[E, 2I]``.
        mlp2: ``(blocks [E, H, I/32, 16], scales [E, H, I/32])``; mlp2_bias ``[E, H]``.

    Returns:
        ``[T, H]`` in ``x.dtype``.

    Raises:
        ValueError: bad dtypes, devices or shapes.
        RuntimeError: the extension is not available (check ``available()`` first).
    """
    if x.dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"x must be float32 or bfloat16, got {x.dtype}")
    tensors = (x, routing_weights, expert_indices, *mlp1, mlp1_bias, *mlp2, mlp2_bias)
    if any(t.device.type != "cpu" for t in tensors):
        raise ValueError("moe_mxfp4 needs every tensor on the CPU")
    if expert_indices.dim() != 2 or routing_weights.shape != expert_indices.shape or x.dim() != 2:
        raise ValueError(
            f"x [T, H], weights and indices [T, k] expected, got {tuple(x.shape)}, {tuple(routing_weights.shape)}, "
            f"{tuple(expert_indices.shape)}"
        )
    if not all(t.is_contiguous() for t in (*mlp1, *mlp2)):
        raise ValueError("expert blocks and scales must be contiguous")

    def as_bias(bias: torch.Tensor) -> torch.Tensor:
        return (bias if bias.dtype in (torch.float32, torch.bfloat16) else bias.float()).contiguous()

    op = _op()
    run = op.moe_prefill if prefill else op.moe
    out: torch.Tensor = run(
        x.contiguous(),
        expert_indices.to(torch.int64).contiguous(),
        routing_weights.float().contiguous(),
        mlp1[0],
        mlp1[1],
        as_bias(mlp1_bias),
        mlp2[0],
        mlp2[1],
        as_bias(mlp2_bias),
        float(swiglu_limit),
        float(swiglu_alpha),
    )
    return out


def attention_prefill(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    sinks: torch.Tensor,
    q_pos: torch.Tensor,
    k_pos: torch.Tensor,
    window: int,
    sm_scale: float,
) -> torch.Tensor:
    """:func:`kernels.attention.attention_ref` (same arguments and result) as one flash-style CPU call
    (kernels/cpu/attention_prefill.cpp): fp32 scores and softmax, never materialising the [T, S] score matrix, and
    only the key blocks a query tile can see when ``k_pos`` ascends. Agrees with the reference to fp32 rounding.

    Raises:
        ValueError: tensors on another device.
        RuntimeError: bad shapes or dtypes (``head_dim`` must be a multiple of 8), or the extension is unavailable.
    """
    if any(t.device.type != "cpu" for t in (q, k, v, sinks, q_pos, k_pos)):
        raise ValueError("attention_prefill needs every tensor on the CPU")
    op = _op()
    out: torch.Tensor = op.attention_prefill(
        q.contiguous(),
        k.contiguous(),
        v.contiguous(),
        sinks.float().contiguous(),
        q_pos.to(torch.int64).contiguous(),
        k_pos.to(torch.int64).contiguous(),
        int(window),
        float(sm_scale),
    )
    return out


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
) -> torch.Tensor:
    """:func:`kernels.attention.attention_decode_ref` (same arguments and result) as one fused CPU call.

    Each sequence's output is independent of the rest of the batch. ``q``/``k_store``/``v_store`` must share a dtype
    (bf16 or fp32); ``lengths`` must fit the store (``<= S`` unless ``ring``).

    Raises:
        ValueError: tensors on another device.
        RuntimeError: bad shapes or dtypes, or the extension is unavailable (check ``available()`` first).
    """
    if any(t.device.type != "cpu" for t in (q, k_store, v_store, sinks, slots, lengths)):
        raise ValueError("attention_decode needs every tensor on the CPU")
    op = _op()
    out: torch.Tensor = op.attention_decode(
        q.contiguous(),
        k_store,
        v_store,
        sinks.float().contiguous(),
        slots.to(torch.int64).contiguous(),
        lengths.to(torch.int64).contiguous(),
        int(window),
        bool(ring),
        float(sm_scale),
    )
    return out


if TYPE_CHECKING:  # the references' signatures (kernels.op_signatures), checked by mypy
    _ATTENTION_DECODE_SIGNATURE: AttentionDecode = attention_decode
    _ATTENTION_SIGNATURE: Attention = attention_prefill
