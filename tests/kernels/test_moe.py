"""The Triton MoE kernels (kernels.moe.moe / moe_decode / moe_prefill) against the torch reference moe_ref.

Runs in the Triton interpreter on CPU (tests/conftest.py sets TRITON_INTERPRET=1). Shapes are small but cover the
masks: H=96 and I=160 are multiples of 32 (MXFP4) but not of the prefill tiles (64) nor of the decode K step (256);
one prefill case has experts with more than BLOCK_M=64 rows (several tiles per expert) and some cases have experts
that no token selects. Out-of-bounds accesses are made visible by poisoning: x and every workspace sit inside
NaN-filled buffers, and every expert is followed by padding rows whose scale byte 255 decodes to inf.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import pytest
import torch

from gpt_oss_desktop.kernels import moe as moe_mod
from gpt_oss_desktop.kernels.moe import DenseExperts, Mxfp4Experts, moe, moe_decode, moe_prefill, moe_ref
from gpt_oss_desktop.kernels.mxfp4 import FP4_VALUES

if moe_mod._TRITON_ERROR is not None:
    pytest.skip(moe_mod._TRITON_ERROR, allow_module_level=True)

LIMIT = 7.0
ALPHA = 1.702
PAD_ROWS = 3  # poisoned rows after each expert's real rows
GUARD = 64  # poisoned elements before and after each workspace

_FP4_RMS = math.sqrt(sum(v * v for v in FP4_VALUES) / len(FP4_VALUES))


def _experts(num_experts: int, rows: int, cols: int, gen: torch.Generator) -> Mxfp4Experts:
    """Random MXFP4 experts [E, rows, cols] as views into a poisoned buffer (E stride > rows*cols/2)."""
    groups = cols // 32
    blocks = torch.full((num_experts, rows + PAD_ROWS, groups, 16), 0x77, dtype=torch.uint8)  # 6.0 | 6.0
    scales = torch.full((num_experts, rows + PAD_ROWS, groups), 255, dtype=torch.uint8)  # 2^128 -> inf in fp32
    blocks[:, :rows] = torch.randint(0, 256, (num_experts, rows, groups, 16), dtype=torch.uint8, generator=gen)
    # Scales around 1 / (rms(FP4) * sqrt(fan_in)) for O(1) outputs, jittered by +-2 binades per group so a group
    # decoded with its neighbour's scale would show.
    base = 127 + round(-math.log2(_FP4_RMS * math.sqrt(cols)))
    scales[:, :rows] = torch.randint(base - 2, base + 3, (num_experts, rows, groups), dtype=torch.uint8, generator=gen)
    return Mxfp4Experts(blocks[:, :rows], scales[:, :rows])


@dataclass
class Case:
    tokens: int
    experts: int
    top_k: int
    dead: tuple[int, ...] = ()  # experts no token selects
    favoured: tuple[int, ...] = ()  # experts most tokens select (to get > BLOCK_M rows)
    hidden: int = 96
    inter: int = 160


class Args(NamedTuple):
    """moe / moe_ref arguments after x, in order."""

    weights: torch.Tensor
    indices: torch.Tensor
    mlp1: Mxfp4Experts
    mlp1_bias: torch.Tensor
    mlp2: Mxfp4Experts
    mlp2_bias: torch.Tensor
    limit: float
    alpha: float


def _inputs(case: Case, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, Args]:
    """(x, args for moe_ref after x); x is a view with NaN after each row (row stride H + 32)."""
    gen = torch.Generator().manual_seed(seed)
    h, i, e = case.hidden, case.inter, case.experts
    x_buf = torch.full((case.tokens, h + 32), float("nan"), dtype=dtype)
    x = x_buf[:, :h]
    x.copy_(torch.randn(case.tokens, h, generator=gen))
    logits = torch.randn(case.tokens, e, generator=gen)
    logits[:, list(case.favoured)] += 10.0
    logits[:, list(case.dead)] = -1e9
    top = torch.topk(logits, case.top_k, dim=-1)
    weights = torch.softmax(top.values, dim=-1)
    mlp1 = _experts(e, 2 * i, h, gen)
    mlp2 = _experts(e, h, i, gen)
    mlp1_bias = (0.1 * torch.randn(e, 2 * i, generator=gen)).to(dtype)
    mlp2_bias = (0.1 * torch.randn(e, h, generator=gen)).to(dtype)
    return x, Args(weights, top.indices, mlp1, mlp1_bias, mlp2, mlp2_bias, LIMIT, ALPHA)


def _poisoned(shape: tuple[int, ...], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(buffer, view): a contiguous ``shape`` view with GUARD NaNs on both sides, all NaN before the call."""
    numel = math.prod(shape)
    buf = torch.full((numel + 2 * GUARD,), float("nan"), dtype=dtype)
    return buf, buf[GUARD : GUARD + numel].view(shape)


def _check_workspace(buf: torch.Tensor, name: str) -> None:
    assert buf[:GUARD].isnan().all() and buf[-GUARD:].isnan().all(), f"{name}: write outside the workspace"
    assert not buf[GUARD:-GUARD].isnan().any(), f"{name}: not fully written, or read poison"


