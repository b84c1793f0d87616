"""8-bit weights with one scale per 32 values (llama.cpp's Q8_0 shape): the opt-in ``--weights q8`` load mode.

A bf16 weight ``W [N, K]`` becomes ``values`` int8 ``[N, K]`` and ``scales`` bf16 ``[N, K/32]``: for each run of 32
consecutive values of a row, ``scale`` is ``absmax / 127`` rounded to the nearest bf16 and ``value = round(w / scale)``
(to nearest, ties to even), so ``W ~ values * scale`` with an error of at most ``scale / 2`` per weight. 32 weights
take 32 + 2 bytes instead of 64 (0.53x bf16), the bytes of llama.cpp's Q8_0.

Why bf16 scales: decode reads every weight once per token and is bound by memory, and fp32 scales made the weights
6 % bigger (36 bytes per 32). llama.cpp stores fp16, whose 5-bit exponent turns the scale of a block with absmax below
~7.8e-3 subnormal, with only a few significant bits; bf16 has fp32's exponent range. Its 8-bit significand puts the
scale within 2^-8 of ``absmax / 127``, so the block's largest weight lands within 127.5 steps and is never clipped.
Only where bf16 itself is subnormal (absmax below ~1.5e-36) could the nearest scale be too small (or 0); there the
scale goes one bf16 step up, so no block is lost.

This module is the torch side: :class:`Q8Weight`, :func:`quantize_q8`, :func:`dequantize_q8`, the exact reference
:func:`q8_linear_ref` (the tests' oracle) and :func:`q8_linear_blocked`, the path for prefill-sized batches (one block
of rows dequantised to the activations' dtype at a time, then BLAS). The decode GEMV is C++
(``kernels/cpu/gemv_q8.cpp``, wrapped by :mod:`kernels.cpu_q8`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "Q8_BLOCK",
    "Dequantizer",
    "Q8Weight",
    "RowQuantizer",
    "dequantize_q8",
    "q8_linear_blocked",
    "q8_linear_ref",
    "quantize_q8",
    "quantize_rows_ref",
    "scale_for",
]

# rows [R, K] -> (values int8 [R, K], scales bf16 [R, K/32]): the torch reference below, or the fused C++ pass
# (kernels.cpu_q8.quantize_rows) that gives the same bits.
RowQuantizer = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# (weight, dtype) -> the weight's values * scales as [N, K] in dtype: dequantize_q8 below, or the C++ pass
# (kernels.cpu_q8.dequantize) that gives the same bits.
Dequantizer = Callable[["Q8Weight", torch.dtype], torch.Tensor]

Q8_BLOCK = 32
# fp32 bytes of the rows quantised per step: bounds the transient copies while the unembedding (201,088 rows) is
# converted, and stays above glibc's mmap threshold (engine.memory.HEAP_POLICY, 4 MB) so they go back to the OS.
_QUANTIZE_CHUNK_BYTES = 8 << 20
# Rows dequantised per step on the prefill path by default: 4096 x 2880 bf16 = 24 MB, reused by every token of the
# batch (the CPU path picks smaller blocks, kernels.cpu_q8.linear_prefill).
PREFILL_ROWS = 4096


@dataclass(frozen=True)
class Q8Weight:
    """An ``[N, K]`` weight as int8 ``values [N, K]`` and bf16 ``scales [N, K/32]`` (both contiguous)."""

    values: torch.Tensor
    scales: torch.Tensor

    def __post_init__(self) -> None:
        v, s = self.values, self.scales
        if v.dtype != torch.int8 or v.dim() != 2 or v.shape[1] % Q8_BLOCK:
            raise ValueError(f"values must be int8 [N, K] with K a multiple of 32, got {v.dtype} {tuple(v.shape)}")
        if s.dtype != torch.bfloat16 or tuple(s.shape) != (v.shape[0], v.shape[1] // Q8_BLOCK):
            raise ValueError(
                f"scales must be bfloat16 [N, K/32] = {(v.shape[0], v.shape[1] // Q8_BLOCK)}, got "
                f"{s.dtype} {tuple(s.shape)}"
            )
        if not (v.is_contiguous() and s.is_contiguous()):
            raise ValueError("values and scales must be contiguous")

    @property
    def shape(self) -> torch.Size:
        """``[N, K]``, the shape of the weight it stands for."""
        return self.values.shape

    @property
    def device(self) -> torch.device:
        return self.values.device

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + self.scales.nbytes


def scale_for(absmax: torch.Tensor) -> torch.Tensor:
    """fp32 block maxima ``absmax [...]`` -> bf16 scales: ``absmax / 127`` to the nearest bf16, or one bf16 step up
    where the largest weight would then be 127.5 steps or more (only where bf16 is subnormal). 0 stays 0."""
    nearest = (absmax / 127.0).to(torch.bfloat16)
    clips = absmax / nearest.float() >= 127.5  # fp32 division, as the C++ pass does; NaN (0 / 0) compares false
    return torch.where(clips, (nearest.view(torch.int16) + 1).view(torch.bfloat16), nearest)


def quantize_rows_ref(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 8-bit rounding of ``rows [R, K]``: per 32 values a bf16 ``scale`` (:func:`scale_for`) and ``round(w /
    scale)`` to nearest, ties to even, clamped to +-127; an all-zero block keeps scale 0 and values 0."""
    r, k = rows.shape
    grouped = rows.float().reshape(r, k // Q8_BLOCK, Q8_BLOCK)  # [R, K] -> [R, G, 32]
    scale = scale_for(grouped.abs().amax(dim=-1))  # [R, G] bf16
    exact = scale.float()
    divisor = torch.where(exact > 0, exact, torch.ones_like(exact)).unsqueeze(-1)  # 1, not 0: no 0/0
    # |w| / scale <= 127 up to one rounding of the division: the clamp keeps int8 from wrapping.
    values = torch.round(grouped / divisor).clamp_(-127, 127).reshape(r, k).to(torch.int8)
    return values, scale


def quantize_q8(
    weight: torch.Tensor,
    done_rows: Callable[[torch.Tensor], None] | None = None,
    quantize_rows: RowQuantizer = quantize_rows_ref,
) -> Q8Weight:
    """``weight [N, K]`` (any float dtype, K a multiple of 32) as a :class:`Q8Weight` on the same device.

    ``done_rows(rows)`` is called with each block of rows of ``weight`` (a view) once it is converted and never read
    again: the loader drops their checkpoint pages from memory there, so the peak stays at one block above the result.
    ``quantize_rows`` converts one block (the loader passes the fused C++ pass where it is built).

    Raises:
        ValueError: not a 2-D float tensor, or K is not a multiple of 32.
    """
    if weight.dim() != 2 or not weight.dtype.is_floating_point:
        raise ValueError(f"weight must be a 2-D float tensor, got {weight.dtype} {tuple(weight.shape)}")
    n, k = weight.shape
    if k % Q8_BLOCK:
        raise ValueError(f"8-bit weights need K to be a multiple of {Q8_BLOCK}, got K={k}")
    values = torch.empty((n, k), dtype=torch.int8, device=weight.device)
    scales = torch.empty((n, k // Q8_BLOCK), dtype=torch.bfloat16, device=weight.device)
    step = max(1, _QUANTIZE_CHUNK_BYTES // (4 * k))
    for r0 in range(0, n, step):
        source = weight[r0 : r0 + step]
        values[r0 : r0 + step], scales[r0 : r0 + step] = quantize_rows(source)
        if done_rows is not None:
            done_rows(source)
    return Q8Weight(values=values, scales=scales)


def dequantize_q8(weight: Q8Weight, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``values * scale`` as ``[N, K]`` in ``dtype`` (computed in fp32, rounded once)."""
    n, k = weight.shape
    scales = weight.scales.float().unsqueeze(-1)  # [N, G, 1]
    grouped = weight.values.reshape(n, k // Q8_BLOCK, Q8_BLOCK).float() * scales  # [N, G, 32]
    return grouped.reshape(n, k).to(dtype)


def q8_linear_ref(
    x: torch.Tensor, weight: Q8Weight, bias: torch.Tensor | None = None, *, fp32_out: bool = False
) -> torch.Tensor:
    """The exact result the kernels approximate: ``x @ dequantize_q8(weight).T + bias`` in fp32, rounded once to
    x's dtype (or returned as fp32 with ``fp32_out``)."""
    out = F.linear(x.float(), dequantize_q8(weight), None if bias is None else bias.float())
    return out if fp32_out else out.to(x.dtype)


def q8_linear_blocked(
    x: torch.Tensor,
    weight: Q8Weight,
    bias: torch.Tensor | None = None,
    *,
    fp32_out: bool = False,
    compute_dtype: torch.dtype | None = None,
    dequantize: Dequantizer = dequantize_q8,
    block_rows: int = PREFILL_ROWS,
) -> torch.Tensor:
    """``x [T, K] @ W.T + bias`` for prefill-sized ``T``: each block of ``block_rows`` rows is dequantised once (by
    ``dequantize``) and multiplied by BLAS against every token, so no full-size dequantised copy exists at any time.

    The product runs in ``compute_dtype`` (default x's dtype; the CPU backend passes fp32 where the CPU has no bf16
    dot products, engine.ops). In bf16 the dequantised weights are rounded to bf16, one more rounding than the decode
    kernel, which keeps them fp32. The result is in x's dtype, or fp32 with ``fp32_out``.
    """
    n = weight.shape[0]
    compute = compute_dtype or x.dtype
    xc = x.to(compute)
    out = torch.empty((x.shape[0], n), dtype=torch.float32 if fp32_out else x.dtype, device=x.device)
    for r0 in range(0, n, block_rows):
        part = Q8Weight(weight.values[r0 : r0 + block_rows], weight.scales[r0 : r0 + block_rows])
        b = None if bias is None else bias[r0 : r0 + block_rows].to(compute)
        out[:, r0 : r0 + block_rows] = F.linear(xc, dequantize(part, compute), b)  # [T, rows]
    return out
