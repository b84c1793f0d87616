"""IncrementalMarkdown: same output as a full render at every split point, with bounded re-parse work."""

from __future__ import annotations

import random

import pytest

from gpt_oss_desktop.app.chat.rendering import IncrementalMarkdown, render_markdown
from tests.app.chat.rendering.corpus import FIXED, generate, tokenize


@pytest.mark.parametrize("seed", range(12))
def test_matches_full_render_at_random_points(seed: int) -> None:
    text = FIXED + "\n" + generate(2500, seed)
    rng = random.Random(seed)
    inc = IncrementalMarkdown()
    for piece in tokenize(text, seed):
        inc.append(piece)
        if rng.random() < 0.15:
            # Intermediate states must match too: that is what the user sees while it streams.
            expected = render_markdown(inc.text())
            got = inc.render()
            assert got.html == expected.html
            assert got.code_blocks == expected.code_blocks
    assert inc.text() == text
    final = inc.render()
    assert final == render_markdown(text)
    assert inc.stable_length > len(text) // 2  # most of it was committed, not re-rendered


@pytest.mark.parametrize("split", range(0, len(FIXED) + 1, 7))
def test_two_piece_split(split: int) -> None:
    inc = IncrementalMarkdown(FIXED[:split])
    inc.html()
    inc.append(FIXED[split:])
    assert inc.render() == render_markdown(FIXED)


def test_open_fence_keeps_tail_at_fence_start() -> None:
    inc = IncrementalMarkdown("Intro paragraph.\n\n```python\n")
    for i in range(50):
        inc.append(f"line_{i} = {i}\n\n")
        inc.html()
    # Blank lines inside an open fence must not commit anything after the fence start.
    assert inc.stable_length == len("Intro paragraph.\n\n")
    inc.append("```\n\nAfter.\n")
    assert inc.render() == render_markdown(inc.text())
    assert len(inc.code_blocks()) == 1


def test_reference_definitions_before_use_carry_forward() -> None:
    text = "[ref]: https://example.org\n\nFirst para.\n\nSee [the site][ref].\n\nMore.\n"
    inc = IncrementalMarkdown()
    for ch in text:
        inc.append(ch)
        inc.html()
    assert inc.render() == render_markdown(text)
    assert '<a href="https://example.org">the site</a>' in inc.html()


def _parsed_per_render(n_tokens: int) -> float:
    pieces = tokenize(generate(n_tokens * 4, seed=3), seed=3)[:n_tokens]
    inc = IncrementalMarkdown()
    # Warm-up excluded: measure the last 500 tokens, i.e. the cost *at* that message length.
    for piece in pieces[:-500]:
        inc.append(piece)
    inc.html()
    before = inc.stats()
    for piece in pieces[-500:]:
        inc.append(piece)
        inc.html()
    after = inc.stats()
    return (after.chars_parsed - before.chars_parsed) / (after.renders - before.renders)


def test_per_token_work_does_not_grow_with_message_length() -> None:
    at_1k = _parsed_per_render(1_000)
    at_10k = _parsed_per_render(10_000)
    naive_10k = 10_000 * 3.5  # a full re-render would parse the whole ~35k-character message every token
    assert at_10k < 2.0 * at_1k, (at_1k, at_10k)
    assert at_10k < naive_10k / 20
