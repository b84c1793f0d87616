"""bf16 weights held in 12 bits each, losslessly: what the CPU decode streams for the dense projections.

Why: CPU decode is a race against memory. Every token reads each dense weight once, so its time is the bytes read.
A bf16 word is ``[sign | 8 exponent bits | 7 mantissa bits]``. Its low byte (exponent bit 0 and the mantissa) is
close to random, but its high byte (sign and exponent bits 7..1) takes few values within a row, because a row's
weights span a few binades. So each row keeps a table of its 16 most frequent high bytes, and each weight is its low
byte plus a 4-bit index into that table: 1.5 bytes instead of 2. A weight whose high byte is not in the table is an
exception, kept whole in a list and written over its decoded group. Decoding gives back the checkpoint's exact bits,
and the GEMV runs the bf16 kernels' own arithmetic on them (``kernels/cpu/bf16_gemv.h``), so its results are
``bf16_linear``'s bit for bit.

Layout (one ``uint8`` tensor ``data``; ``meta = [N, K, E]`` int64; ``K`` a multiple of 32):

- ``N`` rows of ``16 + 48 * K / 32`` bytes: the row's table (16 high bytes), then one 48-byte record per group of 32
  weights: 32 low bytes in *lane order*, then 16 bytes of table indices, byte ``i``'s low nibble for lane position
  ``i`` and its high nibble for position ``16 + i``. Lane order puts word ``p`` at position ``p`` for ``p < 8`` and
  ``p >= 24``, word ``p + 8`` at ``8 <= p < 16`` and word ``p - 8`` at ``16 <= p < 24``: interleaving low and high bytes
  128 bits at a time (``vpunpcklbw``/``vpunpckhbw``) then gives words 0-15 and 16-31 in order.
- ``N + 1`` int64 row starts into the exception list, ``E`` int32 columns and ``E`` uint16 words (sorted by row,
  then column).

:func:`unpack_ref` is the torch reference decoder; the C++ (``kernels/cpu/gemv_bf16_packed.cpp``) packs, unpacks
and multiplies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

import torch
import torch.nn.functional as F

from gpt_oss_desktop.kernels import cpu_build

__all__ = [
    "PACK_ENV",
    "PackedBf16Weight",
    "linear_prefill",
    "pack",
    "packed_linear",
    "packing_wanted",
    "unpack",
    "unpack_ref",
]

# GPTOSS_PACK_BF16=0 keeps a CPU model's bf16 projections as the checkpoint has them (to measure what packing buys;
# the results are the same bits either way).
PACK_ENV: Final = "GPTOSS_PACK_BF16"

GROUP: Final = 32  # weights per record
GROUP_BYTES: Final = 48  # 32 low bytes + 16 bytes of 4-bit indices
TABLE_BYTES: Final = 16

# Word j of a group is at lane position LANE_POSITION[j] of its record (see the module docstring).
LANE_POSITION: Final = tuple(j if j < 8 or j >= 24 else (j + 8 if j < 16 else j - 8) for j in range(GROUP))

# Packing is kept only where it saves at least this share of the bf16 bytes: not for rows of one group (the table
# costs what is saved), nor where many words are exceptions. gpt-oss's rows (K = 2880 or 4096) save ~24.5%; the
# tests' `tiny` rows of 64 save 6%, enough to run the packed path.
MIN_SAVING: Final = 0.05

# Bytes of unpacked rows per BLAS call on the prefill path: below glibc's mmap threshold (engine.memory.HEAP_POLICY,
# 4 MB) so each block reuses heap memory, as the 8-bit weights' prefill blocks do (kernels.cpu_q8).
PREFILL_BLOCK_BYTES: Final = 2 << 20


@dataclass(frozen=True)
class PackedBf16Weight:
    """A bf16 ``[N, K]`` weight in the packed layout above: ``data`` (uint8, 1-D) and ``meta`` (int64 ``[N, K, E]``)."""

    data: torch.Tensor
    meta: torch.Tensor

    def __post_init__(self) -> None:
        if self.meta.dtype != torch.int64 or tuple(self.meta.shape) != (3,) or self.meta.device.type != "cpu":
            raise ValueError(f"meta must be a CPU int64 [3] tensor, got {self.meta.dtype} {tuple(self.meta.shape)}")
        n, k, e = (int(v) for v in self.meta.tolist())
        if n < 0 or k <= 0 or k % GROUP or e < 0:
            raise ValueError(f"bad packed shape N={n} K={k} E={e}")
        expected = _layout_bytes(n, k, e)
        if self.data.dtype != torch.uint8 or self.data.dim() != 1 or self.data.numel() != expected:
            raise ValueError(f"data must be uint8 [{expected}], got {self.data.dtype} {tuple(self.data.shape)}")
        if not self.data.is_contiguous():
            raise ValueError("data must be contiguous")

    @property
    def shape(self) -> torch.Size:
        """``[N, K]``, the shape of the bf16 weight it holds."""
        return torch.Size((int(self.meta[0]), int(self.meta[1])))

    @property
    def exceptions(self) -> int:
        """How many weights are kept whole in the exception list."""
        return int(self.meta[2])

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the weight it holds (bf16)."""
        return torch.bfloat16

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


