"""The fused CPU bf16 GEMV (kernels.cpu_mxfp4.bf16_linear) against F.linear computed in fp32."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gpt_oss_desktop.kernels import cpu_mxfp4

# Every test runs once per instruction-set level this CPU has (tests/kernels/conftest.py).
pytestmark = pytest.mark.usefixtures("cpu_isa")


def _reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return F.linear(x.float(), weight.float(), None if bias is None else bias.float())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("t", [1, 2, 3, 4, 7])
@pytest.mark.parametrize(("n", "k"), [(1, 1), (7, 96), (33, 32), (13, 45), (129, 577), (301, 2880), (64, 4096)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_fp32_linear(dtype: torch.dtype, t: int, n: int, k: int, with_bias: bool) -> None:
    gen = torch.Generator().manual_seed(n * 1000 + k + t)
    weight = torch.randn(n, k, generator=gen).to(torch.bfloat16)
    x = torch.randn(t, k, generator=gen).to(dtype)
    bias = torch.randn(n, generator=gen).to(dtype) if with_bias else None

    out = cpu_mxfp4.bf16_linear(x, weight, bias)
    ref = _reference(x, weight, bias)

    assert out.shape == (t, n)
    assert out.dtype == dtype
    scale = ref.abs().max().clamp_min(1.0)
    if dtype == torch.float32:
        # Same inputs and fp32 accumulation in another order: only summation rounding differs.
        assert ((out - ref).abs().max() / scale).item() < 1e-5
    else:
        # Accumulated in fp32 and rounded once: within one bf16 ulp of the fp32 reference.
        ulp = torch.finfo(torch.bfloat16).eps * ref.abs()
        assert ((out.float() - ref).abs() <= ulp + 1e-5 * scale).all()


def test_fp32_bias_with_bf16_x_and_other_bias_dtype() -> None:
    gen = torch.Generator().manual_seed(3)
    weight = torch.randn(50, 64, generator=gen).to(torch.bfloat16)
    x = torch.randn(2, 64, generator=gen).to(torch.bfloat16)
    bias = torch.randn(50, generator=gen)
    ref = _reference(x, weight, bias)
    for b in (bias, bias.double()):
        out = cpu_mxfp4.bf16_linear(x, weight, b)
        assert out.dtype == torch.bfloat16
        assert torch.allclose(out.float(), ref, rtol=1e-2, atol=1e-2)


def test_non_contiguous_x_and_row_slice_of_weight() -> None:
    gen = torch.Generator().manual_seed(4)
    stacked = torch.randn(3, 40, 96, generator=gen).to(torch.bfloat16)
    x = torch.randn(96, 2, generator=gen).T  # non-contiguous view: copied, it is small
    out = cpu_mxfp4.bf16_linear(x, stacked[1])
    assert torch.allclose(out, _reference(x, stacked[1], None), rtol=1e-5, atol=1e-4)


def test_empty() -> None:
    weight = torch.zeros(5, 32, dtype=torch.bfloat16)
    assert cpu_mxfp4.bf16_linear(torch.zeros(0, 32), weight).shape == (0, 5)
    assert cpu_mxfp4.bf16_linear(torch.zeros(2, 32), weight[:0]).shape == (2, 0)


@pytest.mark.parametrize(
    ("x", "weight", "bias", "match"),
    [
        (torch.zeros(1, 32, dtype=torch.float16), torch.zeros(4, 32, dtype=torch.bfloat16), None, "x must be"),
        (torch.zeros(1, 32), torch.zeros(4, 32), None, "weight must be bfloat16"),
        (torch.zeros(32), torch.zeros(4, 32, dtype=torch.bfloat16), None, r"\[T, K\]"),
        (torch.zeros(1, 31), torch.zeros(4, 32, dtype=torch.bfloat16), None, "K=31"),
        (torch.zeros(1, 32), torch.zeros(32, 4, dtype=torch.bfloat16).T, None, "contiguous"),
        (torch.zeros(1, 32), torch.zeros(4, 32, dtype=torch.bfloat16), torch.zeros(5), "bias"),
    ],
)
def test_rejects_bad_arguments(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cpu_mxfp4.bf16_linear(x, weight, bias)


def test_torch_ops_linear_routes_decode_sizes_to_the_fused_kernel() -> None:
    from gpt_oss_desktop.engine import ops

    gen = torch.Generator().manual_seed(5)
    weight = torch.randn(70, 96, generator=gen).to(torch.bfloat16)
    bias = torch.randn(70, generator=gen).to(torch.bfloat16)
    for t in (1, ops.BF16_FUSED_MAX_TOKENS, ops.BF16_FUSED_MAX_TOKENS + 1):
        x = torch.randn(t, 96, generator=gen).to(torch.bfloat16)
        out = ops.CPU_OPS.linear(x, weight, bias)
        assert out.dtype == torch.bfloat16 and out.shape == (t, 70)
        expected = (
            cpu_mxfp4.bf16_linear(x, weight, bias)
            if t <= ops.BF16_FUSED_MAX_TOKENS and ops.cpu_fused_enabled()
            else F.linear(x, weight, bias)
        )
        assert torch.equal(out, expected)
    # Anything the kernel does not take (fp32 weights here) is plain F.linear.
    x32 = torch.randn(1, 96, generator=gen)
    assert torch.equal(ops.CPU_OPS.linear(x32, weight.float()), F.linear(x32, weight.float()))


def test_each_row_is_independent_of_the_batch() -> None:
    # Rows are tiled in pairs; a row's bits must not depend on whether it shares a tile (batched decode == single).
    gen = torch.Generator().manual_seed(9)
    weight = torch.randn(50, 2880, generator=gen).to(torch.bfloat16)
    x = torch.randn(3, 2880, generator=gen).to(torch.bfloat16)
    batched = cpu_mxfp4.bf16_linear(x, weight)
    for row in range(3):
        assert torch.equal(cpu_mxfp4.bf16_linear(x[row : row + 1], weight)[0], batched[row]), row


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("t", [2, 3, 4])
@pytest.mark.parametrize("k", [256, 2880, 2881])
def test_rows_equal_lone_rows_bit_for_bit(dtype: torch.dtype, t: int, k: int) -> None:
    # Small K tiles up to 4 tokens (one pass over the weight), large K tiles 2; a tail shorter than a group is
    # summed per token. Each must give a row exactly what it gets alone.
    gen = torch.Generator().manual_seed(k + t)
    weight = torch.randn(203, k, generator=gen).to(torch.bfloat16)
    x = torch.randn(t, k, generator=gen).to(dtype)
    bias = torch.randn(203, generator=gen).to(dtype)
    together = cpu_mxfp4.bf16_linear(x, weight, bias)
    for row in range(t):
        assert torch.equal(together[row : row + 1], cpu_mxfp4.bf16_linear(x[row : row + 1], weight, bias)), row


@pytest.mark.parametrize("k", [96, 256, 1000])
def test_output_columns_do_not_depend_on_row_pairing(k: int) -> None:
    # Small K takes weight rows two at a time; a row must get the same bits whether it is paired with the row before
    # it, the row after it, or computed alone (a one-row weight).
    gen = torch.Generator().manual_seed(k)
    weight = torch.randn(9, k, generator=gen).to(torch.bfloat16)
    x = torch.randn(3, k, generator=gen).to(torch.bfloat16)
    full = cpu_mxfp4.bf16_linear(x, weight, fp32_out=True)
    shifted = cpu_mxfp4.bf16_linear(x, weight[1:], fp32_out=True)  # pairs (1, 2), (3, 4), ... instead of (0, 1), ...
    assert torch.equal(full[:, 1:], shifted)
    for n in range(9):
        assert torch.equal(full[:, n : n + 1], cpu_mxfp4.bf16_linear(x, weight[n : n + 1], fp32_out=True)), n


def test_fp32_out_returns_the_unrounded_sums() -> None:
    gen = torch.Generator().manual_seed(12)
    weight = torch.randn(300, 256, generator=gen).to(torch.bfloat16)
    x = torch.randn(3, 256, generator=gen).to(torch.bfloat16)
    exact = x.double() @ weight.double().T
    out = cpu_mxfp4.bf16_linear(x, weight, fp32_out=True)
    assert out.dtype == torch.float32
    assert (out.double() - exact).abs().max() < 1e-4 * exact.abs().max()  # fp32 summation error only
    # The bf16 output is that same sum, rounded once.
    assert torch.equal(cpu_mxfp4.bf16_linear(x, weight), out.to(torch.bfloat16))
