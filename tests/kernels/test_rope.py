"""Triton RoPE kernel (kernels.rope.rope) against the torch reference rope_ref.

Runs in the Triton interpreter on CPU (tests/conftest.py sets TRITON_INTERPRET=1). x is the q or k part of a qkv
projection buffer (the model's layout: strided views, NaN after the last token), cos/sin are the real YaRN tables
with NaN after each row, and outputs start as NaN inside buffers whose padding holds a sentinel.

Tolerances: fp32 — both sides compute x1·cos − x2·sin in fp32 (atol/rtol 1e-5). bf16 — the reference rounds each
product and the sum to bf16 (three roundings), the kernel rounds the fp32 result once, so
|kernel − ref| <= 3·2^-8·(|x1·cos| + |x2·sin|) for the first half, (|x2·cos| + |x1·sin|) for the
second (u = 2^-8 per bf16 rounding, product-sized errors); and the kernel
itself must be the exact rotation of the (bf16-rounded) inputs rounded once: |kernel − exact| <= 2^-8·|exact|.
"""

from __future__ import annotations

import math

import pytest
import torch

from gpt_oss_desktop.kernels import rope as rope_mod
from gpt_oss_desktop.kernels.rope import rope, rope_cos_sin, rope_ref, yarn_inv_freq

pytestmark = pytest.mark.skipif(rope_mod.triton is None, reason="triton not installed")

NAN = float("nan")
SENTINEL = 12345.0
THETA = 150000.0
FACTOR = 32.0
CONCENTRATION = 0.1 * math.log(FACTOR) + 1.0


