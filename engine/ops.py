"""Op-level backend dispatch: the model calls an :class:`Ops` bundle, never a kernel module directly.

Two backends share one model definition, each op typed by its Protocol in ``kernels.op_signatures``:
- ``cpu``: the torch references in ``kernels/``, with the fused C++ kernels (``kernels/cpu/``, wrapped by
  ``kernels.cpu_mxfp4`` and ``kernels.cpu_elementwise``) swapped in where they take the inputs: the whole MoE MLP
  of MXFP4 experts (row-exact GEMVs for decode-sized batches, a blocked GEMM for prefill), attention (decode from
  the cache store, prefill flash-style), RMSNorm and RoPE, and a bf16 GEMV for decode's dense projections
  (qkv/out, router, unembedding), or the 8-bit GEMV (``kernels.cpu_q8``) where the model was loaded with
  ``--weights q8`` (qkv/out and unembedding weights are then ``kernels.q8.Q8Weight``); in the default bf16 mode the
  qkv/out and unembedding weights are held losslessly in 12 bits (``kernels.bf16_packed.PackedBf16Weight``) and the
  same GEMV runs over them, bit for bit. Prefill's dense projections go to BLAS, in fp32 where the CPU has no bf16
  dot products. Without the fused kernels (switched off, or not built
  here) every op is its torch reference.
- ``triton``: the Triton kernels beside each reference (the GPU path; with ``TRITON_INTERPRET=1`` they also run on
  the CPU, which is how the tests check them).

``GPTOSS_KERNELS=cpu|triton`` forces one (``torch``, the old name of ``cpu``, still works and logs a deprecation
warning); by default CUDA tensors get Triton and CPU tensors get ``cpu``. ``GPTOSS_CPU_FUSED=0`` turns every fused CPU
kernel off (to measure what they buy); ``GPTOSS_CPU_ISA`` picks their instruction-set level (see
``kernels/cpu_build.py``).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.kernels import _triton as _triton_loader
from gpt_oss_desktop.kernels import attention as attention_kernels
from gpt_oss_desktop.kernels import bf16_packed, cpu_build, cpu_elementwise, cpu_mxfp4, cpu_q8
from gpt_oss_desktop.kernels import moe as moe_kernels
from gpt_oss_desktop.kernels import rmsnorm as rmsnorm_kernels
from gpt_oss_desktop.kernels import rope as rope_kernels
from gpt_oss_desktop.kernels import router as router_kernels
from gpt_oss_desktop.kernels.attention import attention_decode_ref, attention_ref
from gpt_oss_desktop.kernels.bf16_packed import PackedBf16Weight
from gpt_oss_desktop.kernels.moe import ExpertWeights, Mxfp4Experts, moe_ref
from gpt_oss_desktop.kernels.op_signatures import (
    AddRmsNorm,
    Attention,
    AttentionDecode,
    Moe,
    Projection,
    RmsNorm,
    Rope,
    Router,
    Unembed,
)
from gpt_oss_desktop.kernels.q8 import Q8Weight, q8_linear_blocked
from gpt_oss_desktop.kernels.rmsnorm import add_rmsnorm_ref, rmsnorm_ref
from gpt_oss_desktop.kernels.rope import rope_ref
from gpt_oss_desktop.kernels.router import router_ref

logger = logging.getLogger(__name__)

BACKEND_ENV = _triton_loader.BACKEND_ENV  # GPTOSS_KERNELS
CPU_FUSED_ENV = cpu_build.FUSED_ENV
BACKENDS = ("cpu", "triton")
# Old backend names still accepted (with a logged deprecation warning), and what they are called now.
DEPRECATED_BACKENDS = {"torch": "cpu"}
# The fused bf16 GEMV takes decode-sized inputs; prefill goes to F.linear's BLAS. At T=1..4 it beats F.linear (1.6-1.7x
# at T=1 on the 20b qkv/out shapes). Up to 8 it is used even where BLAS is faster (T=8 on a 50k x 2880 slice: 46 vs
# 28 ms, load ~4, Sapphire Rapids), because its result for a token does not depend on how many tokens share the call
# and BLAS's does: with it, a request decoded in a batch of up to 8 (the local server's default, engine/server) gets
# exactly the tokens it gets alone. tests/engine/server/test_concurrency.py fails at 8 streams with a limit of 4.
BF16_FUSED_MAX_TOKENS = 8
# Up to this many tokens an 8-bit projection runs as the fused 8-bit GEMV, past it as dequantised blocks and bf16 BLAS
# (5120 x 2880, AMD EPYC Zen 4, 2 threads: 3.2 vs 4.1 ms at 16 tokens, 5.2 vs 4.6 ms at 24). Where the CPU has no bf16
# dot products BLAS would multiply in fp32, and the GEMV's integer products were faster at every size up to 128
# tokens and even at 512 (with MKL and oneDNN held to AVX2 on that CPU: 30.0 vs 52.1 ms at 128, 138.5 vs 135.3 at
# 512), so there the GEMV takes every size. The limit covers BF16_FUSED_MAX_TOKENS: decode batches stay row-exact.
Q8_FUSED_MAX_TOKENS = 16
# Up to this many tokens the whole MoE MLP runs as one fused CPU call (decode and batched decode): it removes ~0.7 ms of
# per-layer torch overhead at batch 1 on the 20b preset, and its per-token results do not depend on the batch.
MOE_FUSED_MAX_TOKENS = 16
# Past that, the MoE MLP runs as the fused prefill call (a blocked GEMM that decodes each expert weight block once per
# call, kernels/cpu/moe_gemm.h), this many tokens at a time: its fp32 intermediates are ~50 KB per token at 20b widths
# (top-4), so a chunk holds ~100 MB whatever the prompt length.
MOE_PREFILL_CHUNK_TOKENS = 2048


@dataclass(frozen=True)
class Ops:
    """The hot operations of one backend, each typed by its one signature (``kernels.op_signatures``)."""

    name: str  # "cpu" or "triton"
    rmsnorm: RmsNorm
    add_rmsnorm: AddRmsNorm
    rope: Rope
    attention: Attention
    attention_decode: AttentionDecode
    router: Router
    moe: Moe
    linear: Projection  # (x [T, K], weight [N, K] dense or 8-bit, bias [N] | None) -> [T, N], like F.linear
    unembed: Unembed  # (x [T, H], weight [V, H] dense or 8-bit) -> fp32 logits [T, V]


def cpu_fused_enabled() -> bool:
    """Whether the fused CPU kernels are wanted (``GPTOSS_CPU_FUSED``, read at every call) and usable (prepared on
    first call, see kernels/cpu_build.py)."""
    return not cpu_build.switched_off() and cpu_mxfp4.available()


def _fused_gemv_fits(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the fused bf16 GEMV takes this projection: decode-sized bf16 activations and a contiguous bf16 weight."""
    return (
        x.device.type == "cpu"
        and x.dim() == 2
        and x.shape[0] <= BF16_FUSED_MAX_TOKENS
        and x.dtype == torch.bfloat16
        and weight.dtype == torch.bfloat16
        and weight.is_contiguous()
        and cpu_fused_enabled()
    )