def packing_wanted() -> bool:
    """Whether a CPU model should pack its bf16 projections (:data:`PACK_ENV`, read when a model loads)."""
    return os.environ.get(PACK_ENV, "1").strip() != "0"


def _row_bytes(k: int) -> int:
    return TABLE_BYTES + GROUP_BYTES * (k // GROUP)


def _layout_bytes(n: int, k: int, e: int) -> int:
    return n * _row_bytes(k) + (n + 1) * 8 + e * 4 + e * 2


def unpack_ref(weight: PackedBf16Weight) -> torch.Tensor:
    """The bf16 ``[N, K]`` weight, decoded by torch ops alone (the reference for the C++ decoder)."""
    n, k = weight.shape
    e = weight.exceptions
    g = k // GROUP
    data = weight.data.cpu()
    rows = data[: n * _row_bytes(k)].view(n, _row_bytes(k))  # [N, 16 + 48G]
    table = rows[:, :TABLE_BYTES].long()  # [N, 16]
    records = rows[:, TABLE_BYTES:].reshape(n, g, GROUP_BYTES)  # [N, 48G] -> [N, G, 48]
    low = records[..., :GROUP].long()  # [N, G, 32], lane order
    nibbles = records[..., GROUP:].long()  # [N, G, 16]
    index = torch.cat([nibbles & 0x0F, nibbles >> 4], dim=-1)  # [N, G, 32], lane order
    high = torch.gather(table, 1, index.reshape(n, g * GROUP)).reshape(n, g, GROUP)  # [N, G, 32]
    lane = torch.tensor(LANE_POSITION)
    words = (high[..., lane] << 8) | low[..., lane]  # [N, G, 32] in word order
    words = words.reshape(n, k)
    starts_at = n * _row_bytes(k)
    starts = data[starts_at : starts_at + (n + 1) * 8].view(torch.int64)
    cols = data[starts_at + (n + 1) * 8 : starts_at + (n + 1) * 8 + e * 4].view(torch.int32).long()
    exact = data[starts_at + (n + 1) * 8 + e * 4 :].view(torch.int16).long() & 0xFFFF
    row_of = torch.repeat_interleave(torch.arange(n), starts[1:] - starts[:-1])  # [E]
    words[row_of, cols] = exact
    return words.to(torch.int16).view(torch.bfloat16)


def pack(weight: torch.Tensor, *, min_saving: float = MIN_SAVING) -> PackedBf16Weight | None:
    """``weight`` (bf16 ``[N, K]`` on CPU) packed by the C++ pass, or None where packing does not pay: K not a multiple
    of 32, or less than ``min_saving`` of the bytes saved (short rows, too many exceptions).

    Raises:
        RuntimeError: the CPU kernels are not available (check ``cpu_build.available()`` first).
    """
    if weight.dtype != torch.bfloat16 or weight.dim() != 2 or weight.device.type != "cpu":
        raise ValueError(f"pack takes a CPU bf16 [N, K] tensor, got {weight.dtype} {tuple(weight.shape)}")
    if weight.shape[1] == 0 or weight.shape[1] % GROUP:
        return None
    data, meta = cpu_build.ops().bf16_pack(weight.contiguous())
    packed = PackedBf16Weight(data=data, meta=meta)
    if packed.nbytes > (1 - min_saving) * weight.nbytes:
        return None
    return packed


def unpack(weight: PackedBf16Weight, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Rows ``start..stop`` of the weight as bf16 ``[rows, K]``, decoded by the C++ pass (the same bits as
    :func:`unpack_ref`)."""
    stop = weight.shape[0] if stop is None else stop
    out: torch.Tensor = cpu_build.ops().bf16_unpack(weight.data, weight.meta, start, stop)
    return out


def packed_linear(
    x: torch.Tensor, weight: PackedBf16Weight, bias: torch.Tensor | None = None, *, fp32_out: bool = False
) -> torch.Tensor:
    """``x [T, K] @ W.T + bias`` by the bf16 GEMV over the packed rows: ``kernels.cpu_mxfp4.bf16_linear`` of the
    unpacked weight, bit for bit. For decode-sized ``T`` (the weight is re-read once per tile of 2-4 tokens).

    Raises:
        ValueError: bad dtypes, devices or shapes.
        RuntimeError: the CPU kernels are not available.
    """
    if x.dtype not in (torch.float32, torch.bfloat16) or x.device.type != "cpu":
        raise ValueError(f"x must be float32 or bfloat16 on CPU, got {x.dtype} on {x.device}")
    n_out, k = weight.shape
    if x.dim() != 2 or x.shape[1] != k:
        raise ValueError(f"x must be [T, K={k}], got {tuple(x.shape)}")
    if bias is not None:
        if bias.device.type != "cpu" or bias.dim() != 1 or bias.shape[0] != n_out:
            raise ValueError(f"bias must be a CPU [N={n_out}] tensor, got {tuple(bias.shape)} on {bias.device}")
        if bias.dtype not in (torch.float32, torch.bfloat16):
            bias = bias.float()
        bias = bias.contiguous()
    out: torch.Tensor = cpu_build.ops().bf16_packed_linear(x.contiguous(), weight.data, weight.meta, bias, fp32_out)
    return out


def linear_prefill(
    x: torch.Tensor,
    weight: PackedBf16Weight,
    bias: torch.Tensor | None = None,
    *,
    fp32_out: bool = False,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``x [T, K] @ W.T + bias`` for prefill-sized ``T``: blocks of ~:data:`PREFILL_BLOCK_BYTES` of rows unpacked
    once each and multiplied by BLAS in ``compute_dtype`` (default x's dtype), so no full bf16 copy exists at any time.
    The result is in x's dtype, or that widened to fp32 with ``fp32_out``."""
    n, k = weight.shape
    compute = compute_dtype or x.dtype
    block_rows = max(1, PREFILL_BLOCK_BYTES // (k * compute.itemsize))
    xc = x.to(compute)
    out = torch.empty((x.shape[0], n), dtype=torch.float32 if fp32_out else x.dtype, device=x.device)
    for r0 in range(0, n, block_rows):
        r1 = min(n, r0 + block_rows)
        b = None if bias is None else bias[r0:r1].to(compute)
        # Rounded to x's dtype before any widening, as a bf16 matmul's result is: fp32_out widens that, and
        # never keeps bits a plain bf16 weight's product would not have.
        out[:, r0:r1] = F.linear(xc, unpack(weight, r0, r1).to(compute), b).to(x.dtype)  # [T, rows]
    return out
