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
)


def test_each_value_is_within_half_a_step_of_its_weight() -> None:
    weight = (torch.randn(300, 96) * torch.logspace(-4, 1, 96)).to(torch.bfloat16)  # blocks of very different scales
    q = quantize_q8(weight)
    assert q.values.dtype == torch.int8 and q.scales.shape == (300, 96 // Q8_BLOCK)
    step = q.scales.repeat_interleave(Q8_BLOCK, dim=1)  # [N, K]
    error = (dequantize_q8(q) - weight.float()).abs()
    assert (error <= step / 2 + 1e-6 * weight.float().abs()).all()  # + the fp32 roundings of w / step and q * step
    # The block's largest magnitude is exactly +-127 steps: the whole int8 range is used.
    assert (q.values.abs().reshape(300, -1, Q8_BLOCK).amax(-1) == 127).all()


def test_llama_cpp_q8_0_rounding_on_a_known_block() -> None:
    block = torch.tensor([1.0, -0.5, 0.25, 0.0] + [0.0] * 28).reshape(1, 32)
    q = quantize_q8(block)
    assert q.scales.item() == pytest.approx(1.0 / 127)
    assert q.values[0, :4].tolist() == [127, -64, 32, 0]  # -63.5 and 31.75 round to nearest


def test_zero_blocks_stay_zero_and_the_result_is_finite() -> None:
    weight = torch.zeros(3, 64)
    weight[1, 40] = 2.0
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
        Q8Weight(torch.zeros(4, 64, dtype=torch.int8), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="values"):
        Q8Weight(torch.zeros(4, 64), torch.zeros(4, 2))
    q = Q8Weight(torch.zeros(4, 64, dtype=torch.int8), torch.zeros(4, 2))
    assert q.shape == (4, 64) and q.nbytes == 4 * 64 + 4 * 2 * 4


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
