"""Op-level backend dispatch: the model calls these, never a kernel module directly.

Only the torch references exist so far (the CPU path). ``GPTOSS_KERNELS=torch`` selects them explicitly; the
Triton kernels of the GPU path plug in here.
"""

from __future__ import annotations

import logging
import os

from kernels.attention import attention_ref
from kernels.moe import moe_ref
from kernels.rmsnorm import rmsnorm_ref
from kernels.rope import rope_ref
from kernels.router import router_ref

logger = logging.getLogger(__name__)

BACKEND_ENV = "GPTOSS_KERNELS"
SUPPORTED_BACKENDS = ("torch",)


def selected_backend() -> str:
    """The backend named by ``GPTOSS_KERNELS`` (default: torch)."""
    name = os.environ.get(BACKEND_ENV, "torch").strip().lower() or "torch"
    if name not in SUPPORTED_BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={name!r} is not available; choose one of {', '.join(SUPPORTED_BACKENDS)}")
    return name


rmsnorm = rmsnorm_ref
rope = rope_ref
attention = attention_ref
router = router_ref
moe = moe_ref
