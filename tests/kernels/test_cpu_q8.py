"""The fused CPU 8-bit GEMV (kernels.cpu_q8.q8_linear) against the torch reference (kernels.q8.q8_linear_ref), and the
C++ dequantisation of the prefill path, at every instruction-set level this CPU has.

The kernel rounds the activations to int16 per group of 32 (scale = absmax / 32767) and sums each group's products
exactly in int32, so it may differ from the reference by what that rounding can move a result, bounded below from
the actual values, plus fp32 summation noise."""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.kernels import cpu_build, cpu_q8
from gpt_oss_desktop.kernels.q8 import (
    Q8Weight,
    dequantize_q8,
    q8_linear_blocked,
    q8_linear_ref,
    quantize_q8,
    quantize_rows_ref,
)

# Every test runs once per instruction-set level this CPU has (tests/kernels/conftest.py).
pytestmark = pytest.mark.usefixtures("cpu_isa")


def _case(n: int, k: int, t: int, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, Q8Weight, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    weight = quantize_q8(torch.randn(n, k, generator=gen).to(torch.bfloat16))
    x = torch.randn(t, k, generator=gen).to(dtype)
    bias = torch.randn(n, generator=gen).to(dtype)
    return x, weight, bias


def _activation_rounding_bound(x: torch.Tensor, weight: Q8Weight) -> torch.Tensor:
    """``[T, N]``: the most the int16 rounding of x can move each result. Every activation lands within half a step
    (its group's absmax / 32767) of its value, so the error is at most sum_k |W[n, k]| * step_k / 2."""
    t, k = x.shape
    step = x.float().abs().reshape(t, k // 32, 32).amax(dim=-1) / 32767  # [T, K] -> [T, G, 32] -> [T, G]
    half_steps = (step / 2).repeat_interleave(32, dim=1)  # [T, K]
    return half_steps @ dequantize_q8(weight).abs().T


def _assert_near_reference(out: torch.Tensor, x: torch.Tensor, weight: Q8Weight, bias: torch.Tensor | None) -> None:
    ref = q8_linear_ref(x, weight, bias, fp32_out=True)
    # fp32 summation noise: a few rounding errors of the magnitudes summed.
    magnitude = x.float().abs() @ dequantize_q8(weight).abs().T
    allowed = _activation_rounding_bound(x, weight) + 1e-6 * magnitude + 1e-6
    if out.dtype == torch.bfloat16:  # summed in fp32 and rounded once: plus one bf16 rounding of the result
        allowed = allowed + torch.finfo(torch.bfloat16).eps * ref.abs()
    error = (out.float() - ref).abs()
    assert (error <= allowed).all(), f"worst excess {(error - allowed).max().item():.3g}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("t", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize(("n", "k"), [(1, 32), (7, 96), (33, 64), (129, 608), (301, 2880), (64, 4096)])
def test_matches_the_reference(dtype: torch.dtype, t: int, n: int, k: int) -> None:
    x, weight, bias = _case(n, k, t, dtype, seed=n * 1000 + k + t)
    for b in (bias, None):
        out = cpu_q8.q8_linear(x, weight, b)
        assert out.shape == (t, n) and out.dtype == dtype
        _assert_near_reference(out, x, weight, b)


def test_the_activations_keep_16_bits() -> None:
    # The bound above is what int16 rounding allows; rounding the activations to 8 bits, as llama.cpp does, moves
    # the results far past it. Activations spanning many magnitudes within a group show it.
    gen = torch.Generator().manual_seed(3)
    weight = quantize_q8(torch.randn(64, 2880, generator=gen))
    x = torch.randn(2, 2880, generator=gen) * torch.logspace(-3, 0, 2880)[torch.randperm(2880, generator=gen)]
    out = cpu_q8.q8_linear(x, weight, fp32_out=True)
    _assert_near_reference(out, x, weight, None)
    coarse = x.reshape(2, 90, 32)
    step = coarse.abs().amax(dim=-1, keepdim=True) / 127
    eight_bit = (torch.round(coarse / step) * step).reshape(2, 2880)
    assert (q8_linear_ref(eight_bit, weight, fp32_out=True) - out).abs().max() > 5 * (
        _activation_rounding_bound(x, weight).max()
    )


@pytest.mark.parametrize("k", [64, 96, 2880])
def test_fp32_out_gives_the_sums_unrounded(k: int) -> None:
    x, weight, _ = _case(50, k, 3, torch.bfloat16, seed=k)
    out = cpu_q8.q8_linear(x, weight, fp32_out=True)
    assert out.dtype == torch.float32
    _assert_near_reference(out, x, weight, None)
    # Not merely bf16 values widened: the fp32 sums keep bits a bf16 result has dropped.
    assert not torch.equal(out, out.to(torch.bfloat16).float())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("k", [32, 96, 2880])
def test_each_token_gets_the_same_bits_alone_or_in_a_batch(dtype: torch.dtype, k: int) -> None:
    # Batched greedy decode = lone decode (engine/server serves up to 8 streams in one batch).
    x, weight, bias = _case(70, k, 8, dtype, seed=5 + k)
    batched = cpu_q8.q8_linear(x, weight, bias)
    for t in range(8):
        assert torch.equal(batched[t], cpu_q8.q8_linear(x[t : t + 1], weight, bias)[0])
    for size in (2, 3, 5):
        assert torch.equal(batched[:size], cpu_q8.q8_linear(x[:size], weight, bias))


def test_bias_dtypes_and_non_contiguous_x() -> None:
    x, weight, bias = _case(40, 96, 2, torch.bfloat16, seed=9)
    ref = q8_linear_ref(x, weight, bias.float(), fp32_out=True)
    for b in (bias, bias.float(), bias.double()):
        assert torch.allclose(cpu_q8.q8_linear(x, weight, b, fp32_out=True), ref, rtol=1e-2, atol=1e-2)
    strided = torch.randn(96, 2).to(torch.bfloat16).T  # a non-contiguous view is copied (it is small)
    assert torch.equal(cpu_q8.q8_linear(strided, weight), cpu_q8.q8_linear(strided.contiguous(), weight))


def test_a_zero_block_and_extreme_values() -> None:
    weight = torch.randn(8, 64).to(torch.bfloat16)
    weight[0, :32] = 0  # scale 0: the block contributes nothing, no NaN
    weight[1, 5] = 3e4  # one large value: its block's other values round to 0, it stays exact
    q = quantize_q8(weight)
    x = torch.ones(1, 64)
    out = cpu_q8.q8_linear(x, q, fp32_out=True)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, q8_linear_ref(x, q, fp32_out=True), rtol=1e-5, atol=1e-3)


def test_empty() -> None:
    weight = quantize_q8(torch.zeros(5, 32))
    assert cpu_q8.q8_linear(torch.zeros(0, 32), weight).shape == (0, 5)
    empty_rows = Q8Weight(weight.values[:0], weight.scales[:0])
    assert cpu_q8.q8_linear(torch.zeros(2, 32), empty_rows).shape == (2, 0)


@pytest.mark.parametrize(
    ("x", "bias", "match"),
    [
        (torch.zeros(1, 64, dtype=torch.float16), None, "x must be"),
        (torch.zeros(64), None, r"\[T, K=64\]"),
        (torch.zeros(1, 32), None, r"\[T, K=64\]"),
        (torch.zeros(1, 64), torch.zeros(5), "bias"),
    ],
)
def test_bad_inputs_raise_value_errors(x: torch.Tensor, bias: torch.Tensor | None, match: str) -> None:
    weight = quantize_q8(torch.zeros(4, 64))
    with pytest.raises(ValueError, match=match):
        cpu_q8.q8_linear(x, weight, bias)


def test_the_op_itself_refuses_what_would_read_out_of_bounds() -> None:
    weight = quantize_q8(torch.zeros(4, 64))
    op = cpu_build.ops().q8_linear
    with pytest.raises(RuntimeError, match="scales"):
        op(torch.zeros(1, 64), weight.values, weight.scales[:, :1].contiguous(), None, False)
    with pytest.raises(RuntimeError, match="multiple of 32"):
        op(torch.zeros(1, 48), torch.zeros(4, 48, dtype=torch.int8), torch.zeros(4, 1), None, False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_fused_quantisation_gives_the_reference_bits(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(11)
    rows = (torch.randn(300, 160, generator=gen) * torch.logspace(-6, 2, 160)).to(dtype)
    rows[0, :32] = 0  # an all-zero block
    rows[1, :32] = torch.arange(32) - 16.0  # w / scale lands on halves: ties go to even
    rows[2, 32:64] = -rows[2, 32:64].abs()  # the largest magnitude negative
    rows[3, :32] = torch.linspace(-1, 1.4, 32) * 127 * 2**-133  # a subnormal scale: the nearest one would clip
    values, scales = cpu_q8.quantize_rows(rows)
    ref_values, ref_scales = quantize_rows_ref(rows)
    assert values.dtype == torch.int8 and scales.dtype == torch.bfloat16
    assert torch.equal(values, ref_values) and torch.equal(scales, ref_scales)
    # Through quantize_q8's blocks too, and the reference is what a strided view falls back to.
    assert torch.equal(quantize_q8(rows, quantize_rows=cpu_q8.quantize_rows).values, ref_values)
    assert torch.equal(cpu_q8.quantize_rows(rows[:, :64])[0], ref_values[:, :64])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_fused_dequantisation_gives_the_reference_bits(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(12)
    rows = torch.randn(130, 96, generator=gen) * torch.logspace(-30, 30, 96)  # scales from tiny to huge
    rows[0, :32] = 0  # an all-zero block: scale 0
    weight = quantize_q8(rows)
    out = cpu_q8.dequantize(weight, dtype)
    assert out.dtype == dtype
    assert torch.equal(out, dequantize_q8(weight, dtype))
    # A dtype the C++ pass does not write takes the torch reference.
    assert torch.equal(cpu_q8.dequantize(weight, torch.float16), dequantize_q8(weight, torch.float16))


@pytest.mark.parametrize("compute", [torch.float32, torch.bfloat16])
def test_the_prefill_path_is_the_blocked_reference_with_the_fused_dequantisation(compute: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(13)
    weight = quantize_q8(torch.randn(800, 2880, generator=gen).to(torch.bfloat16))
    x = torch.randn(20, 2880, generator=gen).to(torch.bfloat16)
    bias = torch.randn(800, generator=gen).to(torch.bfloat16)
    out = cpu_q8.linear_prefill(x, weight, bias, compute_dtype=compute)
    rows = cpu_q8.PREFILL_BLOCK_BYTES // (2880 * compute.itemsize)
    assert rows < 800  # several blocks, the last one partial
    ref = q8_linear_blocked(x, weight, bias, compute_dtype=compute, block_rows=rows)
    assert torch.equal(out, ref)
    logits = cpu_q8.linear_prefill(x, weight, fp32_out=True, compute_dtype=compute)
    assert logits.dtype == torch.float32
    # bf16 compute rounds each dequantised weight once more (by at most 2^-9 of it), fp32 compute not at all.
    bound = x.float().abs() @ dequantize_q8(weight).abs().T * (2**-9 if compute == torch.bfloat16 else 2**-20) + 1e-4
    assert ((logits - q8_linear_ref(x, weight, fp32_out=True)).abs() <= bound).all()
