"""MXFP4 (OCP microscaling, E2M1 values with one E8M0 scale per 32) decoding: the torch reference.

Layout (docs/model.md#mxfp4): ``blocks[..., rows, G, 16]`` uint8 holds 32 values per group, element ``2j`` in the low
nibble of byte ``j`` and element ``2j+1`` in the high nibble; ``scales[..., rows, G]`` uint8 is a biased exponent,
multiplier ``2**(scale - 127)``. Groups run along the last (input / reduction) dimension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MXFP4_BLOCK = 32
SCALE_BIAS = 127

# E2M1 code -> value; bit 3 is the sign.
FP4_VALUES: tuple[float, ...] = (
    +0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
    -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
)  # fmt: skip

_BYTE_LUT_CACHE: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}


def fp4_byte_lut(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[256, 2]`` table: a packed byte -> its (low-nibble, high-nibble) values, cached per dtype/device.

    Decoding a whole byte per lookup halves the gathers compared with a 16-entry nibble table.
    """
    key = (dtype, device)
    lut = _BYTE_LUT_CACHE.get(key)
    if lut is None:
        values = torch.tensor(FP4_VALUES, dtype=torch.float32)
        byte = torch.arange(256)
        lut = torch.stack((values[byte & 0x0F], values[byte >> 4]), dim=-1).to(device=device, dtype=dtype)
        _BYTE_LUT_CACHE[key] = lut
    return lut


def dequantize_mxfp4(blocks: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """Decode packed MXFP4 to ``dtype``.

    Args:
        blocks: uint8 ``[..., rows, G, 16]``.
        scales: uint8 ``[..., rows, G]``.
        dtype: output dtype; bf16 and fp32 are exact (1 mantissa bit, power-of-two scale), fp16 is not.

    Returns:
        ``[..., rows, G * 32]`` tensor of ``dtype``.
    """
    if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8:
        raise TypeError(f"MXFP4 blocks/scales must be uint8, got {blocks.dtype}/{scales.dtype}")
    if blocks.shape[:-1] != scales.shape or blocks.shape[-1] != MXFP4_BLOCK // 2:
        raise ValueError(f"MXFP4 shape mismatch: blocks {tuple(blocks.shape)} vs scales {tuple(scales.shape)}")
    lut = fp4_byte_lut(dtype, blocks.device)
    # [..., rows, G, 16] bytes -> [..., rows, G, 16, 2] values (low nibble = even element) -> [..., rows, G, 32]
    values = F.embedding(blocks.to(torch.int32), lut).flatten(-2)
    # ldexp by the unbiased exponent; exact because both factors are powers of two times a 1-bit mantissa.
    exponent = scales.to(torch.int32) - SCALE_BIAS
    multiplier = torch.pow(2.0, exponent.to(torch.float32)).to(dtype)  # [..., rows, G]
    values = values * multiplier.unsqueeze(-1)
    return values.flatten(-2)  # [..., rows, G*32]
