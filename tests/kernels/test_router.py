"""Triton router kernel (kernels.router.router) against the torch reference router_ref.

Runs in the Triton interpreter on CPU (tests/conftest.py sets TRITON_INTERPRET=1). x, the gate weight and its bias
are views followed by NaN (an unmasked load past H or E poisons the logits), outputs start as NaN / -1.

Ties: the kernel gives ties to the lowest expert index; torch.topk on CPU does not promise any order among equal
values (it returns e.g. [22, 21, 20, 23] for 32 equal logits). So indices must equal router_ref's on rows whose top
k + 1 reference logits are distinct, and everywhere equal the "stable descending sort" oracle. bf16 logits tie often
(8-bit mantissa), hence the split; a separate case uses small-integer data where ties are the rule and every logit
is exact in both dtypes.

Tolerances: the kernel rounds the same fp32-accumulated logits to x's dtype as F.linear (one rounding; order of
accumulation differs by fp32 ulps, which did not move any bf16 rounding in these cases), so the softmax inputs are
equal and the weights agree to fp32 rounding of exp / sum (atol 1e-6).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gpt_oss_desktop.kernels import router as router_mod
from gpt_oss_desktop.kernels.router import router, router_ref

pytestmark = pytest.mark.skipif(router_mod.triton is None, reason="triton not installed")

NAN = float("nan")


def _padded(values: torch.Tensor, pad: int = 9) -> torch.Tensor:
    """``values`` as a view followed by NaN: 2-D → row stride +pad and pad rows; 1-D → pad NaN after."""
    if values.dim() == 1:
        buf = torch.full((values.shape[0] + pad,), NAN, dtype=values.dtype)
        buf[: values.shape[0]] = values
        return buf[: values.shape[0]]
    rows, cols = values.shape
    buf = torch.full((rows + pad, cols + pad), NAN, dtype=values.dtype)
    buf[:rows, :cols] = values
    return buf[:rows, :cols]


def _run(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = x.shape[0]
    weights_out = torch.full((tokens, k), NAN)
    indices_out = torch.full((tokens, k), -1, dtype=torch.int64)
    weights, indices = router(
        _padded(x), _padded(weight), _padded(bias), k, weights_out=weights_out, indices_out=indices_out
    )
    assert weights is weights_out and indices is indices_out
    assert not weights.isnan().any()
    return weights, indices


def _stable_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k indices in descending order, ties to the lowest index (the kernel's rule)."""
    return torch.sort(logits, dim=-1, descending=True, stable=True).indices[:, :k]


def _check(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, k: int) -> int:
    """Compare with router_ref; returns the number of rows with a tie among the top k + 1 logits."""
    weights, indices = _run(x, weight, bias, k)
    ref_weights, ref_indices = router_ref(x, weight, bias, k)
    logits = F.linear(x, weight, bias).float()  # what router_ref ranks (rounded to x's dtype)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(x.shape[0]), atol=1e-6)
    assert torch.equal(indices, _stable_top_k(logits, k))
    assert torch.equal(logits.gather(1, indices), logits.gather(1, ref_indices))
    top = torch.topk(logits, min(k + 1, logits.shape[1]), dim=-1).values
    tied = (top[:, 1:] == top[:, :-1]).any(dim=-1)
    assert torch.equal(indices[~tied], ref_indices[~tied])
    return int(tied.sum())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("tokens", "hidden", "experts", "k"),
    [
        (1, 96, 4, 2),  # decode, tiny expert count (BLOCK_E 16 mostly masked)
        (40, 160, 32, 4),  # gpt-oss-20b E/k; T not a multiple of the 16-token block, H not of BLOCK_K
        (17, 96, 128, 4),  # gpt-oss-120b E
        (3, 160, 128, 2),
    ],
)
def test_router_matches_reference(tokens: int, hidden: int, experts: int, k: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(tokens * 1000 + experts * 10 + k)
    x = torch.randn(tokens, hidden, generator=gen).to(dtype)
    weight = (torch.randn(experts, hidden, generator=gen) / hidden**0.5).to(dtype)
    bias = (0.5 * torch.randn(experts, generator=gen)).to(dtype)
    tied = _check(x, weight, bias, k)
    if dtype == torch.float32:
        assert tied == 0  # random fp32 logits: the index comparison with router_ref covered every row
    else:
        assert tied <= tokens // 2  # most rows compared with router_ref directly


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("experts", [32, 128])
def test_router_ties_go_to_lowest_index(experts: int, dtype: torch.dtype) -> None:
    # Entries in {-1, 0, 1}: logits are integers in [-160, 160], exact in bf16 too, with many ties.
    gen = torch.Generator().manual_seed(experts)
    x = torch.randint(-1, 2, (20, 160), generator=gen).to(dtype)
    weight = torch.randint(-1, 2, (experts, 160), generator=gen).to(dtype)
    bias = torch.randint(-2, 3, (experts,), generator=gen).to(dtype)
    assert _check(x, weight, bias, 4) > 0
    # All logits equal: the first k experts, in index order.
    _, indices = _run(torch.zeros(3, 96, dtype=dtype), weight[:, :96], torch.zeros(experts, dtype=dtype), 4)
    assert indices.tolist() == [[0, 1, 2, 3]] * 3


def test_router_fp32_bias_with_bf16_inputs() -> None:
    # The OAI Triton reference passes the router bias as fp32; it is added in fp32 before the rounding to bf16.
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 96, generator=gen).to(torch.bfloat16)
    weight = (torch.randn(32, 96, generator=gen) / 10).to(torch.bfloat16)
    bias = torch.randn(32, generator=gen).to(torch.bfloat16)
    assert torch.equal(router(x, weight, bias.float(), 4)[1], router(x, weight, bias, 4)[1])


def test_empty_batch() -> None:
    weights, indices = router(torch.empty(0, 96), torch.randn(8, 96), torch.randn(8), 2)
    assert weights.shape == indices.shape == (0, 2)


def test_rejects_bad_arguments() -> None:
    x = torch.randn(4, 96)
    weight = torch.randn(8, 96)
    bias = torch.randn(8)
    with pytest.raises(ValueError, match="k must be"):
        router(x, weight, bias, 9)
    with pytest.raises(ValueError, match="E must be"):
        router(x, torch.randn(129, 96), torch.randn(129), 4)
    with pytest.raises(TypeError):
        router(x, weight.to(torch.bfloat16), bias, 2)
    with pytest.raises(ValueError, match="weight must be"):
        router(x, torch.randn(8, 95), bias, 2)
    with pytest.raises(ValueError, match="bias must be"):
        router(x, weight, torch.randn(7), 2)
    with pytest.raises(ValueError, match="contiguous along its last dim"):
        router(torch.randn(96, 4).t(), weight, bias, 2)
    with pytest.raises(ValueError, match="indices_out"):
        router(x, weight, bias, 2, indices_out=torch.empty(4, 2, dtype=torch.int32))
