"""Rotary position embedding with YaRN NTK-by-parts scaling and concentration (spec §2.5): torch reference."""

from __future__ import annotations

import torch


def yarn_inv_freq(
    head_dim: int,
    theta: float,
    scaling_factor: float,
    low: float,
    high: float,
) -> torch.Tensor:
    """fp32 ``[head_dim/2]`` inverse frequencies, blended between extrapolation and interpolation.

    Dimensions below ``low`` keep their original frequency, those above ``high`` are divided by the scaling
    factor, with a linear ramp in between. The bounds are NOT rounded (gpt-oss uses ``truncate=false``).
    """
    freq = theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # [D/2]
    if scaling_factor <= 1.0:
        return 1.0 / freq
    interpolation = 1.0 / (scaling_factor * freq)
    extrapolation = 1.0 / freq
    ramp = ((torch.arange(head_dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0.0, 1.0)
    keep_original = 1.0 - ramp
    return interpolation * (1.0 - keep_original) + extrapolation * keep_original


def rope_cos_sin(
    positions: torch.Tensor, inv_freq: torch.Tensor, concentration: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 ``cos, sin`` of shape ``[T, D/2]`` for absolute ``positions`` ``[T]``, both scaled by concentration."""
    angles = positions.to(torch.float32)[:, None] * inv_freq.to(positions.device)[None, :]  # [T, D/2]
    return angles.cos() * concentration, angles.sin() * concentration


def rope_ref(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half (NeoX) rotation of ``x`` ``[T, heads, D]`` by ``cos``/``sin`` ``[T, D/2]``.

    Like the reference, cos/sin are cast to the activation dtype and the rotation runs in that dtype.
    """
    cos = cos.to(x.dtype)[:, None, :]  # [T, 1, D/2] broadcast over heads
    sin = sin.to(x.dtype)[:, None, :]
    x1, x2 = x.chunk(2, dim=-1)  # first / second half of each head, [T, heads, D/2]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