def _assert_matches(out: torch.Tensor, x: torch.Tensor, args: Args) -> None:
    ref = moe_ref(x, *args)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert not out.isnan().any()
    if x.dtype == torch.float32:
        # Same exactly-decoded weights and fp32 math; only the summation order differs (K <= 160 terms).
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
        return
    # bf16: moe_ref rounds h = mlp1(x) to bf16 before the SwiGLU, then a, each expert's output and the final sum
    # (4 roundings of 2^-9 relative each); the kernels keep h and the per-expert outputs in fp32 and round only a and
    # the result. Both are compared with the fp32 truth (same bf16 inputs, everything in fp32): the kernels must be
    # within a few bf16 ulps of it (measured ~1 ulp of the output scale) and no worse than the reference itself.
    truth = moe_ref(x.float(), *args._replace(mlp1_bias=args.mlp1_bias.float(), mlp2_bias=args.mlp2_bias.float()))
    scale = truth.abs().max().item()
    eps = torch.finfo(torch.bfloat16).eps  # 2^-7 = 2 ulp at 1.0
    err_kernel = (out.float() - truth).abs().max().item()
    err_ref = (ref.float() - truth).abs().max().item()
    assert err_kernel <= 2 * eps * scale, (err_kernel, scale)
    assert err_kernel <= max(err_ref, eps * scale), (err_kernel, err_ref)


Form = Callable[..., torch.Tensor]

CASES = {
    "T1-E4-k2": Case(tokens=1, experts=4, top_k=2),
    "T3-E8-k4-dead": Case(tokens=3, experts=8, top_k=4, dead=(2, 6)),
    "T40-E8-k4-dead": Case(tokens=40, experts=8, top_k=4, dead=(0, 5)),
    "T40-E6-k3": Case(tokens=40, experts=6, top_k=3),
    "T80-E4-k2-multitile": Case(tokens=80, experts=4, top_k=2, dead=(3,), favoured=(0, 1)),
}
# Each form on the cases it is meant for, plus T=3 as a grouped GEMM (prefill tiles mostly empty). Decode on T=40 is
# left out: ~30 s in the interpreter (1920 programs), for no path the T=3 case does not already take.
FORM_CASES = [
    ("decode", "T1-E4-k2"),
    ("decode", "T3-E8-k4-dead"),
    ("prefill", "T3-E8-k4-dead"),
    ("prefill", "T40-E8-k4-dead"),
    ("prefill", "T40-E6-k3"),
    ("prefill", "T80-E4-k2-multitile"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(("form_name", "case_name"), FORM_CASES)
def test_form_matches_reference(form_name: str, case_name: str, dtype: torch.dtype) -> None:
    case = CASES[case_name]
    x, args = _inputs(case, dtype, seed=zlib.crc32(f"{form_name}/{case_name}".encode()))
    pairs = case.tokens * case.top_k
    act_buf, act = _poisoned((pairs, case.inter), dtype)
    out_buf, pair_out = _poisoned((pairs, case.hidden), torch.float32)
    form: Form = moe_decode if form_name == "decode" else moe_prefill
    out = form(x, *args, act=act, pair_out=pair_out)
    _check_workspace(act_buf, "act")
    _check_workspace(out_buf, "pair_out")
    _assert_matches(out, x, args)


@pytest.mark.parametrize(("case_name", "expected"), [("T1-E4-k2", "decode"), ("T40-E8-k4-dead", "prefill")])
def test_moe_dispatches_by_token_count(case_name: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[case_name]
    x, args = _inputs(case, torch.float32, seed=7)
    called: list[str] = []
    for name in ("decode", "prefill"):
        real = getattr(moe_mod, f"moe_{name}")

        def spy(*a: object, _real: Form = real, _name: str = name, **kw: object) -> torch.Tensor:
            called.append(_name)
            return _real(*a, **kw)

        monkeypatch.setattr(moe_mod, f"moe_{name}", spy)
    out = moe(x, *args)
    assert called == [expected]
    _assert_matches(out, x, args)


def test_dense_experts_fall_back_to_reference() -> None:
    gen = torch.Generator().manual_seed(3)
    x, args = _inputs(Case(tokens=3, experts=4, top_k=2), torch.float32, seed=3)
    dense1 = DenseExperts(torch.randn(4, 320, 96, generator=gen) / 10)
    dense2 = DenseExperts(torch.randn(4, 96, 160, generator=gen) / 13)
    a = args
    out = moe(x, a.weights, a.indices, dense1, a.mlp1_bias, dense2, a.mlp2_bias, a.limit, a.alpha)
    assert torch.equal(
        out, moe_ref(x, a.weights, a.indices, dense1, a.mlp1_bias, dense2, a.mlp2_bias, a.limit, a.alpha)
    )


def test_rejects_bad_inputs() -> None:
    x, args = _inputs(Case(tokens=2, experts=4, top_k=2), torch.float32, seed=5)
    weights, indices, mlp1, b1, mlp2, b2, limit, alpha = args
    assert isinstance(mlp1, Mxfp4Experts)
    # Each expert's rows must be contiguous (here: experts interleaved row by row), since copying would duplicate
    # the layer's experts.
    strided = Mxfp4Experts(
        mlp1.blocks.transpose(0, 1).contiguous().transpose(0, 1),
        mlp1.scales.transpose(0, 1).contiguous().transpose(0, 1),
    )
    with pytest.raises(ValueError, match="contiguous"):
        moe(x, weights, indices, strided, b1, mlp2, b2, limit, alpha)
    with pytest.raises(ValueError, match="mlp1_bias"):
        moe(x, weights, indices, mlp1, b1[:, :-2], mlp2, b2, limit, alpha)
    with pytest.raises(TypeError, match="expert_indices"):
        moe(x, weights, indices.float(), mlp1, b1, mlp2, b2, limit, alpha)
    with pytest.raises(ValueError, match=r"mlp2\.blocks"):
        moe(x, weights, indices, mlp1, b1, mlp1, b2, limit, alpha)
    with pytest.raises(ValueError, match="workspace"):
        moe_decode(x, *args, act=torch.empty(4, 10))
