"""The one stop rule every generation path applies (engine.decode_loop.stop_reason), and its order."""

from __future__ import annotations

from types import SimpleNamespace

from gpt_oss_desktop.engine.decode_loop import SequenceState, stop_reason
from gpt_oss_desktop.engine.events import FinishReason
from gpt_oss_desktop.engine.sampling import SamplingParams

STOP = 7


def _seq(produced: int, max_tokens: int = 4) -> SequenceState:
    seq = SequenceState(0, [1, 2], SamplingParams(max_tokens=max_tokens, stop_tokens={STOP}), started=0.0)
    seq.produced = produced
    return seq


def _cache(length: int, capacity: int = 100) -> SimpleNamespace:
    return SimpleNamespace(capacity=capacity, length=lambda slot: length)


def test_a_stop_token_wins_over_every_limit() -> None:
    # The last token allowed by max_tokens, into a full context: still a stop (the answer is complete).
    assert stop_reason(_seq(produced=4), STOP, _cache(length=99)) is FinishReason.STOP


def test_max_tokens_and_a_full_context_end_with_length() -> None:
    assert stop_reason(_seq(produced=4), 5, _cache(length=10)) is FinishReason.LENGTH
    # One more position would not fit: the decode step that reads this token has no room.
    assert stop_reason(_seq(produced=1), 5, _cache(length=100)) is FinishReason.LENGTH
    assert stop_reason(_seq(produced=1), 5, _cache(length=99)) is None