def _fused_elementwise_fits(x: torch.Tensor) -> bool:
    """Whether the C++ RMSNorm/RoPE take ``x``: a CPU float32/bfloat16 tensor, fused kernels wanted and built."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16) and cpu_fused_enabled()


def cpu_rmsnorm(x: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``rmsnorm_ref`` as one C++ call on the CPU (a decode row is ~9 tiny torch ops otherwise)."""
    if _fused_elementwise_fits(x):
        return cpu_elementwise.rmsnorm(x, scale, eps)
    return rmsnorm_ref(x, scale, eps)


def cpu_add_rmsnorm(
    x: torch.Tensor, delta: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """``add_rmsnorm_ref`` as one C++ call on the CPU."""
    if _fused_elementwise_fits(x) and delta.dtype == x.dtype and delta.shape == x.shape:
        return cpu_elementwise.add_rmsnorm(x, delta, scale, eps)
    return add_rmsnorm_ref(x, delta, scale, eps)


def cpu_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``rope_ref`` as one C++ call on the CPU."""
    if _fused_elementwise_fits(x) and x.dim() == 3:
        return cpu_elementwise.rope(x, cos, sin)
    return rope_ref(x, cos, sin)


# CPU flags (as /proc/cpuinfo spells them) with which torch's bf16 matmul runs bf16 dot-product instructions. Without
# them oneDNN emulates bf16 and F.linear in bf16 is ~7x slower than in fp32 (AMD EPYC Zen 3, AVX2, 2 threads, a
# 512 x 2880 by 2880 x 5120 product: 2.9 s vs 0.41 s), so prefill's dense projections widen to fp32 there.
NATIVE_BF16_MATMUL_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def _bf16_matmul_is_native() -> bool:
    return bool(NATIVE_BF16_MATMUL_FLAGS & cpu_build.cpu_flags())


def _blas_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear`` for prefill-sized CPU inputs, in fp32 where the CPU has no bf16 dot products (the widened
    copies are rounded back once: the same products and fp32 sums as a native bf16 matmul, in BLAS's order)."""
    if x.dtype == torch.bfloat16 and weight.dtype == torch.bfloat16 and not _bf16_matmul_is_native():
        wide_bias = None if bias is None else bias.float()
        return F.linear(x.float(), weight.float(), wide_bias).to(x.dtype)
    return F.linear(x, weight, bias)


def cpu_q8_linear(
    x: torch.Tensor, weight: Q8Weight, bias: torch.Tensor | None = None, *, fp32_out: bool = False
) -> torch.Tensor:
    """``x @ W.T + bias`` for an 8-bit weight on the CPU: the fused 8-bit GEMV up to ``Q8_FUSED_MAX_TOKENS`` tokens
    (any count where the CPU has no bf16 dot products), else blocks of rows dequantised once per call and multiplied
    by bf16 BLAS (``cpu_q8.linear_prefill``). The GEMV covers every decode batch (``BF16_FUSED_MAX_TOKENS``), so a
    token's decode result does not depend on the batch."""
    fused = x.device.type == "cpu" and x.dim() == 2 and x.dtype in (torch.float32, torch.bfloat16)
    fused = fused and cpu_fused_enabled()
    if fused and (x.shape[0] <= Q8_FUSED_MAX_TOKENS or not _bf16_matmul_is_native()):
        return cpu_q8.q8_linear(x, weight, bias, fp32_out=fp32_out)
    compute = x.dtype if _bf16_matmul_is_native() else torch.float32
    if fused:
        return cpu_q8.linear_prefill(x, weight, bias, fp32_out=fp32_out, compute_dtype=compute)
    return q8_linear_blocked(x, weight, bias, fp32_out=fp32_out, compute_dtype=compute)


def cpu_packed_linear(
    x: torch.Tensor, weight: PackedBf16Weight, bias: torch.Tensor | None = None, *, fp32_out: bool = False
) -> torch.Tensor:
    """``x @ W.T + bias`` for a packed bf16 weight on the CPU: the bf16 GEMV over the packed rows for decode-sized
    bf16 ``x`` (what :func:`cpu_linear` gives the unpacked weight, bit for bit), else blocks of rows unpacked and
    multiplied by BLAS as ``_blas_linear`` multiplies a bf16 weight (rounded to x's dtype, then widened for
    ``fp32_out``). With the fused kernels switched off, the torch reference decoder unpacks the whole weight."""
    fused = cpu_fused_enabled() and x.device.type == "cpu" and x.dim() == 2
    if fused and x.dtype == torch.bfloat16 and x.shape[0] <= BF16_FUSED_MAX_TOKENS:
        return bf16_packed.packed_linear(x, weight, bias, fp32_out=fp32_out)
    if not fused:
        dense = bf16_packed.unpack_ref(weight).to(x.device)
        out = _blas_linear(x, dense, bias) if x.device.type == "cpu" else F.linear(x, dense, bias)
        return out.float() if fp32_out else out
    compute = x.dtype if x.dtype != torch.bfloat16 or _bf16_matmul_is_native() else torch.float32
    return bf16_packed.linear_prefill(x, weight, bias, fp32_out=fp32_out, compute_dtype=compute)


def cpu_linear(
    x: torch.Tensor, weight: torch.Tensor | Q8Weight | PackedBf16Weight, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``F.linear`` with the fused bf16 GEMV for decode-sized CPU inputs (same dtypes in and out as ``F.linear``);
    an 8-bit weight goes to :func:`cpu_q8_linear`, a packed one to :func:`cpu_packed_linear`."""
    if isinstance(weight, Q8Weight):
        return cpu_q8_linear(x, weight, bias)
    if isinstance(weight, PackedBf16Weight):
        return cpu_packed_linear(x, weight, bias)
    if _fused_gemv_fits(x, weight) and (bias is None or bias.dtype == torch.bfloat16):
        return cpu_mxfp4.bf16_linear(x, weight, bias)
    if x.device.type == "cpu":
        return _blas_linear(x, weight, bias)
    return F.linear(x, weight, bias)


def cpu_unembed(x: torch.Tensor, weight: torch.Tensor | Q8Weight | PackedBf16Weight) -> torch.Tensor:
    """fp32 logits ``[T, V]``: straight from the fused GEMV's fp32 sums for decode sizes (no bf16 rounding and no
    widening copy of a [T, 201088] tensor), else ``F.linear`` in the model dtype, widened."""
    if isinstance(weight, Q8Weight):
        return cpu_q8_linear(x, weight, fp32_out=True)
    if isinstance(weight, PackedBf16Weight):
        return cpu_packed_linear(x, weight, fp32_out=True)
    if _fused_gemv_fits(x, weight):
        return cpu_mxfp4.bf16_linear(x, weight, fp32_out=True)
    if x.device.type == "cpu":
        return _blas_linear(x, weight).float()
    return F.linear(x, weight).float()


def cpu_router(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``router_ref`` with its logits from :func:`cpu_linear` (the fused GEMV at decode sizes)."""
    return router_ref(x, weight, bias, k, linear=cpu_linear)


def dense_or_q8_linear(
    x: torch.Tensor, weight: torch.Tensor | Q8Weight | PackedBf16Weight, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``F.linear``, or for an 8-bit weight its blocks of rows dequantised and multiplied (the Triton backend's
    projections: no 8-bit GPU kernel exists yet, so ``--weights q8`` there saves memory but not time). Packed bf16
    weights exist only in CPU-backend models; one reaching here is unpacked by the reference decoder."""
    if isinstance(weight, Q8Weight):
        return q8_linear_blocked(x, weight, bias)
    if isinstance(weight, PackedBf16Weight):
        return F.linear(x, bf16_packed.unpack_ref(weight).to(x.device), bias)
    return F.linear(x, weight, bias)


def linear_unembed(x: torch.Tensor, weight: torch.Tensor | Q8Weight | PackedBf16Weight) -> torch.Tensor:
    """fp32 logits ``[T, V]`` from ``F.linear`` in the model dtype, widened (the Triton backend's unembedding)."""
    if isinstance(weight, Q8Weight):
        return q8_linear_blocked(x, weight, fp32_out=True)
    return dense_or_q8_linear(x, weight).float()


def _fused_attention_fits(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether the C++ attention kernels take these: CPU fp32/bf16 queries, keys and values of one dtype."""
    return (
        q.device.type == "cpu"
        and q.dtype in (torch.float32, torch.bfloat16)
        and k.dtype == q.dtype
        and v.dtype == q.dtype
        and cpu_fused_enabled()
    )


def cpu_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    sinks: torch.Tensor,
    q_pos: torch.Tensor,
    k_pos: torch.Tensor,
    window: int,
    sm_scale: float,
) -> torch.Tensor:
    """``attention_ref`` on the CPU (prefill): one flash-style fused call, no [T, S] score matrix."""
    if _fused_attention_fits(q, k, v) and q.shape[-1] % 8 == 0:
        return cpu_mxfp4.attention_prefill(q, k, v, sinks, q_pos, k_pos, window, sm_scale)
    return attention_ref(q, k, v, sinks, q_pos, k_pos, window, sm_scale)


def cpu_attention_decode(
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
    """``attention_decode_ref`` on the CPU: one fused call (no per-sequence gathers or fp32 copies of the cache)."""
    if _fused_attention_fits(q, k_store, v_store) and k_store.is_contiguous() and v_store.is_contiguous():
        return cpu_mxfp4.attention_decode(q, k_store, v_store, sinks, slots, lengths, window, ring, sm_scale)
    return attention_decode_ref(q, k_store, v_store, sinks, slots, lengths, window, ring, sm_scale)


def cpu_moe(
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
    """``moe_ref`` on the CPU: for MXFP4 experts one fused call, the row-exact decode kernel for decode-sized batches
    and the blocked-GEMM prefill kernel for longer ones (in chunks); otherwise the reference with fused projections."""
    if (
        isinstance(mlp1, Mxfp4Experts)
        and isinstance(mlp2, Mxfp4Experts)
        and x.device.type == "cpu"
        and x.dim() == 2
        and cpu_fused_enabled()
    ):
        prefill = x.shape[0] > MOE_FUSED_MAX_TOKENS
        chunk = MOE_PREFILL_CHUNK_TOKENS if prefill else max(1, x.shape[0])
        parts = [
            cpu_mxfp4.moe_mxfp4(
                x[start : start + chunk],
                routing_weights[start : start + chunk],
                expert_indices[start : start + chunk],
                (mlp1.blocks, mlp1.scales),
                mlp1_bias,
                (mlp2.blocks, mlp2.scales),
                mlp2_bias,
                swiglu_limit,
                swiglu_alpha,
                prefill=prefill,
            )
            for start in range(0, max(1, x.shape[0]), chunk)
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)
    return moe_ref(
        x,
        routing_weights,
        expert_indices,
        mlp1,
        mlp1_bias,
        mlp2,
        mlp2_bias,
        swiglu_limit,
        swiglu_alpha,
    )


CPU_OPS = Ops(
    name="cpu",
    rmsnorm=cpu_rmsnorm,
    add_rmsnorm=cpu_add_rmsnorm,
    rope=cpu_rope,
    attention=cpu_attention,
    attention_decode=cpu_attention_decode,
    router=cpu_router,
    moe=cpu_moe,
    linear=cpu_linear,
    unembed=cpu_unembed,
)


def triton_ops() -> Ops:
    """Every hot op as a Triton kernel."""
    return Ops(
        name="triton",
        rmsnorm=rmsnorm_kernels.rmsnorm,
        add_rmsnorm=rmsnorm_kernels.add_rmsnorm,
        rope=rope_kernels.rope,
        attention=attention_kernels.attention,
        attention_decode=attention_kernels.attention_decode,
        router=router_kernels.router,
        moe=moe_kernels.moe,
        linear=dense_or_q8_linear,
        unembed=linear_unembed,
    )


def _triton_usable(device: torch.device) -> str | None:
    """None if Triton kernels can run on ``device``, else why not.

    Triton itself is loaded (or not) when the kernel modules are imported: only with a CUDA device,
    ``GPTOSS_KERNELS=triton`` or ``TRITON_INTERPRET=1`` (kernels._triton), so a CPU-only process never carries it.
    """
    if _triton_loader.TRITON_IMPORT_ERROR is not None:
        return str(_triton_loader.TRITON_IMPORT_ERROR)
    if device.type == "cuda":
        return None
    if os.environ.get("TRITON_INTERPRET") == "1":
        return None
    return f"Triton kernels need a CUDA device (or TRITON_INTERPRET=1 for the interpreter), not {device.type}"


def requested_backend() -> str | None:
    """The backend ``GPTOSS_KERNELS`` names (an old name mapped to the new one, with a warning), or None if unset.

    Raises:
        EngineError: the variable names no backend.
    """
    requested = os.environ.get(BACKEND_ENV, "").strip().lower()
    if not requested:
        return None
    renamed = DEPRECATED_BACKENDS.get(requested)
    if renamed is not None:
        logger.warning("%s=%s is deprecated: the backend is now called %s", BACKEND_ENV, requested, renamed)
        return renamed
    if requested not in BACKENDS:
        raise EngineError(f"{BACKEND_ENV}={requested!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    return requested


def select_ops(device: torch.device) -> Ops:
    """The backend for ``device``: ``GPTOSS_KERNELS`` if set, else Triton on CUDA and ``cpu`` elsewhere."""
    requested = requested_backend()
    if requested == "cpu":
        return CPU_OPS
    problem = _triton_usable(device)
    if requested == "triton":
        if problem is not None:
            raise EngineError(f"{BACKEND_ENV}=triton: {problem}")
        return triton_ops()
    if device.type == "cuda" and problem is None:
        return triton_ops()
    return CPU_OPS
