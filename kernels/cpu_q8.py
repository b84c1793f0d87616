"""The CPU kernels of the 8-bit weights (``kernels/cpu/gemv_q8.cpp``, part of the one CPU-kernel build).

``q8_linear(x, weight, bias)`` computes ``x @ dequantize_q8(weight).T + bias`` for decode-sized ``x`` without a
dequantised copy: each token's activations are rounded to int16 per group of 32 and multiplied by the int8 values in
integers, each group's sum scaled into an fp32 accumulator. Each token's result is independent of the rest of the
batch, bit for bit. The torch reference is :func:`kernels.q8.q8_linear_ref`. ``linear_prefill`` is the path for
longer batches: blocks of rows dequantised by ``dequantize`` (one C++ pass) and multiplied by BLAS.
"""

from __future__ import annotations

import torch

from gpt_oss_desktop.kernels import cpu_build
from gpt_oss_desktop.kernels.q8 import Q8Weight, dequantize_q8, q8_linear_blocked, quantize_rows_ref

__all__ = ["dequantize", "linear_prefill", "q8_linear", "quantize_rows"]

# Bytes of dequantised rows per BLAS call on the prefill path: below glibc's mmap threshold (engine.memory.HEAP_POLICY,
# 4 MB), so each block reuses heap memory; a 59 MB fp32 block paid ~20 ms of page faults per call, more than its
# dequantisation and product together (5120 x 2880, AMD EPYC Zen 4, 2 threads).
PREFILL_BLOCK_BYTES = 2 << 20


def quantize_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`kernels.q8.quantize_rows_ref` (the same bits) in one parallel C++ pass over ``rows [R, K]`` (bf16 or
    fp32 on CPU; other dtypes, or a non-contiguous view, take the torch reference).

    Raises:
        RuntimeError: the CPU kernels are not available (check ``cpu_build.available()`` first).
    """
    if rows.device.type != "cpu" or rows.dtype not in (torch.float32, torch.bfloat16) or not rows.is_contiguous():
        return quantize_rows_ref(rows)
    values, scales = cpu_build.ops().q8_quantize(rows)
    return values, scales


def q8_linear(
    x: torch.Tensor, weight: Q8Weight, bias: torch.Tensor | None = None, *, fp32_out: bool = False
) -> torch.Tensor:
    """``x [T, K] @ W.T + bias`` for a :class:`Q8Weight` ``W [N, K]``, accumulated in fp32.

    Args:
        x: ``[T, K]`` bf16 or fp32 activations on CPU (made contiguous if it is not). Meant for small ``T`` (decode);
            the weight is re-read once per tile of 2-4 tokens.
        weight: the 8-bit weight, on CPU.
        bias: optional ``[N]`` bias (bf16 or fp32 read directly, other float dtypes converted), added in fp32.
        fp32_out: return the fp32 sums (logits) instead of rounding them to x's dtype.

    Raises:
        ValueError: bad dtypes, devices or shapes.
        RuntimeError: the CPU kernels are not available (check ``cpu_build.available()`` first).
    """
    if x.dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"x must be float32 or bfloat16, got {x.dtype}")
    if x.device.type != "cpu" or weight.device.type != "cpu":
        raise ValueError(f"q8_linear runs on the CPU, got x on {x.device} and the weight on {weight.device}")
    n_out, k = weight.shape
    if x.dim() != 2 or x.shape[1] != k:
        raise ValueError(f"x must be [T, K={k}], got {tuple(x.shape)}")
    if bias is not None:
        if bias.device.type != "cpu" or bias.dim() != 1 or bias.shape[0] != n_out:
            raise ValueError(f"bias must be a CPU [N={n_out}] tensor, got {tuple(bias.shape)} on {bias.device}")
        if bias.dtype not in (torch.float32, torch.bfloat16):
            bias = bias.float()
        bias = bias.contiguous()
    out: torch.Tensor = cpu_build.ops().q8_linear(x.contiguous(), weight.values, weight.scales, bias, fp32_out)
    return out


def dequantize(weight: Q8Weight, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """:func:`kernels.q8.dequantize_q8` (the same bits) in one parallel C++ pass for bf16 and fp32 on CPU; other dtypes
    and devices take the torch reference.

    Raises:
        RuntimeError: the CPU kernels are not available (check ``cpu_build.available()`` first).
    """
    if weight.device.type != "cpu" or dtype not in (torch.float32, torch.bfloat16):
        return dequantize_q8(weight, dtype)
    out: torch.Tensor = cpu_build.ops().q8_dequantize(weight.values, weight.scales, dtype == torch.bfloat16)
    return out


def linear_prefill(
    x: torch.Tensor,
    weight: Q8Weight,
    bias: torch.Tensor | None = None,
    *,
    fp32_out: bool = False,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """:func:`kernels.q8.q8_linear_blocked` with the C++ dequantisation, in blocks of ~``PREFILL_BLOCK_BYTES``."""
    compute = compute_dtype or x.dtype
    rows = max(1, PREFILL_BLOCK_BYTES // (weight.shape[1] * compute.itemsize))
    return q8_linear_blocked(
        x, weight, bias, fp32_out=fp32_out, compute_dtype=compute, dequantize=dequantize, block_rows=rows
    )
