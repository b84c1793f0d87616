"""MXFP4 encoder, the inverse of :func:`kernels.mxfp4.dequantize_mxfp4` (docs/model.md#mxfp4).

Per group of 32 values along the last dim:
- scale: the smallest power of two ``2**e`` with ``amax / 2**e <= 6`` (FP4's largest magnitude), i.e.
  ``e = ceil(log2(amax / 6))``, stored biased as ``e + 127`` and clamped to ``[0, 254]`` (255 is E8M0's NaN).
  An all-zero group gets scale 127 (multiplier 1): any scale decodes zeros exactly.
- values: ``x / 2**e`` rounded to the nearest E2M1 value; ties go to the even code (the value whose mantissa bit is
  0), the IEEE/OCP default, e.g. 0.25 -> 0, 0.75 -> 1, 2.5 -> 2, 5 -> 4. Magnitudes above 6 (only possible when the
  scale was clamped at 254) saturate to 6. The sign is kept, so -0.0 encodes as code 8.
- packing: element ``2j`` in the low nibble of byte ``j``, ``2j+1`` in the high nibble.

Any input that is exactly representable (e.g. the output of ``dequantize_mxfp4``) round-trips bit-exactly: the
chosen exponent is never larger than the one that produced it, and scaling FP4 values by 2, 4 or 8 stays in FP4
whenever the group max still fits under 6.
"""

from __future__ import annotations

import torch

from gpt_oss_desktop.kernels.mxfp4 import MXFP4_BLOCK, SCALE_BIAS

# Decision boundaries between consecutive FP4 magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6.
_MIDPOINTS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)
# Midpoints where round-half-to-even goes *up* (the upper neighbour has the even code): between codes 1|2, 3|4, 5|6.
_TIES_UP = (0.75, 1.75, 3.5)
_MAX_SCALE = 254


def quantize_mxfp4(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode ``w[..., K]`` (K a multiple of 32) as MXFP4.

    Returns:
        ``(blocks, scales)``: uint8 ``[..., K/32, 16]`` and uint8 ``[..., K/32]``, on ``w``'s device.
    """
    if not w.is_floating_point():
        raise TypeError(f"quantize_mxfp4 needs a floating-point tensor, got {w.dtype}")
    if w.ndim == 0 or w.shape[-1] % MXFP4_BLOCK:
        raise ValueError(f"last dim must be a multiple of {MXFP4_BLOCK}, got shape {tuple(w.shape)}")
    x = w.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("quantize_mxfp4: input holds inf or NaN")
    lead = x.shape[:-1]
    groups = x.reshape(*lead, -1, MXFP4_BLOCK)  # [..., G, 32]

    amax = groups.abs().amax(dim=-1)  # [..., G]
    # ceil(log2(amax/6)) without log2 rounding error: amax/6 = m * 2**p with m in [0.5, 1), so the ceiling is p,
    # except p - 1 when m is exactly 0.5 (amax/6 is itself a power of two).
    mant, expo = torch.frexp(amax / 6.0)
    exp = expo - (mant == 0.5).to(expo.dtype)
    biased = torch.where(amax > 0, exp + SCALE_BIAS, torch.full_like(exp, SCALE_BIAS))
    biased = biased.clamp(0, _MAX_SCALE)
    # x / 2**e is exact (power-of-two scaling; ldexp never rounds except on underflow, which rounds to 0 anyway)
    scaled = torch.ldexp(groups, -(biased - SCALE_BIAS).unsqueeze(-1).to(torch.float32))  # [..., G, 32]

    mag = scaled.abs()
    bounds = torch.tensor(_MIDPOINTS, dtype=torch.float32, device=x.device)
    # bucketize(right=False) counts midpoints strictly below |v|: ties go down; then lift the ties that go up.
    code = torch.bucketize(mag, bounds, right=False)
    for tie in _TIES_UP:
        code = code + (mag == tie).to(code.dtype)
    code = code.clamp(max=7).to(torch.uint8)  # magnitudes beyond 6 saturate
    code = code | (torch.signbit(scaled).to(torch.uint8) << 3)

    # [..., G, 32] -> [..., G, 16]: even elements low nibble, odd elements high nibble
    blocks = code[..., 0::2] | (code[..., 1::2] << 4)
    return blocks.contiguous(), biased.to(torch.uint8)
