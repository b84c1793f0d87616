"""The fused CPU decode attention (kernels.cpu_mxfp4.attention_decode) against attention_decode_ref."""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.kernels import cpu_mxfp4
from gpt_oss_desktop.kernels.attention import attention_decode_ref

# Every test runs once per instruction-set level this CPU has (tests/kernels/conftest.py).
pytestmark = pytest.mark.usefixtures("cpu_isa")

HQ, HKV, D = 8, 2, 64


def _case(
    dtype: torch.dtype,
    rows: int,
    lengths: list[int],
    seed: int,
    heads: tuple[int, int, int] = (HQ, HKV, D),
    q_scale: float = 1.0,
) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    batch = len(lengths)
    hq, hkv, d = heads
    q = (q_scale * torch.randn(batch, hq, d, generator=gen)).to(dtype)
    k = torch.randn(batch + 1, rows, hkv, d, generator=gen).to(dtype)  # one spare slot: slots need not be 0..B-1
    v = torch.randn(batch + 1, rows, hkv, d, generator=gen).to(dtype)
    sinks = torch.randn(hq, generator=gen)
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "heads",
    [
        (8, 2, 48),  # AVX2: an odd number of 16-wide chunks; AVX-512 (chunks of 32): the scalar loop
        (12, 2, 96),  # 6 of a lane group's 8 heads; AVX-512: an odd number of 32-wide chunks; AVX2: P.V passes of 4 + 2
        (32, 2, 32),  # two full lane groups of query heads per KV head
        (34, 2, 32),  # 17 query heads per KV head: lane groups of 8, 8 and 1
        (6, 3, 40),  # head_dim not a multiple of 16: the scalar loop
    ],
)
def test_matches_reference_for_other_head_shapes(dtype: torch.dtype, heads: tuple[int, int, int]) -> None:
    args = _case(dtype, 24, [1, 9, 24], seed=sum(heads), heads=heads)
    scale = heads[2] ** -0.5
    out = cpu_mxfp4.attention_decode(*args, 0, False, scale)
    ref = attention_decode_ref(*args, 0, False, scale)
    tol = 1e-5 if dtype == torch.float32 else 8e-3
    torch.testing.assert_close(out.float(), ref.float(), atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("rows", "lengths", "window", "ring"),
    [
        (100, [1, 15, 16, 17, 100], 0, False),  # full layer: ends inside, at and just past a block of positions
        (32, [40, 77], 32, True),  # sliding ring wrapping inside a block
    ],
)
def test_gpt_oss_head_shape_matches_reference(
    dtype: torch.dtype, rows: int, lengths: list[int], window: int, ring: bool
) -> None:
    # 64 query heads on 8 KV heads of 64 dims: the vectorised paths' compiled-in shape, with runs of several KV heads.
    args = _case(dtype, rows, lengths, seed=len(lengths), heads=(64, 8, 64))
    out = cpu_mxfp4.attention_decode(*args, window, ring, 0.125)
    ref = attention_decode_ref(*args, window, ring, 0.125)
    tol = 1e-5 if dtype == torch.float32 else 8e-3
    torch.testing.assert_close(out.float(), ref.float(), atol=tol, rtol=tol)


# The vector paths cut a sequence longer than 2,048 visible positions into chunks of 2,048 (kChunk in attention.cpp),
# each chunk's KV heads work items of their own, and merge the chunks' states afterwards.
CHUNKED = 4500  # chunks of 2,048, 2,048 and 404


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("lengths", "window"),
    [
        ([CHUNKED, 2049, 2048, 37], 0),  # three chunks; two, the second of one position; one whole chunk; short
        ([CHUNKED, 3000], 2500),  # banded: the chunks start at the window's first position
    ],
)
def test_long_sequences_in_chunks_match_reference(dtype: torch.dtype, lengths: list[int], window: int) -> None:
    args = _case(dtype, CHUNKED, lengths, seed=len(lengths) + window, heads=(64, 8, 64))
    out = cpu_mxfp4.attention_decode(*args, window, False, 0.125)
    ref = attention_decode_ref(*args, window, False, 0.125)
    tol = 1e-5 if dtype == torch.float32 else 8e-3
    torch.testing.assert_close(out.float(), ref.float(), atol=tol, rtol=tol)


def test_result_does_not_depend_on_the_thread_count() -> None:
    # Threads split the (sequence, chunk, KV head) items into runs of different lengths; each head's sums must not
    # change.
    args = _case(torch.bfloat16, CHUNKED, [CHUNKED, 300, 129, 7], seed=11, heads=(64, 8, 64))
    before = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 3, 5):  # runs of 8 heads; of 8, 4 and 4; ...; of 5, 3 and 2
            torch.set_num_threads(threads)
            outs.append(cpu_mxfp4.attention_decode(*args, 0, False, 0.125))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(outs[0], other) for other in outs[1:])


def test_peaked_and_flat_softmax_match_reference() -> None:
    # Large scores push exp() to its underflow end (most weights ~0); tiny ones make it flat. Both must stay exact to
    # fp32 tolerance against torch's softmax.
    for q_scale in (40.0, 1e-3):
        args = _case(torch.float32, 64, [64, 3], seed=7, q_scale=q_scale)
        out = cpu_mxfp4.attention_decode(*args, 0, False, 0.125)
        ref = attention_decode_ref(*args, 0, False, 0.125)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_minus_infinity_sinks_leave_a_plain_softmax() -> None:
    # A sink of -inf adds nothing to the denominator: the running max starts at -inf and the first block replaces it.
    for dtype in (torch.float32, torch.bfloat16):
        q, k, v, sinks, slots, lengths = _case(dtype, 40, [1, 17, 40], seed=5, heads=(64, 8, 64))
        sinks[::3] = float("-inf")
        out = cpu_mxfp4.attention_decode(q, k, v, sinks, slots, lengths, 0, False, 0.125)
        ref = attention_decode_ref(q, k, v, sinks, slots, lengths, 0, False, 0.125)
        assert torch.isfinite(out.float()).all()
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


def test_a_chunked_sequence_is_independent_of_the_batch() -> None:
    q, k, v, sinks, slots, lengths = _case(torch.bfloat16, CHUNKED, [300, CHUNKED], seed=8, heads=(64, 8, 64))
    together = cpu_mxfp4.attention_decode(q, k, v, sinks, slots, lengths, 0, False, 0.125)
    for b in range(2):
        alone = cpu_mxfp4.attention_decode(
            q[b : b + 1], k, v, sinks, slots[b : b + 1], lengths[b : b + 1], 0, False, 0.125
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
