"""The fused CPU decode attention (kernels.cpu_mxfp4.attention_decode) against attention_decode_ref."""

from __future__ import annotations

import pytest
import torch

from kernels import cpu_mxfp4
from kernels.attention import attention_decode_ref

if not cpu_mxfp4.available():
    pytest.skip(f"CPU MXFP4 extension unavailable: {cpu_mxfp4.build_error()}", allow_module_level=True)

HQ, HKV, D = 8, 2, 64


def _case(dtype: torch.dtype, rows: int, lengths: list[int], seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    batch = len(lengths)
    q = torch.randn(batch, HQ, D, generator=gen).to(dtype)
    k = torch.randn(batch + 1, rows, HKV, D, generator=gen).to(dtype)  # one spare slot: slots need not be 0..B-1
    v = torch.randn(batch + 1, rows, HKV, D, generator=gen).to(dtype)
    sinks = torch.randn(HQ, generator=gen)
    slots = torch.tensor([batch - i for i in range(batch)])
    return q, k, v, sinks, slots, torch.tensor(lengths)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("rows", "lengths", "window", "ring"),
    [
        (40, [1, 17, 40], 0, False),  # full causal layer, ragged
        (40, [5, 33], 12, False),  # banded without a ring
        (16, [3, 16, 50, 129], 16, True),  # sliding ring, before and after wrapping
    ],
)
def test_matches_reference(dtype: torch.dtype, rows: int, lengths: list[int], window: int, ring: bool) -> None:
    args = _case(dtype, rows, lengths, seed=rows + len(lengths))
    out = cpu_mxfp4.attention_decode(*args, window, ring, D**-0.5)
    ref = attention_decode_ref(*args, window, ring, D**-0.5)
    assert out.dtype == dtype and out.shape == ref.shape
    tol = 1e-5 if dtype == torch.float32 else 8e-3
    torch.testing.assert_close(out.float(), ref.float(), atol=tol, rtol=tol)


def test_each_sequence_is_independent_of_the_batch() -> None:
    q, k, v, sinks, slots, lengths = _case(torch.bfloat16, 16, [4, 20, 37], seed=3)
    together = cpu_mxfp4.attention_decode(q, k, v, sinks, slots, lengths, 16, True, 0.125)
    for b in range(3):
        alone = cpu_mxfp4.attention_decode(
            q[b : b + 1], k, v, sinks, slots[b : b + 1], lengths[b : b + 1], 16, True, 0.125
        )
        assert torch.equal(alone[0], together[b])


def test_rejects_out_of_range_inputs() -> None:
    q, k, v, sinks, slots, lengths = _case(torch.float32, 8, [3, 4], seed=4)
    with pytest.raises(RuntimeError, match="slot"):
        cpu_mxfp4.attention_decode(q, k, v, sinks, slots + 5, lengths, 0, False, 0.125)
    with pytest.raises(RuntimeError, match="does not fit"):
        cpu_mxfp4.attention_decode(q, k, v, sinks, slots, lengths + 10, 0, False, 0.125)
    with pytest.raises(RuntimeError, match="share a dtype"):
        cpu_mxfp4.attention_decode(q.bfloat16(), k, v, sinks, slots, lengths, 0, False, 0.125)
