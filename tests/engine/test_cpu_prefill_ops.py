"""engine.ops on prefill-sized CPU inputs: the MoE MLP through the fused GEMM kernel in chunks, the dense
projections widened to fp32 for BLAS where the CPU has no bf16 dot products, and the 8-bit projections' choice
between the GEMV and dequantised blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gpt_oss_desktop.engine import ops
from gpt_oss_desktop.kernels import cpu_mxfp4, cpu_q8
from gpt_oss_desktop.kernels.moe import Mxfp4Experts, moe_ref
from gpt_oss_desktop.kernels.q8 import dequantize_q8, q8_linear_ref, quantize_q8

LIMIT, ALPHA = 7.0, 1.702


def _moe_case(tokens: int, seed: int = 0) -> tuple:
    gen = torch.Generator().manual_seed(seed)
    experts, hidden, inner, k = 8, 64, 64, 2

    def mxfp4(n: int, width: int) -> Mxfp4Experts:
        blocks = torch.randint(0, 256, (experts, n, width // 32, 16), dtype=torch.uint8, generator=gen)
        scales = torch.randint(118, 131, (experts, n, width // 32), dtype=torch.uint8, generator=gen)
        return Mxfp4Experts(blocks, scales)

    x = (3 * torch.randn(tokens, hidden, generator=gen)).bfloat16()
    top, indices = torch.topk(torch.randn(tokens, experts, generator=gen), k)
    bias1 = torch.randn(experts, 2 * inner, generator=gen).bfloat16()
    bias2 = torch.randn(experts, hidden, generator=gen).bfloat16()
    return x, torch.softmax(top, -1), indices, mxfp4(2 * inner, hidden), bias1, mxfp4(hidden, inner), bias2


@pytest.fixture
def fused_kernels() -> None:
    if not ops.cpu_fused_enabled():
        pytest.skip(f"the fused CPU kernels are not available here: {cpu_mxfp4.build_error()}")


@pytest.mark.usefixtures("fused_kernels")
def test_a_prefill_sized_moe_takes_the_gemm_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, bool]] = []
    kernel = cpu_mxfp4.moe_mxfp4

    def spy(x: torch.Tensor, *args: object, prefill: bool = False) -> torch.Tensor:
        calls.append((x.shape[0], prefill))
        return kernel(x, *args, prefill=prefill)  # type: ignore[arg-type]

    monkeypatch.setattr(cpu_mxfp4, "moe_mxfp4", spy)
    tokens = ops.MOE_FUSED_MAX_TOKENS + 9
    case = _moe_case(tokens)
    out = ops.cpu_moe(*case, LIMIT, ALPHA)
    ops.cpu_moe(*_moe_case(3), LIMIT, ALPHA)
    assert calls == [(tokens, True), (3, False)]
    torch.testing.assert_close(out, moe_ref(*case, LIMIT, ALPHA), atol=0.05, rtol=0.02)


@pytest.mark.usefixtures("fused_kernels")
def test_prefill_chunks_do_not_change_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each token's sums run in one order whatever tokens share its call, so a long prompt cut into chunks gives the
    # bits it gives in one call.
    case = _moe_case(70, seed=1)
    whole = ops.cpu_moe(*case, LIMIT, ALPHA)
    monkeypatch.setattr(ops, "MOE_PREFILL_CHUNK_TOKENS", 17)
    assert torch.equal(ops.cpu_moe(*case, LIMIT, ALPHA), whole)


@pytest.mark.parametrize("native", [False, True])
def test_prefill_projections_match_the_fp32_product(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(ops, "_bf16_matmul_is_native", lambda: native)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(ops.BF16_FUSED_MAX_TOKENS + 40, 96, generator=gen).bfloat16()
    weight = torch.randn(80, 96, generator=gen).bfloat16()
    bias = torch.randn(80, generator=gen).bfloat16()
    out = ops.cpu_linear(x, weight, bias)
    assert out.dtype == torch.bfloat16
    widened = F.linear(x.float(), weight.float(), bias.float()).bfloat16()
    if native:  # bf16 BLAS: the same products and fp32 sums in its own order, rounded once
        torch.testing.assert_close(out, widened, atol=0.0, rtol=2**-7)
    else:
        assert torch.equal(out, widened)
    logits = ops.cpu_unembed(x, weight)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, F.linear(x.float(), weight.float()), atol=0.0, rtol=2**-7)


@pytest.mark.usefixtures("fused_kernels")
@pytest.mark.parametrize("native", [False, True])
def test_8_bit_projections_take_the_gemv_or_the_dequantised_blocks(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    # Up to Q8_FUSED_MAX_TOKENS, and at every size where BLAS would multiply in fp32, the 8-bit GEMV (its int16
    # activations make its bits differ from any BLAS product); past it with bf16 dot products, C++-dequantised blocks
    # of rows and bf16 BLAS.
    monkeypatch.setattr(ops, "_bf16_matmul_is_native", lambda: native)
    gen = torch.Generator().manual_seed(3)
    weight = quantize_q8(torch.randn(80, 96, generator=gen).bfloat16())
    bias = torch.randn(80, generator=gen).bfloat16()
    for tokens in (1, ops.Q8_FUSED_MAX_TOKENS, ops.Q8_FUSED_MAX_TOKENS + 1, 70):
        x = torch.randn(tokens, 96, generator=gen).bfloat16()
        out = ops.cpu_q8_linear(x, weight, bias)
        gemv = cpu_q8.q8_linear(x, weight, bias)
        if tokens <= ops.Q8_FUSED_MAX_TOKENS or not native:
            assert torch.equal(out, gemv)
        else:
            assert torch.equal(out, cpu_q8.linear_prefill(x, weight, bias))
            assert not torch.equal(out, gemv)
        # Within what the weights' bf16 rounding (prefill blocks) or the activations' int16 rounding (GEMV) moves a
        # sum, plus the result's own rounding to bf16.
        exact = q8_linear_ref(x, weight, bias, fp32_out=True)
        bound = x.float().abs() @ dequantize_q8(weight).abs().T * 2**-9 + exact.abs() * 2**-8 + 1e-4
        assert ((out.float() - exact).abs() <= bound).all()
