"""MXFP4 encoding against hand-computed bytes, through both our encoder and the reference decoder."""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.engine.checkpoint import quantize_mxfp4
from gpt_oss_desktop.kernels.mxfp4 import FP4_VALUES, dequantize_mxfp4


def _group(*values: float) -> torch.Tensor:
    """One 32-value group: ``values`` then zeros."""
    return torch.tensor([*values] + [0.0] * (32 - len(values)), dtype=torch.float32)


def _blocks(*first: int) -> torch.Tensor:
    return torch.tensor([[*first] + [0] * (16 - len(first))], dtype=torch.uint8)


def test_hand_computed_byte_decodes_low_nibble_first_with_bias_127() -> None:
    # 0x2F: low nibble 0xF = -6.0 (element 0), high nibble 0x2 = +1.0 (element 1); scale 128 -> x2
    values = dequantize_mxfp4(_blocks(0x2F), torch.tensor([128], dtype=torch.uint8), torch.float32)
    assert values.shape == (32,)
    assert values[:2].tolist() == [-12.0, 2.0]
    assert values[2:].abs().sum() == 0
    # 0x71: +0.5 then +6.0; scale 124 -> /8
    values = dequantize_mxfp4(_blocks(0x71), torch.tensor([124], dtype=torch.uint8), torch.float32)
    assert values[:2].tolist() == [0.5 / 8, 6.0 / 8]


def test_hand_computed_values_encode_to_the_same_bytes() -> None:
    blocks, scales = quantize_mxfp4(_group(-12.0, 2.0))
    assert scales.tolist() == [128]  # amax 12 = 6 * 2**1
    assert blocks.tolist() == [[0x2F] + [0] * 15]
    blocks, scales = quantize_mxfp4(_group(0.5 / 8, 6.0 / 8))
    assert scales.tolist() == [124]
    assert blocks[0, 0].item() == 0x71


def test_every_code_in_order() -> None:
    # bytes 0x10, 0x32, ... put codes 0..15 in element order when the low nibble comes first
    packed = _blocks(*[(2 * j) | ((2 * j + 1) << 4) for j in range(8)])
    values = dequantize_mxfp4(packed, torch.tensor([127], dtype=torch.uint8), torch.float32)
    assert values[:16].tolist() == list(FP4_VALUES)
    blocks, scales = quantize_mxfp4(values)
    assert scales.item() == 127
    # -0.0 keeps its sign (code 8)
    assert torch.equal(blocks, packed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_round_trip_is_bit_exact_for_representable_inputs(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 256, (3, 40, 4, 16), dtype=torch.uint8, generator=g)
    scales = torch.randint(90, 160, (3, 40, 4), dtype=torch.uint8, generator=g)
    scales[0, 0, 0] = 0  # extremes of the exponent range
    scales[0, 0, 1] = 252  # 6 * 2**(253-127) would overflow fp32 itself
    blocks[1, 1, 1] = 0x11  # a group with max magnitude 0.5 gets a smaller scale, same values
    w = dequantize_mxfp4(blocks, scales, dtype)
    b2, s2 = quantize_mxfp4(w)
    assert b2.shape == blocks.shape and s2.shape == scales.shape
    assert b2.dtype == s2.dtype == torch.uint8
    assert torch.equal(dequantize_mxfp4(b2, s2, dtype), w)


def test_rounds_to_nearest_with_ties_to_even() -> None:
    # scale stays 127 because of the 6.0; midpoints: .25->0, .75->1, 1.25->1, 1.75->2, 2.5->2, 3.5->4, 5->4
    x = _group(6.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.75, 0.26, 4.9, 5.1, -0.1)
    blocks, scales = quantize_mxfp4(x)
    assert scales.item() == 127
    got = dequantize_mxfp4(blocks, scales, torch.float32)[:13].tolist()
    assert got == [6.0, 0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, -1.0, 0.5, 4.0, 6.0, -0.0]


def test_random_inputs_go_to_the_nearest_grid_value() -> None:
    x = torch.randn(64, 128, generator=torch.Generator().manual_seed(1)) * 0.1
    blocks, scales = quantize_mxfp4(x)
    q = dequantize_mxfp4(blocks, scales, torch.float32)
    # the grid each group was allowed: all FP4 values times its scale
    mult = torch.pow(2.0, scales.float() - 127).repeat_interleave(32, dim=-1)  # [64, 128]
    grid = torch.tensor(FP4_VALUES).view(1, 1, 16) * mult.unsqueeze(-1)
    best = (grid - x.unsqueeze(-1)).abs().amin(-1)
    assert torch.equal((q - x).abs(), best)
    # and the scale is the smallest one that fits the group max under 6
    amax = x.view(64, 4, 32).abs().amax(-1)
    multiplier = torch.pow(2.0, scales.float() - 127)
    assert bool((amax <= 6 * multiplier).all()) and bool((amax > 3 * multiplier).all())


def test_zero_group_and_exponent_extremes() -> None:
    blocks, scales = quantize_mxfp4(torch.zeros(2, 32))
    assert torch.equal(dequantize_mxfp4(blocks, scales, torch.float32), torch.zeros(2, 32))
    # the largest fp32 values still fit: 3.4e38 / 6 -> 2**126 -> biased 253
    big = torch.finfo(torch.float32).max
    blocks, scales = quantize_mxfp4(_group(big, -big))
    assert scales.item() == 253
    assert blocks[0, 0].item() == 0xE6  # +4 low, -4 high: 3.4e38 = 3.99 * 2**126
    # below the smallest scale (2**-127) everything rounds to (signed) zero instead of underflowing the exponent
    blocks, scales = quantize_mxfp4(_group(1e-40, -1e-40))
    assert scales.item() == 0
    assert dequantize_mxfp4(blocks, scales, torch.float32).abs().sum() == 0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        quantize_mxfp4(torch.zeros(4, 48))
    with pytest.raises(TypeError):
        quantize_mxfp4(torch.zeros(32, dtype=torch.int32))
    with pytest.raises(ValueError, match="NaN"):
        quantize_mxfp4(_group(float("nan")))
