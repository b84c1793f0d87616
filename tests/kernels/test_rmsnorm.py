"""Triton RMSNorm kernels (kernels.rmsnorm.rmsnorm / add_rmsnorm) against the torch references.

Runs in the Triton interpreter on CPU (tests/conftest.py sets TRITON_INTERPRET=1). Inputs are row views of wider
NaN-filled buffers (an unmasked load past H poisons the whole row's sum of squares); outputs are NaN-filled views of
buffers whose padding holds a sentinel, so an element never written stays NaN and a write past H shows up as a
changed sentinel.

Tolerances: kernel and reference compute the same fp32 expression; only the order of the sum of squares differs
(a few fp32 ulps, atol/rtol 1e-5 for fp32). Both round the fp32 result to bf16 to nearest even, so bf16 outputs are
bitwise equal except where the two fp32 values straddle a rounding boundary: at most one bf16 ulp (<= 2^-7 |y|),
and rarely (checked: < 1 % of elements differ at all). The residual sum is a single correctly rounded add on both
sides, so it must be bitwise equal.
"""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.kernels import rmsnorm as rms_mod
from gpt_oss_desktop.kernels.rmsnorm import add_rmsnorm, add_rmsnorm_ref, rmsnorm, rmsnorm_ref

pytestmark = pytest.mark.skipif(rms_mod.triton is None, reason="triton not installed")

EPS = 1e-5
NAN = float("nan")
SENTINEL = 12345.0
SHAPES = [(1, 96), (7, 160), (5, 2880)]  # decode-like row, H not a multiple of the block, the 2880-wide model row


def _view(values: torch.Tensor, pad: int = 24, fill: float = NAN) -> torch.Tensor:
    """``values`` [T, H] copied into a view whose rows are followed by ``pad`` ``fill`` elements (row stride H+pad)."""
    rows, hidden = values.shape
    buf = torch.full((rows + 1, hidden + pad), fill, dtype=values.dtype)
    buf[:rows, :hidden] = values
    return buf[:rows, :hidden]


def _poisoned_out(rows: int, hidden: int, dtype: torch.dtype) -> torch.Tensor:
    """NaN-filled output view (row stride H+8) with a sentinel in the padding."""
    out = _view(torch.full((rows, hidden), NAN, dtype=dtype), pad=8, fill=SENTINEL)
    return out


def _padding_intact(out: torch.Tensor) -> bool:
    """Sentinel padding after each row of ``out`` (see _poisoned_out) untouched."""
    rows, hidden = out.shape
    flat = out.as_strided((rows, out.stride(0)), (out.stride(0), 1))
    return bool((flat[:, hidden:] == SENTINEL).all())


def _inputs(rows: int, hidden: int, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = (3.0 * torch.randn(rows, hidden, generator=gen)).to(dtype)
    delta = torch.randn(rows, hidden, generator=gen).to(dtype)
    scale = 1.0 + 0.5 * torch.randn(hidden, generator=gen)  # fp32, like the HF/OAI parameters
    return x, delta, scale


def _assert_normed_close(got: torch.Tensor, want: torch.Tensor) -> None:
    assert not got.isnan().any()
    if got.dtype == torch.float32:
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    else:
        torch.testing.assert_close(got.float(), want.float(), atol=1e-6, rtol=2.0**-7)
        assert (got != want).float().mean().item() < 0.01


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("rows", "hidden"), SHAPES)
def test_rmsnorm_matches_reference(rows: int, hidden: int, dtype: torch.dtype) -> None:
    x, _, scale = _inputs(rows, hidden, dtype, seed=rows * 1000 + hidden)
    x_view = _view(x)
    out = _poisoned_out(rows, hidden, dtype)
    got = rmsnorm(x_view, scale, EPS, out=out)
    assert got is out
    assert _padding_intact(out)
    _assert_normed_close(got, rmsnorm_ref(x, scale, EPS))


def test_rmsnorm_bf16_scale_and_fresh_output() -> None:
    x, _, scale = _inputs(3, 160, torch.bfloat16, seed=1)
    scale = scale.to(torch.bfloat16)  # checkpoint dtype
    got = rmsnorm(x, scale, EPS)
    assert got.dtype == torch.bfloat16 and got.is_contiguous()
    _assert_normed_close(got, rmsnorm_ref(x, scale, EPS))


def test_rmsnorm_in_place() -> None:
    x, _, scale = _inputs(4, 96, torch.bfloat16, seed=2)
    want = rmsnorm_ref(x, scale, EPS)
    buf = _view(x.clone())
    got = rmsnorm(buf, scale, EPS, out=buf)
    _assert_normed_close(got, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("rows", "hidden"), SHAPES)
def test_add_rmsnorm_matches_reference(rows: int, hidden: int, dtype: torch.dtype) -> None:
    x, delta, scale = _inputs(rows, hidden, dtype, seed=rows * 1000 + hidden + 7)
    residual_out = _poisoned_out(rows, hidden, dtype)
    out = _poisoned_out(rows, hidden, dtype)
    residual, normed = add_rmsnorm(_view(x), _view(delta, pad=40), scale, EPS, residual_out=residual_out, out=out)
    assert residual is residual_out and normed is out
    assert _padding_intact(residual_out) and _padding_intact(out)
    want_residual, want_normed = add_rmsnorm_ref(x, delta, scale, EPS)
    assert torch.equal(residual, want_residual)  # one correctly rounded add on both sides
    _assert_normed_close(normed, want_normed)


def test_add_rmsnorm_ref_is_the_unfused_sequence() -> None:
    x, delta, scale = _inputs(3, 96, torch.bfloat16, seed=3)
    residual, normed = add_rmsnorm_ref(x, delta, scale, EPS)
    x = x + delta
    assert torch.equal(residual, x)
    assert torch.equal(normed, rmsnorm_ref(x, scale, EPS))


def test_add_rmsnorm_in_place_residual() -> None:
    x, delta, scale = _inputs(6, 160, torch.bfloat16, seed=4)
    want_residual, want_normed = add_rmsnorm_ref(x, delta, scale, EPS)
    stream = _view(x.clone())
    residual, normed = add_rmsnorm(stream, delta, scale, EPS, residual_out=stream)
    assert residual is stream
    assert torch.equal(stream, want_residual)
    _assert_normed_close(normed, want_normed)


def test_empty_batch() -> None:
    x = torch.empty(0, 96)
    assert rmsnorm(x, torch.ones(96)).shape == (0, 96)
    residual, normed = add_rmsnorm(x, x, torch.ones(96))
    assert residual.shape == normed.shape == (0, 96)


def test_rejects_bad_arguments() -> None:
    x = torch.randn(4, 96)
    scale = torch.ones(96)
    with pytest.raises(ValueError, match="x must be"):
        rmsnorm(x[None], scale)
    with pytest.raises(ValueError, match="scale"):
        rmsnorm(x, torch.ones(95))
    with pytest.raises(ValueError, match="contiguous along its last dim"):
        rmsnorm(torch.randn(96, 4).t(), scale)
    with pytest.raises(TypeError):
        rmsnorm(x.double(), scale)
    with pytest.raises(ValueError, match="delta"):
        add_rmsnorm(x, x.to(torch.bfloat16), scale)
    with pytest.raises(ValueError, match="out"):
        rmsnorm(x, scale, out=torch.empty(4, 96, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="different buffers"):
        buf = torch.empty(4, 96)
        add_rmsnorm(x, x, scale, residual_out=buf, out=buf)
