"""8-bit weights (kernels.q8): quantisation, its error bound, and the prefill path against the reference."""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.kernels.q8 import (
    Q8_BLOCK,
    Q8Weight,
    dequantize_q8,
    q8_linear_blocked,
    q8_linear_ref,
    quantize_q8,
    scale_for,
)


def test_each_value_is_within_half_a_step_of_its_weight() -> None:
    weight = (torch.randn(300, 96) * torch.logspace(-4, 1, 96)).to(torch.bfloat16)  # blocks of very different scales
    q = quantize_q8(weight)
    assert q.values.dtype == torch.int8 and q.scales.shape == (300, 96 // Q8_BLOCK)
    assert q.scales.dtype == torch.bfloat16
    step = q.scales.float().repeat_interleave(Q8_BLOCK, dim=1)  # [N, K]
    error = (dequantize_q8(q) - weight.float()).abs()
    assert (error <= step / 2 + 1e-6 * weight.float().abs()).all()  # + the fp32 roundings of w / step and q * step
    # The scale is absmax / 127 to the nearest bf16: within 2^-8 of it, either way.
    exact = weight.float().abs().reshape(300, -1, Q8_BLOCK).amax(-1) / 127  # [N, G]
    assert ((q.scales.float() - exact).abs() <= exact * 2**-8).all()
    assert (q.scales.float() > exact).any() and (q.scales.float() < exact).any()  # both ways: rounding is exercised
    # The block's largest magnitude is 126.5-127.5 steps, so 127 (or 126 on a tie): the int8 range is used, and
    # nothing is clipped.
    largest = q.values.abs().reshape(300, -1, Q8_BLOCK).amax(-1)
    assert ((largest == 126) | (largest == 127)).all() and (largest == 127).float().mean() > 0.9


def test_scales_at_the_edges() -> None:
    edges = [0.0, 127.0, 127.0 * (1 + 2**-20), 127.0 * (1 + 2**-8 + 2**-12), 4e40, 127 * 1.4 * 2**-133, 1e-39]
    absmax = torch.tensor([*edges, float("nan")])
    scale = scale_for(absmax)
    assert scale.dtype == torch.bfloat16
    assert scale[:2].tolist() == [0.0, 1.0]  # 0 stays 0 (an all-zero block); exact values stay
    assert scale[2].item() == 1.0  # to nearest, so down here
    assert scale[3].item() == 1.0 + 2**-7  # and up here
    assert scale[4].item() == float("inf")  # past the largest finite bf16
    # Where bf16 is subnormal (steps of 2^-133) the nearest scale would put the largest weight past 127.5 steps, or
    # be 0 and lose the block: it goes one step up instead.
    assert scale[5].item() == 2 * 2**-133  # nearest: 2^-133, which puts the largest weight at 178 steps
    assert scale[6].item() == 2**-133  # nearest: 0
    assert torch.isnan(scale[7])
    tiny = quantize_q8(torch.tensor([[1e-39] + [0.0] * 31]))
    assert tiny.values[0, 0].item() > 0 and dequantize_q8(tiny)[0, 0].item() > 0  # the block is not lost


def test_the_rounding_on_known_blocks() -> None:
    # 1 / 127 = 2^-7 * 1.00787...: bf16 keeps 7 fraction bits, so the scale is 2^-7 * (1 + 1/128), just below.
    block = torch.tensor([1.0, -0.5, 0.25, 0.0] + [0.0] * 28).reshape(1, 32)
    q = quantize_q8(block)
    assert q.scales.item() == 2**-7 * (1 + 1 / 128)
    assert q.values[0, :4].tolist() == [127, -64, 32, 0]  # 127.01, -63.50 and 31.75 to nearest
    # absmax / 127 a bf16 value: the scale is exact, the largest weight is 127 steps, and halves go to even.
    block = torch.tensor([127.0, 2.5, -3.5, 0.5] + [0.0] * 28).reshape(1, 32) * 2**-6
    q = quantize_q8(block)
    assert q.scales.item() == 2**-6
    assert q.values[0, :4].tolist() == [127, 2, -4, 0]


def test_zero_blocks_stay_zero_and_the_result_is_finite() -> None:
    weight = torch.zeros(3, 64)
    weight[1, 40] = 127 * 2**-6  # a scale bf16 holds exactly, so the dequantised block is exact too
    q = quantize_q8(weight)
    assert q.scales[0].tolist() == [0.0, 0.0] and q.values[0].eq(0).all()
    assert torch.equal(dequantize_q8(q), weight)


def test_rows_are_converted_in_blocks_and_each_block_is_reported() -> None:
    weight = torch.randn(70_000, 32)  # more rows than one 8 MB block
    seen: list[int] = []
    q = quantize_q8(weight, done_rows=lambda rows: seen.append(rows.shape[0]))
    assert sum(seen) == 70_000 and len(seen) > 1
    assert torch.allclose(dequantize_q8(q), weight, atol=q.scales.max().item())


@pytest.mark.parametrize(
    ("weight", "match"),
    [
        (torch.zeros(4, 48), "multiple of 32"),
        (torch.zeros(4, 32, dtype=torch.int32), "float"),
        (torch.zeros(32), "2-D"),
    ],
)
def test_bad_weights_raise(weight: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        quantize_q8(weight)


def test_a_weight_object_checks_its_parts() -> None:
    with pytest.raises(ValueError, match="scales"):
        Q8Weight(torch.zeros(4, 64, dtype=torch.int8), torch.zeros(4, 3, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="scales must be bfloat16"):
        Q8Weight(torch.zeros(4, 64, dtype=torch.int8), torch.zeros(4, 2))  # fp32 scales: the old layout
    with pytest.raises(ValueError, match="values"):
        Q8Weight(torch.zeros(4, 64), torch.zeros(4, 2, dtype=torch.bfloat16))
    q = Q8Weight(torch.zeros(4, 64, dtype=torch.int8), torch.zeros(4, 2, dtype=torch.bfloat16))
    assert q.shape == (4, 64) and q.nbytes == 4 * 64 + 4 * 2 * 2  # 34 bytes per 32 weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_prefill_path_matches_the_reference(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    q = quantize_q8(torch.randn(9000, 64, generator=gen))  # more rows than one dequantised block
    x = torch.randn(40, 64, generator=gen).to(dtype)
    bias = torch.randn(9000, generator=gen)
    ref = q8_linear_ref(x, q, bias, fp32_out=True)
    for fp32_out in (False, True):
        out = q8_linear_blocked(x, q, bias, fp32_out=fp32_out)
        assert out.dtype == (torch.float32 if fp32_out else dtype)
        # bf16: the dequantised weights and the products are rounded to bf16 once more than in the reference.
        tol = 1e-5 if dtype == torch.float32 else 2e-2
        assert ((out.float() - ref).abs().max() / ref.abs().max()).item() < tol
    # Computed in fp32 (as on CPUs without bf16 dot products): only the result's own rounding is left.
    wide = q8_linear_blocked(x, q, bias, fp32_out=True, compute_dtype=torch.float32)
    assert ((wide - ref).abs().max() / ref.abs().max()).item() < 1e-5
