"""The fused CPU MXFP4 GEMV (kernels.cpu_mxfp4) against the torch dequantise + matmul reference."""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.kernels import cpu_mxfp4
from gpt_oss_desktop.kernels.mxfp4 import dequantize_mxfp4

# Every test runs once per instruction-set level this CPU has (tests/kernels/conftest.py).
pytestmark = pytest.mark.usefixtures("cpu_isa")


def _random_mxfp4(n: int, k: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    groups = k // 32
    blocks = torch.randint(0, 256, (n, groups, 16), dtype=torch.uint8, generator=gen)
    # Around the checkpoint's range (2^-12 .. 2^8), wide enough that per-group scaling errors would show.
    scales = torch.randint(115, 136, (n, groups), dtype=torch.uint8, generator=gen)
    return blocks, scales


def _reference(x: torch.Tensor, blocks: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    out = x.float() @ dequantize_mxfp4(blocks, scales, torch.float32).T
    return out if bias is None else out + bias.float()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("t", [1, 3, 8])
@pytest.mark.parametrize(("n", "k"), [(7, 96), (33, 32), (129, 576), (300, 2880)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_reference(dtype: torch.dtype, t: int, n: int, k: int, with_bias: bool) -> None:
    gen = torch.Generator().manual_seed(n * 1000 + k + t)
    blocks, scales = _random_mxfp4(n, k, gen)
    x = torch.randn(t, k, generator=gen).to(dtype)
    bias = torch.randn(n, generator=gen).to(dtype) if with_bias else None

    out = cpu_mxfp4.mxfp4_linear(x, blocks, scales, bias)
    ref = _reference(x, blocks, scales, bias)

    assert out.shape == (t, n)
    assert out.dtype == dtype
    if dtype == torch.float32:
        # Same exact weights and inputs, fp32 accumulation in another order: only summation rounding differs.
        rel = ((out - ref).abs().max() / ref.abs().max()).item()
        assert rel < 1e-5
    else:
        # Accumulated in fp32 and rounded once: at most one bf16 ulp from the rounded fp32 reference (the reference
        # may sit on the other side of a rounding boundary), far inside what bf16 accumulation would give.
        ulp = torch.finfo(torch.bfloat16).eps * ref.abs().clamp_min(1e-30)
        assert ((out.float() - ref).abs() <= ulp + 1e-5 * ref.abs().max()).all()


def test_expert_slice_of_stacked_tensor_and_fp32_bias_with_bf16_x() -> None:
    gen = torch.Generator().manual_seed(1)
    blocks, scales = _random_mxfp4(3 * 40, 64, gen)
    blocks, scales = blocks.view(3, 40, 2, 16), scales.view(3, 40, 2)
    x = torch.randn(2, 64, generator=gen).to(torch.bfloat16)
    bias = torch.randn(3, 40, generator=gen)
    out = cpu_mxfp4.mxfp4_linear(x, blocks[2], scales[2], bias[2])
    ref = _reference(x, blocks[2], scales[2], bias[2])
    torch.testing.assert_close(out, ref.to(torch.bfloat16), atol=0.0, rtol=torch.finfo(torch.bfloat16).eps)


def test_non_contiguous_x_and_empty_batch() -> None:
    gen = torch.Generator().manual_seed(2)
    blocks, scales = _random_mxfp4(5, 64, gen)
    x = torch.randn(64, 3, generator=gen).T  # [3, 64], not contiguous
    ref = _reference(x, blocks, scales, None)
    # fp32 sums in another order than the reference's (each level has its own): relative to the output's scale.
    scale = float(ref.abs().max())
    torch.testing.assert_close(cpu_mxfp4.mxfp4_linear(x, blocks, scales), ref, atol=1e-5 * scale, rtol=1e-5)
    assert cpu_mxfp4.mxfp4_linear(x[:0], blocks, scales).shape == (0, 5)


def test_rejects_bad_inputs() -> None:
    gen = torch.Generator().manual_seed(3)
    blocks, scales = _random_mxfp4(6, 64, gen)
    x = torch.randn(1, 64)
    with pytest.raises(ValueError, match="K=96"):
        cpu_mxfp4.mxfp4_linear(torch.randn(1, 96), blocks, scales)
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        cpu_mxfp4.mxfp4_linear(x.half(), blocks, scales)
    with pytest.raises(ValueError, match="uint8"):
        cpu_mxfp4.mxfp4_linear(x, blocks.int(), scales)
    with pytest.raises(ValueError, match="scales"):
        cpu_mxfp4.mxfp4_linear(x, blocks, scales[:, :1])
    with pytest.raises(ValueError, match="contiguous"):
        cpu_mxfp4.mxfp4_linear(x, blocks[::2], scales[::2])
    with pytest.raises(ValueError, match="bias"):
        cpu_mxfp4.mxfp4_linear(x, blocks, scales, torch.zeros(5))
    with pytest.raises(ValueError, match=r"\[T, K\]"):
        cpu_mxfp4.mxfp4_linear(x[0], blocks, scales)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("t", [2, 3, 4, 9])
def test_decode_sized_rows_equal_lone_rows_bit_for_bit(dtype: torch.dtype, t: int) -> None:
    # A batched decode step must give each token exactly what it gets alone, or batched greedy generation would
    # drift from single-sequence generation.
    gen = torch.Generator().manual_seed(40 + t)
    blocks, scales = _random_mxfp4(301, 2880, gen)
    x = torch.randn(t, 2880, generator=gen).to(dtype)
    bias = torch.randn(301, generator=gen).to(dtype)
    together = cpu_mxfp4.mxfp4_linear(x, blocks, scales, bias)
    for row in range(t):
        assert torch.equal(together[row], cpu_mxfp4.mxfp4_linear(x[row : row + 1], blocks, scales, bias)[0]), row


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_every_code_and_scale_byte(groups: int) -> None:
    # Each level decodes E2M1 its own way (AVX2 by vpshufb byte tables, two groups at a time; an odd group count
    # leaves one group alone). Row r: scale byte r in every group, from 0 (the subnormal 2^-127) up to 240 (2^113,
    # where the sums still stay below fp32's range), and the rows' bytes run through all 256 values.
    n = 241
    gen = torch.Generator().manual_seed(groups)
    blocks = ((torch.arange(n * groups * 16) * 7) % 256).to(torch.uint8).view(n, groups, 16)
    scales = torch.arange(n, dtype=torch.uint8).view(n, 1).expand(n, groups).contiguous()
    x = torch.randn(2, groups * 32, generator=gen)
    out = cpu_mxfp4.mxfp4_linear(x, blocks, scales)
    ref = _reference(x, blocks, scales, None)
    assert torch.isfinite(out).all()
    # Relative to each row's own magnitude (the rows span 2^-127 .. 2^127); subnormal rows keep an absolute floor.
    row_max = ref.abs().amax(dim=0, keepdim=True)
    assert ((out - ref).abs() <= 1e-5 * row_max + 1e-44).all()
