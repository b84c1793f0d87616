"""SamplingParams validation and the statistical behaviour of sample() with seeded generators."""

from __future__ import annotations

import math

import pytest
import torch

from gpt_oss_desktop.engine.sampling import SamplingParams, draw, filter_logits, make_generator, sample
from gpt_oss_desktop.engine.vocab import get_encoding


def test_defaults() -> None:
    p = SamplingParams()
    assert (p.temperature, p.top_p, p.top_k, p.seed) == (1.0, 1.0, 0, None)
    assert p.max_tokens >= 4096
    assert p.stop_tokens == frozenset(get_encoding().stop_tokens_for_assistant_actions()) == {200002, 200012}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": math.nan}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"temperature": "1"}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop_tokens": [-3]}, "stop_tokens"),
    ],
)
def test_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SamplingParams(**kwargs)  # type: ignore[arg-type]


def test_stop_tokens_accepts_any_iterable() -> None:
    assert SamplingParams(stop_tokens=[1, 2, 2]).stop_tokens == frozenset({1, 2})  # type: ignore[arg-type]


def test_greedy_is_argmax_for_1d_and_2d() -> None:
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    greedy = SamplingParams(temperature=0)
    assert torch.equal(sample(logits, greedy), logits.argmax(-1))
    one = sample(logits[2], greedy)
    assert one.dim() == 0 and int(one) == int(logits[2].argmax())


def test_bf16_logits_accepted() -> None:
    logits = torch.tensor([0.0, 5.0, 1.0]).to(torch.bfloat16)
    assert int(sample(logits, SamplingParams(temperature=0))) == 1


def test_seeded_reproducibility() -> None:
    logits = torch.randn(1000, generator=torch.Generator().manual_seed(1))
    params = SamplingParams(seed=123)
    gen_a, gen_b = make_generator(7), make_generator(7)
    seq_a = [int(sample(logits, params, gen_a)) for _ in range(50)]
    seq_b = [int(sample(logits, params, gen_b)) for _ in range(50)]
    assert seq_a == seq_b
    assert int(sample(logits, params, make_generator(123))) == int(sample(logits, params, make_generator(123)))
    assert len(set(seq_a)) > 5  # actually random, not greedy
    assert make_generator(None) is None


def frequencies(logits: torch.Tensor, params: SamplingParams, n: int = 20000, seed: int = 0) -> torch.Tensor:
    batch = logits.expand(n, -1).contiguous()
    ids = sample(batch, params, make_generator(seed))
    return torch.bincount(ids, minlength=logits.shape[-1]).float() / n


def test_temperature_one_matches_softmax() -> None:
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    freq = frequencies(logits, SamplingParams())
    assert torch.allclose(freq, torch.softmax(logits, -1), atol=0.015)


def test_temperature_sharpens_and_flattens() -> None:
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    cold = frequencies(logits, SamplingParams(temperature=0.5))
    hot = frequencies(logits, SamplingParams(temperature=2.0))
    assert torch.allclose(cold, torch.softmax(logits / 0.5, -1), atol=0.015)
    assert torch.allclose(hot, torch.softmax(logits / 2.0, -1), atol=0.015)
    assert cold[0] > 0.8 > hot[0]


def test_top_k_restricts_and_renormalises() -> None:
    logits = torch.tensor([3.0, 2.5, 2.0, 1.0, 0.5, 0.0])
    freq = frequencies(logits, SamplingParams(top_k=2))
    assert freq[2:].sum() == 0
    assert torch.allclose(freq[:2], torch.softmax(logits[:2], -1), atol=0.015)


def test_top_p_nucleus() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log()
    # 0.5 + 0.3 = 0.8 >= 0.75, so the nucleus is the first two tokens.
    freq = frequencies(logits, SamplingParams(top_p=0.75))
    assert freq[2:].sum() == 0
    assert torch.allclose(freq[:2], torch.tensor([0.625, 0.375]), atol=0.015)
    # A tiny top_p still keeps the most likely token.
    assert frequencies(logits, SamplingParams(top_p=0.01), n=500)[0] == 1.0


def test_top_k_then_top_p_batched_rows_independent() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0]])
    filtered = filter_logits(logits, top_k=3, top_p=0.5)
    # Row 0: top-3 = {3, 2, 1}; nucleus of their renormalised probs at 0.5 -> only the best (p≈0.67).
    assert torch.isfinite(filtered[0]).tolist() == [False, False, False, True]
    assert torch.isfinite(filtered[1]).tolist() == [True, False, False, False]
    ids = sample(logits, SamplingParams(top_k=3, top_p=0.5, seed=1), make_generator(1))
    assert ids.tolist() == [3, 0]


def test_filter_keeps_ties_at_kth() -> None:
    logits = torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert torch.isfinite(filter_logits(logits.unsqueeze(0), top_k=2)).sum() == 3


def test_bad_shape() -> None:
    with pytest.raises(ValueError, match="logits"):
        sample(torch.zeros(2, 3, 4), SamplingParams())


def _full_sort_nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """The textbook nucleus: sort the whole row, keep tokens whose preceding mass is below top_p (the first always)."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    keep_sorted = (torch.cumsum(probs, dim=-1) - probs) < top_p
    keep_sorted[..., 0] = True
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


@pytest.mark.parametrize("scale", [8.0, 0.5])  # peaked (nucleus within the first candidates) and flat (it grows)
@pytest.mark.parametrize("top_p", [0.3, 0.9, 0.999])
def test_top_p_nucleus_equals_a_full_sort(scale: float, top_p: float) -> None:
    logits = scale * torch.randn(3, 5000, generator=torch.Generator().manual_seed(int(scale * 10 + top_p * 1000)))
    kept = torch.isfinite(filter_logits(logits, top_p=top_p))
    assert torch.equal(kept, _full_sort_nucleus(logits, top_p))


def test_draw_follows_the_distribution_across_blocks_and_never_draws_empty_tokens() -> None:
    # 2,500 tokens: the last block is padded. Mass sits on both sides of a block boundary (1023 | 1024) and on the
    # last token; everything else, padding included, has probability 0.
    probs = torch.zeros(2500)
    probs[[3, 1023, 1024, 2499]] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    batch = probs.expand(40000, -1).contiguous()
    ids = draw(batch, make_generator(5))
    freq = torch.bincount(ids, minlength=2500).float() / 40000
    assert set(torch.nonzero(freq).flatten().tolist()) == {3, 1023, 1024, 2499}
    assert torch.allclose(freq[[3, 1023, 1024, 2499]], probs[[3, 1023, 1024, 2499]], atol=0.01)


def test_draw_at_the_real_vocabulary_size_matches_softmax_sampling() -> None:
    logits = torch.full((201088,), -30.0)
    logits[[0, 100_000, 201_087]] = torch.tensor([1.0, 2.0, 0.0])
    generator = make_generator(11)
    ids = torch.stack([sample(logits, SamplingParams(), generator) for _ in range(2000)])
    freq = torch.bincount(ids, minlength=201088).float() / 2000
    expected = torch.softmax(logits, -1)[[0, 100_000, 201_087]]
    assert torch.allclose(freq[[0, 100_000, 201_087]], expected, atol=0.035)
