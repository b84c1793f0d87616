"""RMSNorm (docs/model.md#rmsnorm): torch references and the Triton kernel (plain and fused with the residual add)."""

from __future__ import annotations

import torch

# The Triton kernel below is optional: without the package this module still imports (the references work) and the
# Triton wrappers raise a clear error.
from gpt_oss_desktop.kernels._triton import TRITON_IMPORT_ERROR as _TRITON_IMPORT_ERROR
from gpt_oss_desktop.kernels._triton import tl, triton
from gpt_oss_desktop.kernels._triton import triton_jit as _triton_jit


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


def add_rmsnorm_ref(
    x: torch.Tensor, delta: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual add then RMSNorm: ``(x + delta, rmsnorm_ref(x + delta))``.

    The sum is rounded to the tensors' dtype before it is normed, exactly as the unfused model code
    ``x = x + delta; t = rmsnorm_ref(x, scale, eps)`` does in bf16.
    """
    residual = x + delta
    return residual, rmsnorm_ref(residual, scale, eps)


# ------------------------------------------------------------------------------------------------------ Triton kernel
# One program per row: a row of gpt-oss (H = 2880) is 5.6 KiB in bf16, held whole in registers as an fp32
# [BLOCK = 4096] vector (16 values per thread at 8 warps), so x is read once and the output written once; the sum of
# squares is a single in-register reduction. Prefill (T = 512) gives 512 programs, plenty for 132 SMs; decode
# (T = 1) is one program and pure launch latency (~6 KiB moved).

_KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_MAX_HIDDEN = 1 << 16  # a row must fit in one program's registers (fp32, BLOCK <= 65536)


@_triton_jit
def round_to_dtype(value: tl.tensor, dtype: tl.constexpr) -> tl.tensor:
    """fp32 ``value`` rounded to ``dtype`` (round to nearest even), returned as the exactly equal fp32 value.

    bf16 is rounded by bit arithmetic rather than ``.to(tl.bfloat16)``: the GPU cast rounds to nearest even, but the
    interpreter's fp32 -> bf16 cast truncates, so a cast would make interpreter tests disagree with torch (and with
    the GPU) by one bf16 ulp. The integer form is exact on both, and storing the result into a bf16 tensor is then
    exact whatever the store's own rounding. Finite values and infinities only (a NaN stays NaN).
    """
    if dtype == tl.bfloat16:
        bits = value.to(tl.int32, bitcast=True)
        # Add 0x7FFF plus the lowest kept bit (ties to even), then clear the 16 dropped bits.
        bits = (bits + (0x7FFF + ((bits >> 16) & 1))) & -65536
        return bits.to(tl.float32, bitcast=True)
    else:
        return value.to(dtype).to(tl.float32)


@_triton_jit
def _rmsnorm_kernel(
    x_ptr: tl.tensor,  # [T, H]
    delta_ptr: tl.tensor,  # [T, H] (read only when HAS_DELTA)
    scale_ptr: tl.tensor,  # [H]
    sum_ptr: tl.tensor,  # [T, H] x + delta (written only when HAS_DELTA)
    out_ptr: tl.tensor,  # [T, H]
    hidden: tl.tensor,
    stride_x: tl.tensor,
    stride_delta: tl.tensor,
    stride_sum: tl.tensor,
    stride_out: tl.tensor,
    eps: tl.tensor,
    HAS_DELTA: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    row = tl.program_id(0).to(tl.int64)  # int64: T * row stride may exceed 2^31 on long prompts
    cols = tl.arange(0, BLOCK)  # [BLOCK] >= H
    col_ok = cols < hidden
    # Upcast right after the load: bf16 arithmetic is wrong in the interpreter, and fp32 is the reference's math.
    # Masked lanes are 0, so they add nothing to the sum of squares.
    x = tl.load(x_ptr + row * stride_x + cols, mask=col_ok, other=0.0).to(tl.float32)
    if HAS_DELTA:
        delta = tl.load(delta_ptr + row * stride_delta + cols, mask=col_ok, other=0.0).to(tl.float32)
        # The residual stream is rounded to its dtype before it is normed (what the unfused bf16 code does);
        # bf16 + bf16 is exact in fp32 up to the final rounding, so this is bitwise equal to torch's x + delta.
        x = round_to_dtype(x + delta, sum_ptr.dtype.element_ty)
        tl.store(sum_ptr + row * stride_sum + cols, x, mask=col_ok)
    mean_square = tl.sum(x * x, axis=0) / hidden  # scalar fp32, like torch's mean over the last dim
    normed = x * tl.math.rsqrt(mean_square + eps)
    scale = tl.load(scale_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    out = round_to_dtype(normed * scale, out_ptr.dtype.element_ty)
    tl.store(out_ptr + row * stride_out + cols, out, mask=col_ok)


# ------------------------------------------------------------------------------------------------------ host wrappers


def _require_triton() -> None:
    if triton is None:
        raise RuntimeError(
            f"the Triton rmsnorm kernel needs triton, which is unavailable here ({_TRITON_IMPORT_ERROR}); "
            "use rmsnorm_ref instead"
        ) from _TRITON_IMPORT_ERROR


def _interpreting() -> bool:
    """Whether the kernels were decorated in interpreter mode (TRITON_INTERPRET=1 at import time)."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(_rmsnorm_kernel, InterpretedFunction)


