"""The fused CPU MoE (kernels.cpu_mxfp4.moe_mxfp4), decode and prefill, against the torch reference moe_ref, and the
decode kernel's batch independence.

Where the level's decode rounds bf16 activations to int16 per group of 32 (cpu_mxfp4.moe_decode_rounds_activations),
the reference rounds them the same way before each projection (_int16_expert_linear), so the tolerances stay those of
summation order; test_int16_rounding_is_the_only_difference checks that this rounding is all that changed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gpt_oss_desktop.kernels import cpu_mxfp4
from gpt_oss_desktop.kernels.moe import ExpertWeights, Mxfp4Experts, moe_ref

# Every test runs once per instruction-set level this CPU has (tests/kernels/conftest.py).
pytestmark = pytest.mark.usefixtures("cpu_isa")

LIMIT, ALPHA = 7.0, 1.702


def _experts(e: int, n: int, k: int, gen: torch.Generator) -> Mxfp4Experts:
    blocks = torch.randint(0, 256, (e, n, k // 32, 16), dtype=torch.uint8, generator=gen)
    scales = torch.randint(118, 131, (e, n, k // 32), dtype=torch.uint8, generator=gen)
    return Mxfp4Experts(blocks, scales)


def _case(t: int, dtype: torch.dtype, seed: int, e: int = 8, h: int = 128, i: int = 96, k: int = 4) -> tuple:
    gen = torch.Generator().manual_seed(seed)
    mlp1, mlp2 = _experts(e, 2 * i, h, gen), _experts(e, h, i, gen)
    bias1 = torch.randn(e, 2 * i, generator=gen).to(dtype)
    bias2 = torch.randn(e, h, generator=gen).to(dtype)
    x = (3 * torch.randn(t, h, generator=gen)).to(dtype)  # wide enough that the SwiGLU clamps bite
    top, indices = torch.topk(torch.randn(t, e, generator=gen), k)
    return x, torch.softmax(top, dim=-1), indices, mlp1, bias1, mlp2, bias2


def _fused(x, weights, indices, mlp1, bias1, mlp2, bias2, prefill=False) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return cpu_mxfp4.moe_mxfp4(
        x,
        weights,
        indices,
        (mlp1.blocks, mlp1.scales),
        bias1,
        (mlp2.blocks, mlp2.scales),
        bias2,
        LIMIT,
        ALPHA,
        prefill=prefill,
    )


def _int16_groups(x: torch.Tensor) -> torch.Tensor:
    """``x [n, K]`` as the fp32 values of its int16 rounding per group of 32: q = round(x * 32767 / absmax), times
    absmax / 32767 (an all-zero group stays zero), the kernel's own arithmetic."""
    n, k = x.shape
    groups = x.float().reshape(n, k // 32, 32)  # [n, K] -> [n, G, 32]
    amax = groups.abs().amax(dim=-1, keepdim=True)
    inv = torch.where(amax > 0, 32767 / amax, torch.zeros_like(amax))
    q = torch.round(groups * inv).clamp(-32767, 32767)
    return (q * (amax / 32767)).reshape(n, k)


def _int16_expert_linear(x: torch.Tensor, experts: ExpertWeights, index: int, bias: torch.Tensor) -> torch.Tensor:
    """The reference projection of an int16-rounding decode: fp32 sums of the rounded activations, rounded once to
    x's dtype like the kernel's."""
    return F.linear(_int16_groups(x), experts.expert(index, torch.float32), bias.float()).to(x.dtype)


def _reference(case: tuple, prefill: bool) -> torch.Tensor:
    """moe_ref, with the level's activation rounding where its decode has one."""
    if not prefill and cpu_mxfp4.moe_decode_rounds_activations(case[0].dtype):
        return moe_ref(*case, LIMIT, ALPHA, expert_linear=_int16_expert_linear)
    return moe_ref(*case, LIMIT, ALPHA)


# Decode sizes through the row-exact GEMVs; prefill sizes through the blocked GEMM, with token counts per expert that
# leave every remainder of its 6-token micro-tiles and, at h=320 (10 groups), a depth block shorter than the others.
CASES = [(1, False, 128), (3, False, 128), (7, False, 128), (7, True, 128), (40, True, 128), (97, True, 320)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("t", "prefill", "h"), CASES)
def test_matches_reference(dtype: torch.dtype, t: int, prefill: bool, h: int) -> None:
    case = _case(t, dtype, seed=t, h=h)
    out = _fused(*case, prefill=prefill)
    ref = _reference(case, prefill)
    assert out.dtype == dtype and out.shape == ref.shape
    if dtype == torch.float32:
        rel = ((out - ref).abs().max() / ref.abs().max()).item()
        assert rel < 1e-5
    else:
        # Same rounding points as the reference; only fp32 summation order and exp() may differ, by one bf16 ulp.
        ulp = torch.finfo(torch.bfloat16).eps * ref.float().abs().clamp_min(1e-30)
        assert ((out.float() - ref.float()).abs() <= ulp + 1e-3 * ref.float().abs().max()).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_each_token_is_independent_of_the_batch(dtype: torch.dtype) -> None:
    # Tokens that share experts are tiled together (4, 2, 1); a token's bits must not depend on its tile.
    x, weights, indices, *rest = _case(7, dtype, seed=11, e=4, k=2)
    batched = _fused(x, weights, indices, *rest)
    for row in range(7):
        alone = _fused(x[row : row + 1], weights[row : row + 1], indices[row : row + 1], *rest)
        assert torch.equal(alone[0], batched[row]), row


@pytest.mark.parametrize("prefill", [False, True])
def test_odd_group_count_and_empty_batch(prefill: bool) -> None:
    # 3 and 5 groups of 32.
    x, weights, indices, *rest = _case(2, torch.bfloat16, seed=5, h=96, i=160)
    torch.testing.assert_close(
        _fused(x, weights, indices, *rest, prefill=prefill), _reference((x, weights, indices, *rest), prefill)
    )
    assert _fused(x[:0], weights[:0], indices[:0], *rest, prefill=prefill).shape == (0, 96)


def test_int16_rounding_is_the_only_difference() -> None:
    # bf16 outputs equal the int16 reference's (summation order could tip a rare rounding), while against the plain
    # reference the int16 rounding tips 1.5-11 % of them: a kernel that kept the activations unrounded, or rounded
    # them to 8 bits, fails one side.
    if not cpu_mxfp4.moe_decode_rounds_activations(torch.bfloat16):
        pytest.skip(f"the {cpu_mxfp4.isa()} MoE decode multiplies unrounded activations")
    differ_int16 = differ_plain = total = 0
    for seed, tokens in ((21, 3), (1, 1), (7, 7), (9, 8)):
        case = _case(tokens, torch.bfloat16, seed=seed)
        out = _fused(*case)
        differ_int16 += int((out != _reference(case, prefill=False)).sum())
        differ_plain += int((out != moe_ref(*case, LIMIT, ALPHA)).sum())
        total += out.numel()
    assert differ_int16 <= 0.005 * total < 0.02 * total < differ_plain


def test_rejects_bad_inputs() -> None:
    x, weights, indices, mlp1, bias1, mlp2, bias2 = _case(2, torch.float32, seed=6)
    with pytest.raises(RuntimeError, match="out of range"):
        _fused(x, weights, indices + 100, mlp1, bias1, mlp2, bias2)
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        _fused(x.half(), weights, indices, mlp1, bias1, mlp2, bias2)
    with pytest.raises(RuntimeError, match="expert shapes"):
        _fused(x[:, :64], weights, indices, mlp1, bias1, mlp2, bias2)
