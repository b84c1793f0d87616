"""Triton attention kernels (kernels.attention.attention / attention_decode) against the torch references.

Runs in the Triton interpreter on CPU (tests/conftest.py sets TRITON_INTERPRET=1). Inputs are carved out of larger
NaN-filled buffers and outputs are pre-filled with NaN, so an unmasked out-of-bounds load, a read of a cache row
the kernel should not touch, or an output element never written shows up as NaN. The references get the same
data with the NaN padding replaced by zeros (they multiply masked probabilities by those rows).

Tolerances: both sides compute in fp32 from the same inputs (bf16 inputs are upcast after the load), so fp32
results agree to rounding order (atol/rtol 1e-5). bf16 outputs are the fp32 result rounded once; two fp32 values a
few ulps apart can round to neighbouring bf16 values, i.e. differ by one bf16 ulp <= 2^-7 * |x| (8-bit precision).
"""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.kernels import attention as attn_mod
from gpt_oss_desktop.kernels.attention import (
    attention,
    attention_decode,
    attention_decode_ref,
    attention_ref,
    decode_split_size,
)

pytestmark = pytest.mark.skipif(attn_mod.triton is None, reason="triton not installed")

SM_SCALE = 0.125
NAN = float("nan")


def _tolerances(dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.float32:
        return {"atol": 1e-5, "rtol": 1e-5}
    return {"atol": 1e-5, "rtol": 2.0**-7}


@pytest.fixture(autouse=True)
def _poison_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    # Split partials start as NaN: a (sequence, head, split) partial the decode kernel forgets to write poisons the
    # combined output.
    monkeypatch.setattr(attn_mod, "_POISON_SCRATCH", True)


def _qkv_views(
    t: int, hq: int, hkv: int, d: int, dtype: torch.dtype, gen: torch.Generator, pad: int = 5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q ``[t, hq, d]``, k/v ``[t, hkv, d]`` as strided views of one qkv buffer (the model's layout), NaN after."""
    width = (hq + 2 * hkv) * d
    buf = torch.full((t + pad, width), NAN, dtype=dtype)
    buf[:t] = torch.randn(t, width, generator=gen).to(dtype)
    q, k, v = buf[:t].split((hq * d, hkv * d, hkv * d), dim=-1)
    return q.view(t, hq, d), k.view(t, hkv, d), v.view(t, hkv, d)


def _padded(x: torch.Tensor, pad: int = 7) -> torch.Tensor:
    """A view of ``x`` followed by NaN rows in memory (dim 0), same strides as a contiguous tensor."""
    buf = torch.full((x.shape[0] + pad, *x.shape[1:]), NAN, dtype=x.dtype)
    buf[: x.shape[0]] = x
    return buf[: x.shape[0]]


def _nan_out(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.full(shape, NAN, dtype=dtype)


def _check(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> None:
    assert out.dtype == dtype
    assert not out.isnan().any(), "NaN in output: unmasked load or unwritten element"
    torch.testing.assert_close(out.float(), ref.float(), **_tolerances(dtype))


# ----------------------------------------------------------------------------------------------------- prefill
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [0, 8])
@pytest.mark.parametrize(
    ("t", "hq", "hkv", "d"),
    # GQA groups 1, 2, 4; T not a multiple of 64; 150 = 3 query blocks, so windowed blocks get skipped.
    [(37, 2, 2, 16), (37, 4, 2, 32), (70, 4, 1, 64), (150, 2, 1, 64)],
)
def test_prefill_fresh(t: int, hq: int, hkv: int, d: int, window: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(t * 100 + hq * 10 + d + window)
    q, k, v = _qkv_views(t, hq, hkv, d, dtype, gen)
    sinks = torch.randn(hq, generator=gen) * 2
    pos = torch.arange(t)
    out = attention(q, k, v, sinks, pos, pos, window, SM_SCALE, out=_nan_out((t, hq, d), dtype))
    ref = attention_ref(q.contiguous(), k.contiguous(), v.contiguous(), sinks, pos, pos, window, SM_SCALE)
    _check(out, ref, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [0, 8, 20])
def test_prefill_at_cache_offset(window: int, dtype: torch.dtype) -> None:
    # 37 new queries at positions 50..86 over 50 cached keys plus their own: keys before the offset must count.
    gen = torch.Generator().manual_seed(7 + window)
    t, prefix, hq, hkv, d = 37, 50, 4, 2, 64
    s = prefix + t
    q = _padded(torch.randn(t, hq, d, generator=gen).to(dtype))
    k = _padded(torch.randn(s, hkv, d, generator=gen).to(dtype))
    v = _padded(torch.randn(s, hkv, d, generator=gen).to(dtype))
    sinks = torch.randn(hq, generator=gen)
    q_pos = torch.arange(prefix, s)
    k_pos = torch.arange(s)
    out = attention(q, k, v, sinks, q_pos, k_pos, window, SM_SCALE, out=_nan_out((t, hq, d), dtype))
    ref = attention_ref(q, k, v, sinks, q_pos, k_pos, window, SM_SCALE)
    _check(out, ref, dtype)
    # The offset matters: dropping the prefix keys (the reference Triton kernel's bug) gives another answer.
    wrong = attention_ref(q, k[prefix:], v[prefix:], sinks, q_pos, k_pos[prefix:], window, SM_SCALE)
    if window == 0 or window > 8:
        assert not torch.allclose(out.float(), wrong.float(), atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [0, 16])
def test_prefill_ring_order_with_empty_slots(window: int, dtype: torch.dtype) -> None:
    # Keys as a ring-layer chunk sees them: older ring rows in ring order (some never written, position -1),
    # then the chunk's own keys; shuffled as well so no ordering is assumed.
    gen = torch.Generator().manual_seed(11 + window)
    hq, hkv, d, t = 8, 2, 32, 20
    ring = 48
    old = torch.arange(60, 100)  # positions 60..99 held in a 48-row ring -> 40 used rows, 8 empty
    ring_pos = torch.full((ring,), -1, dtype=torch.int64)
    ring_pos[old % ring] = old
    k_pos = torch.cat((ring_pos, torch.arange(100, 100 + t)))
    k_pos = k_pos[torch.randperm(k_pos.numel(), generator=gen)]
    s = k_pos.numel()
    q = torch.randn(t, hq, d, generator=gen).to(dtype)
    k = torch.randn(s, hkv, d, generator=gen).to(dtype)
    v = torch.randn(s, hkv, d, generator=gen).to(dtype)
    # Empty slots hold NaN for the kernel (it must never load them) and zeros for the reference.
    empty = k_pos < 0
    k_bad, v_bad = k.clone(), v.clone()
    k_bad[empty] = NAN
    v_bad[empty] = NAN
    sinks = torch.randn(hq, generator=gen)
    q_pos = torch.arange(100, 100 + t)
    out = attention(q, k_bad, v_bad, sinks, q_pos, k_pos, window, SM_SCALE, out=_nan_out((t, hq, d), dtype))
    ref = attention_ref(q, k, v, sinks, q_pos, k_pos, window, SM_SCALE)
    _check(out, ref, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_prefill_skips_invisible_key_blocks(dtype: torch.dtype) -> None:
    # Queries at 200..236 with window 16 over keys 0..299 in 64-key blocks: blocks [0, 128) are too old and
    # [256, 300) in the future for every query, so the kernel must skip them; they hold NaN here, which would
    # reach the output through p @ v (0 * NaN) if they were loaded. Block [128, 192) is partly visible (185..191).
    gen = torch.Generator().manual_seed(21)
    t, s, hq, hkv, d = 37, 300, 4, 1, 64
    q = torch.randn(t, hq, d, generator=gen).to(dtype)
    k = torch.randn(s, hkv, d, generator=gen).to(dtype)
    v = torch.randn(s, hkv, d, generator=gen).to(dtype)
    skipped = torch.cat((torch.arange(0, 128), torch.arange(256, 300)))
    k_bad, v_bad = k.clone(), v.clone()
    k_bad[skipped] = NAN
    v_bad[skipped] = NAN
    k[skipped] = 0
    v[skipped] = 0
    sinks = torch.randn(hq, generator=gen)
    q_pos, k_pos = torch.arange(200, 200 + t), torch.arange(s)
    out = attention(q, k_bad, v_bad, sinks, q_pos, k_pos, 16, SM_SCALE, out=_nan_out((t, hq, d), dtype))
    _check(out, attention_ref(q, k, v, sinks, q_pos, k_pos, 16, SM_SCALE), dtype)


def test_prefill_no_visible_keys_gives_zero() -> None:
    # Only the sink in the softmax: weights sum to 0 over keys, output exactly 0 (matches the reference).
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(5, 2, 16, generator=gen)
    k = torch.randn(4, 1, 16, generator=gen)
    v = torch.randn(4, 1, 16, generator=gen)
    k_pos = torch.tensor([-1, 10, -1, 11])  # all keys after every query
    out = attention(q, k, v, torch.zeros(2), torch.arange(5), k_pos, 0, SM_SCALE)
    assert torch.equal(out, torch.zeros_like(out))
    torch.testing.assert_close(out, attention_ref(q, k, v, torch.zeros(2), torch.arange(5), k_pos, 0, SM_SCALE))


# ------------------------------------------------------------------------------------------------------ decode
def _decode_case(
    lengths: list[int],
    rows: int,
    ring: bool,
    window: int,
    dtype: torch.dtype,
    hq: int = 8,
    hkv: int = 2,
    d: int = 64,
    seed: int = 0,
) -> tuple[torch.Tensor, ...]:
    """Random decode inputs; store rows a sequence must not read are NaN in ``store`` and zero in ``clean``."""
    gen = torch.Generator().manual_seed(seed)
    batch = len(lengths)
    total_slots = batch + 2
    slots = torch.randperm(total_slots, generator=gen)[:batch]
    k_clean = torch.randn(total_slots, rows, hkv, d, generator=gen).to(dtype)
    v_clean = torch.randn(total_slots, rows, hkv, d, generator=gen).to(dtype)
    needed = torch.zeros(total_slots, rows, dtype=torch.bool)
    for slot, length in zip(slots.tolist(), lengths, strict=True):
        first = max(0, length - window) if window > 0 else 0
        positions = torch.arange(max(first, length - rows) if ring else first, length)
        needed[slot, positions % rows if ring else positions] = True
    k_clean[~needed] = 0
    v_clean[~needed] = 0
    k_bad, v_bad = k_clean.clone(), v_clean.clone()
    k_bad[~needed] = NAN
    v_bad[~needed] = NAN
    q = torch.randn(batch, hq, d, generator=gen).to(dtype)
    sinks = torch.randn(hq, generator=gen) * 2
    return q, k_bad, v_bad, k_clean, v_clean, sinks, slots, torch.tensor(lengths)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("ring", "rows", "window"),
    [(False, 96, 0), (False, 96, 8), (True, 16, 16), (True, 32, 16)],  # full, full+window, ring, ring > window
)
def test_decode_ragged_batch(ring: bool, rows: int, window: int, dtype: torch.dtype) -> None:
    lengths = [1, 9, 70]
    q, k_bad, v_bad, k, v, sinks, slots, lens = _decode_case(lengths, rows, ring, window, dtype, seed=rows + window)
    out = attention_decode(q, k_bad, v_bad, sinks, slots, lens, window, ring, SM_SCALE, out=_nan_out(q.shape, dtype))
    ref = attention_decode_ref(q, k, v, sinks, slots, lens, window, ring, SM_SCALE)
    _check(out, ref, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("ring", "rows", "window", "split"), [(False, 704, 0, 128), (True, 256, 256, 64)])
def test_decode_long_context_several_splits(ring: bool, rows: int, window: int, split: int, dtype: torch.dtype) -> None:
    # Several splits of several 64-position blocks each (full store), and a wrapped ring split in 4 parts; the
    # shorter sequence leaves trailing splits empty.
    lengths = [700, 130] if not ring else [1000, 200]
    q, k_bad, v_bad, k, v, sinks, slots, lens = _decode_case(lengths, rows, ring, window, dtype, hq=4, seed=rows)
    out = attention_decode(
        q, k_bad, v_bad, sinks, slots, lens, window, ring, SM_SCALE, out=_nan_out(q.shape, dtype), split_size=split
    )
    ref = attention_decode_ref(q, k, v, sinks, slots, lens, window, ring, SM_SCALE)
    _check(out, ref, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_gpt_oss_group_of_eight(dtype: torch.dtype) -> None:
    # G = 8 as in gpt-oss (8 real rows padded to the 16-row MMA tile), on a 128-row ring with window 128.
    lengths = [5, 300]
    q, k_bad, v_bad, k, v, sinks, slots, lens = _decode_case(lengths, 128, True, 128, dtype, hq=8, hkv=1, seed=8)
    out = attention_decode(q, k_bad, v_bad, sinks, slots, lens, 128, True, SM_SCALE, out=_nan_out(q.shape, dtype))
    _check(out, attention_decode_ref(q, k, v, sinks, slots, lens, 128, True, SM_SCALE), dtype)


def test_decode_default_splits() -> None:
    # The heuristic path: B=1, 2 KV heads over 300 rows -> 5 splits of one block.
    assert decode_split_size(1, 2, 300) == 64
    q, k_bad, v_bad, k, v, sinks, slots, lens = _decode_case([300], 300, False, 0, torch.float32, hq=4, seed=5)
    out = attention_decode(q, k_bad, v_bad, sinks, slots, lens, 0, False, SM_SCALE, out=_nan_out(q.shape, q.dtype))
    _check(out, attention_decode_ref(q, k, v, sinks, slots, lens, 0, False, SM_SCALE), torch.float32)


def test_decode_split_size_heuristic() -> None:
    # gpt-oss-20b, one sequence, 4k context: 8 KV heads -> 32 splits of 128 positions (256 programs).
    assert decode_split_size(1, 8, 4096) == 128
    # Sliding layer: only 128 visible positions -> 2 one-block splits.
    assert decode_split_size(1, 8, 128) == 64
    # Large batch: one split covering everything.
    assert decode_split_size(64, 8, 4096) == 4096
    # Long context, 8 KV heads: still 32 splits (of 4096 positions).
    assert decode_split_size(1, 8, 131072) == 4096
    # Few KV heads: the 64-split cap keeps the combine step's tile bounded.
    assert decode_split_size(1, 1, 131072) == 2048


def test_decode_matches_prefill_kernel() -> None:
    # The decode path equals the prefill kernel on the same history (one query at the last position).
    q, k_bad, v_bad, k, v, sinks, slots, lens = _decode_case([45], 64, False, 0, torch.float32, hq=4, seed=9)
    out = attention_decode(q, k_bad, v_bad, sinks, slots, lens, 0, False, SM_SCALE)
    slot = int(slots[0])
    pos = torch.arange(45)
    pre = attention(q, k[slot, :45], v[slot, :45], sinks, pos[-1:], pos, 0, SM_SCALE)
    torch.testing.assert_close(out, pre, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------- checks
def test_wrapper_rejects_bad_inputs() -> None:
    q = torch.randn(4, 2, 48)
    k = torch.randn(4, 1, 48)
    pos = torch.arange(4)
    with pytest.raises(ValueError, match="power of two"):
        attention(q, k, k, torch.zeros(2), pos, pos, 0, SM_SCALE)
    q = torch.randn(4, 3, 16)
    k = torch.randn(4, 2, 16)
    with pytest.raises(ValueError, match="multiple"):
        attention(q, k, k, torch.zeros(3), pos, pos, 0, SM_SCALE)
    q = torch.randn(4, 2, 16)
    with pytest.raises(TypeError, match="share"):
        attention(q, k.to(torch.bfloat16), k, torch.zeros(2), pos, pos, 0, SM_SCALE)
    with pytest.raises(TypeError, match="int64"):
        attention(q, k, k, torch.zeros(2), pos.int(), pos, 0, SM_SCALE)
    with pytest.raises(ValueError, match="contiguous"):
        attention(q, k.transpose(0, 2).contiguous().transpose(0, 2), k, torch.zeros(2), pos, pos, 0, SM_SCALE)
    store = torch.randn(2, 8, 2, 16)
    with pytest.raises(ValueError, match="split_size"):
        attention_decode(q[:1], store, store, torch.zeros(2), pos[:1], pos[1:2], 0, False, SM_SCALE, split_size=50)


def test_missing_triton_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attn_mod, "triton", None)
    pos = torch.arange(2)
    with pytest.raises(RuntimeError, match="triton"):
        attention(torch.randn(2, 1, 16), torch.randn(2, 1, 16), torch.randn(2, 1, 16), torch.zeros(1), pos, pos, 0, 1.0)
