"""Op-level backend dispatch: the model calls these, never a kernel module directly.

The CPU path runs the torch references of ``kernels/``; for MXFP4 experts at decode sizes it swaps in the fused
C++ dequant-GEMV (``kernels.cpu_mxfp4``) when that extension can be built here, and falls back to the reference
otherwise. ``GPTOSS_KERNELS=torch`` selects the torch path explicitly; ``GPTOSS_CPU_FUSED=0`` turns the fused CPU
kernel off (to measure what it buys).
"""

from __future__ import annotations

import functools
import logging
import os

import torch

from kernels import cpu_mxfp4
from kernels.attention import attention_decode_ref, attention_ref
from kernels.moe import ExpertWeights, Mxfp4Experts, expert_linear_ref, moe_ref
from kernels.rmsnorm import rmsnorm_ref
from kernels.rope import rope_ref
from kernels.router import router_ref

logger = logging.getLogger(__name__)

BACKEND_ENV = "GPTOSS_KERNELS"
CPU_FUSED_ENV = "GPTOSS_CPU_FUSED"
SUPPORTED_BACKENDS = ("torch",)
# Above this many tokens per expert, decoding the expert once and running a BLAS matmul beats re-decoding the
# packed weights per few tokens inside the fused kernel.
FUSED_MAX_TOKENS = 16


def selected_backend() -> str:
    """The backend named by ``GPTOSS_KERNELS`` (default: torch)."""
    name = os.environ.get(BACKEND_ENV, "torch").strip().lower() or "torch"
    if name not in SUPPORTED_BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={name!r} is not available; choose one of {', '.join(SUPPORTED_BACKENDS)}")
    return name


@functools.cache
def cpu_fused_enabled() -> bool:
    """Whether the fused CPU MXFP4 kernel is wanted and usable (built on first call, cached)."""
    if os.environ.get(CPU_FUSED_ENV, "1").strip() in ("0", "false", "no", "off"):
        logger.info("fused CPU MXFP4 kernel disabled by %s", CPU_FUSED_ENV)
        return False
    return cpu_mxfp4.available()


def cpu_expert_linear(x: torch.Tensor, experts: ExpertWeights, index: int, bias: torch.Tensor) -> torch.Tensor:
    """One expert's projection on the CPU: fused MXFP4 GEMV for few tokens, else decode + BLAS."""
    if (
        isinstance(experts, Mxfp4Experts)
        and x.device.type == "cpu"
        and x.shape[0] <= FUSED_MAX_TOKENS
        and cpu_fused_enabled()
    ):
        return cpu_mxfp4.mxfp4_linear(x, experts.blocks[index], experts.scales[index], bias)
    return expert_linear_ref(x, experts, index, bias)


rmsnorm = rmsnorm_ref
rope = rope_ref
attention = attention_ref
attention_decode = attention_decode_ref
router = router_ref
moe = functools.partial(moe_ref, expert_linear=cpu_expert_linear)
