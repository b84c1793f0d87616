"""RMSNorm (spec §2.3): the torch reference."""

from __future__ import annotations

import torch


def rmsnorm_ref(x: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``x * rsqrt(mean(x**2) + eps) * scale`` computed in fp32, returned in ``x.dtype``.

    Args:
        x: ``[..., H]`` activations.
        scale: ``[H]`` weight (no +1, no bias).
        eps: added to the mean square before the rsqrt.
    """
    x32 = x.float()
    normed = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (normed * scale.float()).to(x.dtype)