def _tables(positions: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """gpt-oss YaRN cos/sin [T, D/2] (fp32), each a view with NaN after every row."""
    low = head_dim / 2 * math.log(4096 / (32 * 2 * math.pi)) / math.log(THETA)
    high = head_dim / 2 * math.log(4096 / (1 * 2 * math.pi)) / math.log(THETA)
    inv_freq = yarn_inv_freq(head_dim, THETA, FACTOR, low, high)
    cos, sin = rope_cos_sin(positions, inv_freq, CONCENTRATION)
    views = []
    for table in (cos, sin):
        buf = torch.full((table.shape[0], table.shape[1] + 5), NAN)
        buf[:, : table.shape[1]] = table
        views.append(buf[:, : table.shape[1]])
    return views[0], views[1]


def _qk_views(
    tokens: int, q_heads: int, kv_heads: int, head_dim: int, dtype: torch.dtype, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """q [T, Hq, D] and k [T, Hkv, D] as views of one qkv buffer [T + 2, (Hq + 2 Hkv) D], NaN elsewhere."""
    gen = torch.Generator().manual_seed(seed)
    width = (q_heads + 2 * kv_heads) * head_dim
    buf = torch.full((tokens + 2, width), NAN, dtype=dtype)
    buf[:tokens] = torch.randn(tokens, width, generator=gen).to(dtype)
    q, k, _ = buf[:tokens].split((q_heads * head_dim, kv_heads * head_dim, kv_heads * head_dim), dim=-1)
    return q.view(tokens, q_heads, head_dim), k.view(tokens, kv_heads, head_dim)


def _poisoned_out(shape: tuple[int, int, int], dtype: torch.dtype) -> torch.Tensor:
    """NaN-filled [T, H, D] view with a sentinel head after each token's heads (token stride (H + 1) D)."""
    tokens, heads, dim = shape
    buf = torch.full((tokens, heads + 1, dim), SENTINEL, dtype=dtype)
    buf[:, :heads] = NAN
    return buf[:, :heads]


def _check(got: torch.Tensor, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    assert not got.isnan().any()
    want = rope_ref(x, cos, sin)
    if x.dtype == torch.float32:
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        return
    # Exact rotation of the rounded inputs (what the kernel computes before its single rounding), in fp64.
    c = cos.to(x.dtype).double()[:, None, :]
    s = sin.to(x.dtype).double()[:, None, :]
    x1, x2 = x.double().chunk(2, dim=-1)
    exact = torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)
    magnitude = torch.cat(((x1 * c).abs() + (x2 * s).abs(), (x2 * c).abs() + (x1 * s).abs()), dim=-1)
    u = 2.0**-8
    assert ((got.double() - exact).abs() <= u * exact.abs() + 1e-30).all()
    assert ((got.double() - want.double()).abs() <= 3 * u * magnitude + 1e-30).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("tokens", "q_heads", "kv_heads", "head_dim", "start"),
    [
        (1, 16, 8, 64, 4000),  # decode at a late position
        (6, 20, 4, 64, 0),  # heads not a multiple of the 16-head block
        (5, 8, 2, 48, 17),  # D/2 = 24 is not a power of two (masked dims)
    ],
)
def test_rope_matches_reference(
    tokens: int, q_heads: int, kv_heads: int, head_dim: int, start: int, dtype: torch.dtype
) -> None:
    q, k = _qk_views(tokens, q_heads, kv_heads, head_dim, dtype, seed=tokens * 100 + q_heads + head_dim)
    cos, sin = _tables(torch.arange(start, start + tokens), head_dim)
    for x in (q, k):
        out = _poisoned_out(tuple(x.shape), dtype)  # type: ignore[arg-type]
        got = rope(x, cos, sin, out=out)
        assert got is out
        assert (out.as_strided((tokens, out.stride(0)), (out.stride(0), 1))[:, x[0].numel() :] == SENTINEL).all()
        _check(got, x, cos, sin)


def test_rope_in_place_and_fresh_output() -> None:
    q, _ = _qk_views(4, 24, 8, 64, torch.bfloat16, seed=5)
    cos, sin = _tables(torch.tensor([3, 9, 1000, 70000]), 64)  # arbitrary positions
    x = q.clone()
    fresh = rope(q, cos, sin)
    assert fresh.is_contiguous() and fresh.dtype == torch.bfloat16
    _check(fresh, q, cos, sin)
    got = rope(q, cos, sin, out=q)  # rotates the q part of the qkv buffer in place
    assert got is q
    assert torch.equal(q, fresh)
    _check(q, x, cos, sin)


def test_rope_bf16_tables() -> None:
    # cos/sin handed over already in bf16 (e.g. a bf16 table cache) give the same result as fp32 tables.
    q, _ = _qk_views(3, 16, 8, 64, torch.bfloat16, seed=6)
    cos, sin = _tables(torch.arange(3), 64)
    assert torch.equal(rope(q, cos.to(torch.bfloat16), sin.to(torch.bfloat16)), rope(q, cos, sin))


def test_empty_batch() -> None:
    x = torch.empty(0, 4, 64)
    assert rope(x, torch.empty(0, 32), torch.empty(0, 32)).shape == (0, 4, 64)


def test_rejects_bad_arguments() -> None:
    x = torch.randn(3, 4, 64)
    cos = torch.randn(3, 32)
    with pytest.raises(ValueError, match="x must be"):
        rope(x[0], cos, cos)
    with pytest.raises(ValueError, match="cos must be"):
        rope(x, torch.randn(3, 64), cos)
    with pytest.raises(ValueError, match="sin must be"):
        rope(x, cos, torch.randn(2, 32))
    with pytest.raises(ValueError, match="even"):
        rope(torch.randn(3, 4, 63), cos, cos)
    with pytest.raises(ValueError, match="contiguous along its last dim"):
        rope(torch.randn(3, 64, 4).transpose(1, 2), cos, cos)
    with pytest.raises(TypeError):
        rope(x.double(), cos, cos)
    with pytest.raises(ValueError, match="out must be"):
        rope(x, cos, cos, out=torch.empty(3, 4, 64, dtype=torch.bfloat16))
