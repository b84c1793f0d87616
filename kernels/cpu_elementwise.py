"""RMSNorm (with the residual add) and RoPE as single CPU calls, for decode.

Same arguments, results and rounding points as the torch references :func:`kernels.rmsnorm.rmsnorm_ref`,
:func:`kernels.rmsnorm.add_rmsnorm_ref` and :func:`kernels.rope.rope_ref` (only the fp32 order of the mean-of-squares
sum differs). They exist because at decode each reference is a chain of ~8 tiny torch ops whose dispatch costs far
more than the arithmetic. The C++ is ``kernels/cpu/elementwise.cpp``, built into the one extension with the rest of
the fused CPU kernels (``kernels.cpu_build``); check :func:`kernels.cpu_mxfp4.available` before calling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gpt_oss_desktop.kernels import cpu_mxfp4

if TYPE_CHECKING:
    from gpt_oss_desktop.kernels.op_signatures import AddRmsNorm, RmsNorm, Rope

__all__ = ["add_rmsnorm", "rmsnorm", "rope"]


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1]).contiguous()  # [..., H] -> [rows, H]


def rmsnorm(x: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``rmsnorm_ref(x, scale, eps)``: ``x`` ``[..., H]``, ``scale`` ``[H]``; result in ``x.dtype``."""
    _, normed = cpu_mxfp4.extension_ops().rmsnorm(_rows(x), None, scale.float().contiguous(), float(eps))
    result: torch.Tensor = normed.view(x.shape)
    return result


def add_rmsnorm(
    x: torch.Tensor, delta: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """``add_rmsnorm_ref``: ``(x + delta, rmsnorm(x + delta))``, the sum rounded to the dtype before the norm."""
    if delta.shape != x.shape or delta.dtype != x.dtype:
        raise ValueError(f"delta {tuple(delta.shape)} {delta.dtype} does not match x {tuple(x.shape)} {x.dtype}")
    total, normed = cpu_mxfp4.extension_ops().rmsnorm(_rows(x), _rows(delta), scale.float().contiguous(), float(eps))
    return total.view(x.shape), normed.view(x.shape)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``rope_ref``: rotate-half RoPE of ``x`` ``[T, heads, D]`` by fp32 ``cos``/``sin`` ``[T, D/2]``."""
    op = cpu_mxfp4.extension_ops()
    out: torch.Tensor = op.rope(x.contiguous(), cos.float().contiguous(), sin.float().contiguous())
    return out


if TYPE_CHECKING:  # the references' signatures (kernels.op_signatures), checked by mypy
    _SIGNATURES: tuple[RmsNorm, AddRmsNorm, Rope] = (rmsnorm, add_rmsnorm, rope)
