"""Cached prefill/decode must equal the uncached full forward at every position."""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.engine.model import Model
from tests.helpers.models import ORACLE_CONFIG, random_ids, random_model

WINDOW = ORACLE_CONFIG.sliding_window
ATOL = 2e-5


@pytest.fixture(scope="module")
def model() -> Model:
    return random_model()


def _reference(model: Model, ids: list[int]) -> torch.Tensor:
    return model.logits(ids)


def test_decode_matches_uncached_across_window_edge(model: Model) -> None:
    ids = random_ids(3 * WINDOW + 5, ORACLE_CONFIG.vocab_size, seed=1)
    full = _reference(model, ids)
    cache = model.new_cache(1, 64)
    got = [model.prefill(ids[:3], cache)]
    for position in range(3, len(ids)):
        got.append(model.decode([ids[position]], cache, [0])[0])
    torch.testing.assert_close(torch.stack(got), full[2:], atol=ATOL, rtol=1e-5)
    assert cache.length(0) == len(ids)
    assert cache.tokens(0) == ids


@pytest.mark.parametrize("chunks", [(1, 7, 1, 13, 11), (WINDOW, WINDOW, WINDOW), (2 * WINDOW + 3, 9)])
def test_chunked_prefill_matches_uncached(model: Model, chunks: tuple[int, ...]) -> None:
    ids = random_ids(sum(chunks), ORACLE_CONFIG.vocab_size, seed=2)
    full = _reference(model, ids)
    cache = model.new_cache(1, 64)
    start = 0
    for size in chunks:
        last = model.prefill(ids[start : start + size], cache)
        start += size
        torch.testing.assert_close(last, full[start - 1], atol=ATOL, rtol=1e-5)


def test_prefix_reuse_after_generation_restores_the_ring(model: Model) -> None:
    """Turn 1 = prompt + generated tokens; turn 2 shares only the prompt. The ring has moved on, so the
    cache must restore it from the snapshot taken at the end of the turn-1 prefill."""
    prompt = random_ids(2 * WINDOW + 3, ORACLE_CONFIG.vocab_size, seed=3)
    generated = random_ids(2 * WINDOW, ORACLE_CONFIG.vocab_size, seed=4)
    cache = model.new_cache(1, 128)
    model.prefill(prompt, cache)
    for token in generated:
        model.decode([token], cache, [0])
    kept = cache.truncate(0, len(prompt))
    assert kept == len(prompt)
    follow_up = random_ids(WINDOW + 2, ORACLE_CONFIG.vocab_size, seed=5)
    logits = model.prefill(follow_up, cache)
    full = _reference(model, prompt + follow_up)
    torch.testing.assert_close(logits, full[-1], atol=ATOL, rtol=1e-5)
    # and decoding onward stays exact
    nxt = model.decode([7], cache, [0])[0]
    torch.testing.assert_close(nxt, _reference(model, [*prompt, *follow_up, 7])[-1], atol=ATOL, rtol=1e-5)


def test_truncate_without_snapshot_reports_what_it_kept(model: Model) -> None:
    ids = random_ids(4 * WINDOW, ORACLE_CONFIG.vocab_size, seed=6)
    cache = model.new_cache(1, 64)
    model.prefill(ids[:WINDOW], cache)  # snapshot at WINDOW
    for token in ids[WINDOW:]:
        model.decode([token], cache, [0])
    target = 3 * WINDOW  # no snapshot there, and the ring has overwritten what it would need
    kept = cache.truncate(0, target)
    assert kept == WINDOW
    assert cache.tokens(0) == ids[:kept]
    last = model.prefill(ids[kept:target], cache)
    torch.testing.assert_close(last, _reference(model, ids[:target])[-1], atol=ATOL, rtol=1e-5)


def test_truncate_inside_the_first_window_is_exact(model: Model) -> None:
    ids = random_ids(WINDOW, ORACLE_CONFIG.vocab_size, seed=7)
    cache = model.new_cache(1, 64)
    model.prefill(ids, cache)
    assert cache.truncate(0, 3) == 3
    other = random_ids(5, ORACLE_CONFIG.vocab_size, seed=8)
    last = model.prefill(other, cache)
    torch.testing.assert_close(last, _reference(model, ids[:3] + other)[-1], atol=ATOL, rtol=1e-5)


def test_batched_decode_of_ragged_slots_matches_single(model: Model) -> None:
    prompts = [random_ids(n, ORACLE_CONFIG.vocab_size, seed=10 + n) for n in (3, WINDOW + 4, 2 * WINDOW + 1)]
    cache = model.new_cache(3, 64)
    for slot, prompt in enumerate(prompts):
        model.prefill(prompt, cache, slot)
    next_tokens = [11, 22, 33]
    batched = model.decode(next_tokens, cache, [0, 1, 2])
    for slot, prompt in enumerate(prompts):
        expected = _reference(model, [*prompt, next_tokens[slot]])[-1]
        torch.testing.assert_close(batched[slot], expected, atol=ATOL, rtol=1e-5)


def test_batched_decode_is_bit_identical_to_single_slot_decode() -> None:
    # Side-by-side effort comparison decodes its sequences as one batch; greedy decoding must then pick exactly the
    # tokens each sequence would pick alone, so every op of decode must give a row the same bits whatever the batch.
    # That holds in bf16, the dtype the app runs (fused CPU kernels with batch-independent tiles); fp32 projections
    # go to BLAS, whose GEMV and GEMM round differently, so fp32 is only equal to tolerance (test above).
    model = random_model(dtype=torch.bfloat16)
    prompts = [random_ids(n, ORACLE_CONFIG.vocab_size, seed=40 + n) for n in (5, WINDOW + 2, 2 * WINDOW + 3)]
    batch_cache = model.new_cache(3, 64)
    alone_caches = [model.new_cache(1, 64) for _ in prompts]
    for slot, prompt in enumerate(prompts):
        model.prefill(prompt, batch_cache, slot)
        model.prefill(prompt, alone_caches[slot])
    tokens = [7, 8, 9]
    for _step in range(3):
        batched = model.decode(tokens, batch_cache, [0, 1, 2])
        for slot in range(3):
            alone = model.decode([tokens[slot]], alone_caches[slot], [0])[0]
            assert torch.equal(batched[slot], alone), slot
        tokens = [int(t) for t in batched.argmax(dim=-1).tolist()]


def test_context_limit_is_a_typed_error(model: Model) -> None:
    from gpt_oss_desktop.engine.errors import GenerationError

    cache = model.new_cache(1, 10)
    model.prefill(random_ids(10, ORACLE_CONFIG.vocab_size), cache)
    with pytest.raises(GenerationError, match="context full"):
        model.decode([1], cache, [0])
