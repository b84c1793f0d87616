"""The flash-style CPU prefill attention (kernels.cpu_mxfp4.attention_prefill) against the torch reference
attention_ref: full and sliding windows, key histories before the chunk, empty slots, unsorted keys, sinks."""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.kernels import cpu_mxfp4
from gpt_oss_desktop.kernels.attention import attention_ref

# Every test runs once per instruction-set level this CPU has (tests/kernels/conftest.py).
pytestmark = pytest.mark.usefixtures("cpu_isa")


def _case(
    queries: int, history: int, heads: tuple[int, int, int], dtype: torch.dtype, seed: int, scale: float = 1.0
) -> tuple[torch.Tensor, ...]:
    """A chunk of ``queries`` new tokens after ``history`` cached ones: keys are the history, then the chunk."""
    hq, hkv, d = heads
    gen = torch.Generator().manual_seed(seed)
    keys = history + queries
    q = (scale * torch.randn(queries, hq, d, generator=gen)).to(dtype)
    k = (scale * torch.randn(keys, hkv, d, generator=gen)).to(dtype)
    v = torch.randn(keys, hkv, d, generator=gen).to(dtype)
    sinks = torch.randn(hq, generator=gen)
    q_pos = torch.arange(history, keys)
    k_pos = torch.arange(keys)
    return q, k, v, sinks, q_pos, k_pos


def _check(out: torch.Tensor, ref: torch.Tensor, fp32_atol: float = 1e-6) -> None:
    assert out.dtype == ref.dtype and out.shape == ref.shape
    if ref.dtype == torch.float32:
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=fp32_atol)
    else:  # fp32 inside, rounded once to bf16: at most one bf16 step apart where the fp32 results straddle a rounding
        torch.testing.assert_close(out.float(), ref.float(), rtol=2**-7, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("queries", "history", "window"),
    [(1, 0, 0), (5, 0, 0), (70, 0, 0), (70, 0, 16), (33, 40, 0), (33, 40, 24), (100, 3, 128)],
)
def test_matches_reference(dtype: torch.dtype, queries: int, history: int, window: int) -> None:
    case = _case(queries, history, (8, 2, 64), dtype, seed=queries + history + window)
    ref = attention_ref(*case, window, 0.125)
    _check(cpu_mxfp4.attention_prefill(*case, window, 0.125), ref)


@pytest.mark.parametrize("heads", [(4, 4, 16), (6, 2, 8), (64, 8, 64), (3, 1, 40)])
def test_other_head_shapes(heads: tuple[int, int, int]) -> None:
    case = _case(29, 7, heads, torch.float32, seed=sum(heads))
    _check(cpu_mxfp4.attention_prefill(*case, 0, heads[2] ** -0.5), attention_ref(*case, 0, heads[2] ** -0.5))


def test_a_ring_history_with_empty_and_unsorted_slots() -> None:
    # A sliding layer's keys: the ring's older positions (unordered, some slots never written: position -1), then
    # the chunk. Unsorted keys make the kernel scan every block and mask each key by position.
    q, k, v, sinks, q_pos, _ = _case(20, 12, (8, 2, 32), torch.float32, seed=3)
    k_pos = torch.cat((torch.tensor([9, 10, 11, -1, -1, 5, 6, 7, 8, -1, 3, 4]), q_pos))
    for window in (0, 8):
        ref = attention_ref(q, k, v, sinks, q_pos, k_pos, window, 0.2)
        _check(cpu_mxfp4.attention_prefill(q, k, v, sinks, q_pos, k_pos, window, 0.2), ref)


def test_peaked_scores_and_a_dominant_sink() -> None:
    # Large logits (a peaked softmax; the running max moves from block to block) and sinks far above every score
    # (the sink takes almost all the weight, so the output is the small remainder). Logits reach ~300 here, where
    # one fp32 step of a score is ~3e-5: summed in another order, the weights (and outputs) differ by that much.
    q, k, v, sinks, q_pos, k_pos = _case(64, 0, (4, 2, 32), torch.float32, seed=4, scale=4.0)
    _check(
        cpu_mxfp4.attention_prefill(q, k, v, sinks, q_pos, k_pos, 0, 1.0),
        attention_ref(q, k, v, sinks, q_pos, k_pos, 0, 1.0),
        fp32_atol=1e-4,
    )
    high = sinks + 60.0
    remainder = cpu_mxfp4.attention_prefill(q, k, v, high, q_pos, k_pos, 0, 0.1)
    ref = attention_ref(q, k, v, high, q_pos, k_pos, 0, 0.1)
    assert 0 < ref.abs().max() < 1e-9  # the sink really dominates: compare relative to these tiny outputs
    torch.testing.assert_close(remainder, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()))


def test_a_query_that_sees_no_key_gets_zeros() -> None:
    q, k, v, sinks, q_pos, k_pos = _case(3, 0, (2, 1, 8), torch.float32, seed=5)
    k_pos = torch.tensor([5, 6, 7])  # every key is after every query
    out = cpu_mxfp4.attention_prefill(q, k, v, sinks, q_pos, k_pos, 0, 0.3)
    assert torch.equal(out, torch.zeros_like(out))
    torch.testing.assert_close(out, attention_ref(q, k, v, sinks, q_pos, k_pos, 0, 0.3))


def test_rejects_bad_inputs() -> None:
    q, k, v, sinks, q_pos, k_pos = _case(4, 0, (4, 2, 16), torch.float32, seed=6)
    with pytest.raises(RuntimeError, match="share a dtype"):
        cpu_mxfp4.attention_prefill(q, k.bfloat16(), v, sinks, q_pos, k_pos, 0, 0.25)
    with pytest.raises(RuntimeError, match="head shapes"):
        cpu_mxfp4.attention_prefill(q, k[:, :, :8].contiguous(), v[:, :, :8].contiguous(), sinks, q_pos, k_pos, 0, 0.25)
    with pytest.raises(RuntimeError, match="multiple of 8"):
        cpu_mxfp4.attention_prefill(q[..., :12], k[..., :12], v[..., :12], sinks, q_pos, k_pos, 0, 0.25)
    with pytest.raises(RuntimeError, match="q_pos"):
        cpu_mxfp4.attention_prefill(q, k, v, sinks, q_pos[:2], k_pos, 0, 0.25)
