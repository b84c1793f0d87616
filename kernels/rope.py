"""Rotary position embedding with YaRN NTK-by-parts scaling and concentration (docs/model.md#rope-and-yarn).

Torch references (tables and rotation) and the Triton rotation kernel.
"""

from __future__ import annotations

import torch

# Triton import guard and shared helpers live in kernels.rmsnorm (triton / tl are None without the package).
from gpt_oss_desktop.kernels.rmsnorm import (
    _TRITON_IMPORT_ERROR,
    _triton_jit,
    check_kernel_device,
    round_to_dtype,
    tl,
    triton,
)


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


# ------------------------------------------------------------------------------------------------------ Triton kernel
# Grid (T, cdiv(heads, 16)): one program rotates 16 heads of one token, i.e. a [16, D/2] tile of each half
# (gpt-oss: [16, 32] x 2 = 1024 elements = 2 KiB in bf16). The token's cos/sin rows (D/2 values each) are loaded once
# per program and broadcast over its heads. Pure elementwise and memory-bound: every x element is read and written
# once. Prefill T = 512 gives 2048 programs for q (64 heads) and 512 for k (8 heads, half of each tile masked).

_KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_BLOCK_HEADS = 16
_MAX_HEAD_DIM = 1024


@_triton_jit
def _rope_kernel(
    x_ptr: tl.tensor,  # [T, heads, D], last dim contiguous
    cos_ptr: tl.tensor,  # [T, D/2]
    sin_ptr: tl.tensor,  # [T, D/2]
    out_ptr: tl.tensor,  # [T, heads, D], last dim contiguous
    num_heads: tl.tensor,
    half: tl.tensor,  # D / 2
    stride_xt: tl.tensor,
    stride_xh: tl.tensor,
    stride_cos: tl.tensor,
    stride_sin: tl.tensor,
    stride_ot: tl.tensor,
    stride_oh: tl.tensor,
    BLOCK_H: tl.constexpr,
    BLOCK_D: tl.constexpr,  # >= D / 2
) -> None:
    token = tl.program_id(0).to(tl.int64)
    heads = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)  # [BH]
    dims = tl.arange(0, BLOCK_D)  # [BD] index j into each half
    dim_ok = dims < half
    x_dtype = x_ptr.dtype.element_ty
    # The reference casts the fp32 tables to the activation dtype before rotating: round them the same way, so the
    # only difference left is where the rotation itself rounds (once here, three times in a bf16 reference).
    cos = round_to_dtype(tl.load(cos_ptr + token * stride_cos + dims, mask=dim_ok, other=0.0).to(tl.float32), x_dtype)
    sin = round_to_dtype(tl.load(sin_ptr + token * stride_sin + dims, mask=dim_ok, other=0.0).to(tl.float32), x_dtype)
    ok = (heads < num_heads)[:, None] & dim_ok[None, :]  # [BH, BD]
    x_first = x_ptr + token * stride_xt + heads[:, None].to(tl.int64) * stride_xh + dims[None, :]
    # Upcast right after the load (bf16 arithmetic is wrong in the interpreter); fp32 math, one rounding at the end.
    x1 = tl.load(x_first, mask=ok, other=0.0).to(tl.float32)  # x[..., :D/2]
    x2 = tl.load(x_first + half, mask=ok, other=0.0).to(tl.float32)  # x[..., D/2:]
    out1 = x1 * cos[None, :] - x2 * sin[None, :]
    out2 = x2 * cos[None, :] + x1 * sin[None, :]
    # Both halves are in registers before either store, so out may alias x (in-place rotation).
    out_first = out_ptr + token * stride_ot + heads[:, None].to(tl.int64) * stride_oh + dims[None, :]
    tl.store(out_first, round_to_dtype(out1, out_ptr.dtype.element_ty), mask=ok)
    tl.store(out_first + half, round_to_dtype(out2, out_ptr.dtype.element_ty), mask=ok)


# ------------------------------------------------------------------------------------------------------ host wrapper


def _require_triton() -> None:
    if triton is None:
        raise RuntimeError(
            f"the Triton rope kernel needs triton, which is unavailable here ({_TRITON_IMPORT_ERROR}); "
            "use rope_ref instead"
        ) from _TRITON_IMPORT_ERROR


def _check_unit_last_stride(**tensors: torch.Tensor) -> None:
    # Head rows / table rows are loaded as vectors; the other strides are free (q/k are views of the qkv output).
    for name, t in tensors.items():
        if t.shape[-1] > 1 and t.stride(-1) != 1:
            raise ValueError(f"{name} must be contiguous along its last dim (stride {t.stride(-1)})")


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """Triton version of :func:`rope_ref`: rotate-half rotation of ``x`` ``[T, heads, D]`` by ``cos``/``sin``
    ``[T, D/2]``.

    ``x`` may be any view with a contiguous last dim (e.g. the q or k part of the qkv projection output);
    ``cos``/``sin`` may be any float dtype with contiguous rows. ``out`` (``[T, heads, D]``, x's dtype, last dim
    contiguous) optionally receives the result and may be ``x`` itself (in-place).

    Precision: like the reference, cos/sin are first rounded to ``x.dtype``; the rotation is then computed in fp32
    and rounded once. The reference rotates in ``x.dtype`` (two products, one sum, each rounded), so for bf16/fp16
    the results differ by at most ~3 roundings of the products' size, |Δ| <= 3·u·(|x1·cos| + |x2·sin|) (first
    half; |x2·cos| + |x1·sin| for the second) with
    u = 2^-8 (bf16) / 2^-11 (fp16), while the kernel is within one rounding (u·|exact|) of the exact rotation of the
    rounded inputs. For fp32 both agree to fp32 rounding.
    """
    _require_triton()
    if x.dim() != 3:
        raise ValueError(f"x must be [T, heads, D], got {tuple(x.shape)}")
    if x.dtype not in _KERNEL_DTYPES:
        raise TypeError(f"x must be one of {_KERNEL_DTYPES}, got {x.dtype}")
    num_tokens, num_heads, head_dim = x.shape
    if head_dim % 2 or not 0 < head_dim <= _MAX_HEAD_DIM:
        raise ValueError(f"D must be even and in [2, {_MAX_HEAD_DIM}], got {head_dim}")
    half = head_dim // 2
    for name, table in (("cos", cos), ("sin", sin)):
        if tuple(table.shape) != (num_tokens, half) or not table.is_floating_point():
            raise ValueError(
                f"{name} must be a float [{num_tokens}, {half}] tensor, got {table.dtype} {tuple(table.shape)}"
            )
    if out is None:
        out = torch.empty((num_tokens, num_heads, head_dim), dtype=x.dtype, device=x.device)
    elif tuple(out.shape) != tuple(x.shape) or out.dtype != x.dtype:
        raise ValueError(f"out must be {x.dtype} {tuple(x.shape)}, got {out.dtype} {tuple(out.shape)}")
    _check_unit_last_stride(x=x, cos=cos, sin=sin, out=out)
    check_kernel_device(x, cos, sin, out)
    if num_tokens == 0 or num_heads == 0:
        return out
    grid = (num_tokens, triton.cdiv(num_heads, _BLOCK_HEADS))
    _rope_kernel[grid](
        x, cos, sin, out,
        num_heads, half,
        x.stride(0), x.stride(1), cos.stride(0), sin.stride(0), out.stride(0), out.stride(1),
        BLOCK_H=_BLOCK_HEADS,
        BLOCK_D=max(16, triton.next_power_of_2(half)),
        num_warps=4,  # a [16, 32] tile per half at gpt-oss shapes: 4 + 4 values per thread
    )  # fmt: skip
    return out
