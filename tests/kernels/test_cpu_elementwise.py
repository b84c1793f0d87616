"""The fused CPU RMSNorm / RoPE (kernels.cpu_elementwise) against the torch references they replace at decode."""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.kernels import cpu_elementwise
from gpt_oss_desktop.kernels.rmsnorm import add_rmsnorm_ref, rmsnorm_ref
from gpt_oss_desktop.kernels.rope import rope_cos_sin, rope_ref, yarn_inv_freq

# Every test runs once per instruction-set level this CPU has (tests/kernels/conftest.py).
pytestmark = pytest.mark.usefixtures("cpu_isa")

BF16_ULP = torch.finfo(torch.bfloat16).eps


def _close(out: torch.Tensor, ref: torch.Tensor) -> None:
    assert out.dtype == ref.dtype and out.shape == ref.shape
    if ref.dtype == torch.float32:
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    else:
        # Same rounding points; only the fp32 mean-of-squares order differs, so at most one bf16 ulp apart.
        diff = (out.float() - ref.float()).abs()
        assert (diff <= BF16_ULP * ref.float().abs() + 1e-30).all()
        assert (out == ref).float().mean() > 0.99


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 2880), (3, 256), (5, 37), (2, 4, 96)])
def test_rmsnorm_and_add_rmsnorm_match_reference(dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(sum(shape))
    x = (4 * torch.randn(shape, generator=gen)).to(dtype)
    delta = torch.randn(shape, generator=gen).to(dtype)
    scale = torch.rand(shape[-1], generator=gen) + 0.5
    _close(cpu_elementwise.rmsnorm(x, scale, 1e-5), rmsnorm_ref(x, scale, 1e-5))
    total, normed = cpu_elementwise.add_rmsnorm(x, delta, scale, 1e-5)
    ref_total, ref_normed = add_rmsnorm_ref(x, delta, scale, 1e-5)
    assert torch.equal(total, ref_total)  # one rounded add: exact
    _close(normed, ref_normed)


def test_add_rmsnorm_rejects_mismatched_delta() -> None:
    x = torch.randn(2, 8)
    with pytest.raises(ValueError, match="does not match"):
        cpu_elementwise.add_rmsnorm(x, torch.randn(2, 9), torch.ones(8))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("tokens", "heads", "head_dim"), [(1, 64, 64), (3, 8, 64), (5, 2, 32), (2, 3, 6)])
def test_rope_matches_reference(dtype: torch.dtype, tokens: int, heads: int, head_dim: int) -> None:
    gen = torch.Generator().manual_seed(tokens * heads + head_dim)
    x = (3 * torch.randn(tokens, heads, head_dim, generator=gen)).to(dtype)
    inv_freq, concentration = yarn_inv_freq(head_dim, 150000.0, 32.0, 8.0, 32.0), 1.35
    positions = torch.tensor([0, 5, 127, 128, 4000][:tokens])
    cos, sin = rope_cos_sin(positions, inv_freq, concentration)
    out = cpu_elementwise.rope(x, cos, sin)
    ref = rope_ref(x, cos, sin)
    if dtype == torch.bfloat16:
        assert torch.equal(out, ref)  # every product and sum rounded where the reference rounds it
    else:
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)


def test_rope_rejects_bad_cos_shape() -> None:
    with pytest.raises(RuntimeError, match="cos and sin"):
        cpu_elementwise.rope(torch.randn(2, 3, 8), torch.randn(2, 3), torch.randn(2, 3))


def test_torch_ops_route_norms_and_rope_to_the_fused_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpt_oss_desktop.engine import ops

    gen = torch.Generator().manual_seed(21)
    x = torch.randn(2, 64, generator=gen).to(torch.bfloat16)
    delta = torch.randn(2, 64, generator=gen).to(torch.bfloat16)
    scale = torch.rand(64, generator=gen) + 0.5
    q = torch.randn(2, 4, 16, generator=gen).to(torch.bfloat16)
    cos, sin = torch.rand(2, 8, generator=gen), torch.rand(2, 8, generator=gen)
    assert torch.equal(ops.CPU_OPS.rmsnorm(x, scale), cpu_elementwise.rmsnorm(x, scale))
    routed, fused = ops.CPU_OPS.add_rmsnorm(x, delta, scale), cpu_elementwise.add_rmsnorm(x, delta, scale)
    assert torch.equal(routed[0], fused[0]) and torch.equal(routed[1], fused[1])
    assert torch.equal(ops.CPU_OPS.rope(q, cos, sin), cpu_elementwise.rope(q, cos, sin))
    # With the fused kernels switched off the same ops are the torch references.
    monkeypatch.setenv(ops.CPU_FUSED_ENV, "0")
    assert torch.equal(ops.CPU_OPS.rmsnorm(x, scale), rmsnorm_ref(x, scale))
    assert torch.equal(ops.CPU_OPS.add_rmsnorm(x, delta, scale)[1], add_rmsnorm_ref(x, delta, scale)[1])
    assert torch.equal(ops.CPU_OPS.rope(q, cos, sin), rope_ref(q, cos, sin))