def check_kernel_device(*tensors: torch.Tensor) -> None:
    """All on one device, and a device the Triton kernels can run on (also used by kernels.rope / kernels.router)."""
    device = tensors[0].device
    if any(t.device != device for t in tensors[1:]):
        raise ValueError(f"all operands must be on one device, got {[str(t.device) for t in tensors]}")
    if device.type != "cuda" and not _interpreting():
        raise RuntimeError(f"the Triton kernels need a CUDA device (or TRITON_INTERPRET=1), got {device}")


def _check_rows(name: str, t: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    # Rows are loaded as one vector, so the last dim must be dense; the row stride is free (views of wider buffers).
    if tuple(t.shape) != shape or t.dtype != dtype:
        raise ValueError(f"{name} must be {dtype} {shape}, got {t.dtype} {tuple(t.shape)}")
    if shape[-1] > 1 and t.stride(-1) != 1:
        raise ValueError(f"{name} must be contiguous along its last dim (stride {t.stride(-1)})")


def _launch(
    x: torch.Tensor,
    delta: torch.Tensor | None,
    scale: torch.Tensor,
    eps: float,
    residual_out: torch.Tensor | None,
    out: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    _require_triton()
    if x.dim() != 2:
        raise ValueError(f"x must be [T, H], got {tuple(x.shape)}")
    if x.dtype not in _KERNEL_DTYPES:
        raise TypeError(f"x must be one of {_KERNEL_DTYPES}, got {x.dtype}")
    num_rows, hidden = x.shape
    if not 0 < hidden <= _MAX_HIDDEN:
        raise ValueError(f"H must be in [1, {_MAX_HIDDEN}], got {hidden}")
    if tuple(scale.shape) != (hidden,) or not scale.is_floating_point():
        raise ValueError(f"scale must be a float [{hidden}] tensor, got {scale.dtype} {tuple(scale.shape)}")
    if not eps >= 0.0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    _check_rows("x", x, (num_rows, hidden), x.dtype)
    if delta is not None:
        _check_rows("delta", delta, (num_rows, hidden), x.dtype)
    if out is None:
        out = torch.empty((num_rows, hidden), dtype=x.dtype, device=x.device)
    _check_rows("out", out, (num_rows, hidden), x.dtype)
    if residual_out is None:
        residual_out = torch.empty((num_rows, hidden), dtype=x.dtype, device=x.device) if delta is not None else out
    _check_rows("residual_out", residual_out, (num_rows, hidden), x.dtype)
    if delta is not None and out.numel() > 0 and residual_out.data_ptr() == out.data_ptr():
        raise ValueError("residual_out and out must be different buffers")
    operands = [x, scale, out, residual_out] + ([delta] if delta is not None else [])
    check_kernel_device(*operands)
    if num_rows == 0:
        return residual_out, out
    scale = scale.contiguous()  # indexed as a flat vector (a no-op for a parameter)
    block = max(16, triton.next_power_of_2(hidden))
    _rmsnorm_kernel[(num_rows,)](
        x, delta if delta is not None else x, scale, residual_out, out,
        hidden, x.stride(0), delta.stride(0) if delta is not None else 0, residual_out.stride(0), out.stride(0), eps,
        HAS_DELTA=delta is not None,
        BLOCK=block,
        num_warps=min(16, max(1, block // 512)),  # ~16 fp32 values per thread: 8 warps at H = 2880 (BLOCK 4096)
    )  # fmt: skip
    return residual_out, out


def rmsnorm(
    x: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Triton version of :func:`rmsnorm_ref` for ``x`` ``[T, H]`` (fp32 math, result in ``x.dtype``).

    ``x`` may be a row-strided view (last dim contiguous); ``scale`` ``[H]`` may be any float dtype. ``out``
    (``[T, H]``, x's dtype, last dim contiguous) optionally receives the result and may be ``x`` itself.
    Grid ``(T,)``: one program normalises one whole row.
    """
    return _launch(x, None, scale, eps, None, out)[1]


def add_rmsnorm(
    x: torch.Tensor,
    delta: torch.Tensor,
    scale: torch.Tensor,
    eps: float = 1e-5,
    *,
    residual_out: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton version of :func:`add_rmsnorm_ref`: returns ``(x + delta, rmsnorm(x + delta))`` from one pass.

    ``delta`` must have x's shape and dtype. The sum is rounded to x's dtype before it is normed (bitwise equal to
    torch's ``x + delta``). ``residual_out`` may be ``x`` (in-place residual update: each program reads its row
    before writing it); ``out`` and ``residual_out`` must differ.
    """
    return _launch(x, delta, scale, eps, residual_out, out)
