"""Stats wording and the conversation record (pure functions, no Qt)."""

from __future__ import annotations

from gpt_oss_desktop.app.chat.conversation import Conversation
from gpt_oss_desktop.app.chat.stats import (
    AnswerStats,
    count,
    kept_together,
    readable,
    seconds,
    stats_figures,
    stats_line,
    thinking_header,
)
from gpt_oss_desktop.engine.events import ANALYSIS, Done, FinishReason
from gpt_oss_desktop.engine.harmony import ChatRole, ReasoningEffort


def test_thinking_header() -> None:
    assert thinking_header(None, 0, live=True) == "Thinking…"
    assert thinking_header(12.34, 1843, live=False) == "Thought for 12.3 s · 1,843 tokens"
    assert thinking_header(0.5, 1, live=False) == "Thought for 0.50 s · 1 token"
    # A saved answer: what was not recorded is left out, never shown as 0; a recorded 0 is a count like any other.
    assert thinking_header(None, 0, live=False) == "Reasoning · 0 tokens"
    assert thinking_header(None, None, live=False) == "Reasoning"
    assert thinking_header(12.34, None, live=False) == "Thought for 12.3 s"


def test_durations_and_counts() -> None:
    assert count(1843) == "1,843"
    assert count(0) == "0" and count(None) == "–"  # not recorded: the mark of an unknown value, not a zero
    assert seconds(125) == "2 min 05 s"


def test_stats_from_done_splits_thinking_and_answer() -> None:
    done = Done(
        FinishReason.STOP,
        reasoning_tokens=30,
        final_tokens=20,
        time_to_first_token=0.2,
        decode_tokens_per_s=25.0,
        completion_ids=tuple(range(52)),
    )
    stats = AnswerStats.from_done(done, total_seconds=3.0, thinking_seconds=1.0)
    assert (stats.thinking_seconds, stats.answer_seconds, stats.tokens_per_second) == (1.0, 2.0, 25.0)
    line = readable(stats_line(stats))
    assert "30 reasoning" in line and "20 answer tokens" in line and "first token 0.20 s" in line
    assert "25.0 tok/s" in line


def test_cancelled_while_thinking_counts_all_time_as_thinking() -> None:
    done = Done(FinishReason.CANCELLED, reasoning_tokens=5, completion_ids=(1,) * 6, time_to_first_token=0.1)
    stats = AnswerStats.from_done(done, total_seconds=2.0, thinking_seconds=None)
    assert stats.thinking_seconds == 2.0 and stats.answer_seconds is None
    assert stats_line(stats).endswith("stopped")


def test_stats_line_breaks_only_between_figures() -> None:
    stats = AnswerStats(61, 80, 0.0, 0.44, 0.49, 153.1, FinishReason.LENGTH)
    figures = stats_figures(stats)
    assert figures == [
        "61 reasoning",
        "80 answer tokens",
        "first token 0.00 s",
        "thinking 0.44 s",
        "answer 0.49 s",
        "153.1 tok/s",
        "stopped at the token limit",
    ]
    line = stats_line(stats)
    assert readable(line) == " · ".join(figures)
    # The only ordinary spaces left are the ones after each separator: the line's only break opportunities.
    assert line.count(" ") == len(figures) - 1 and "/" in line
    assert readable(kept_together("153.1 tok/s")) == "153.1 tok/s" and " " not in kept_together("153.1 tok/s")


def test_request_keeps_earlier_reasoning_for_the_renderer_to_prune() -> None:
    conversation = Conversation()
    first = conversation.add_user("one")
    first.reasoning, first.answer, first.effort = "thought", "answer", ReasoningEffort.LOW
    conversation.add_user("two")
    messages = conversation.request_messages()
    assert [m.role for m in messages] == [ChatRole.USER, ChatRole.ASSISTANT, ChatRole.ASSISTANT, ChatRole.USER]
    assert messages[1].channel == ANALYSIS


def test_estimated_counts_say_so_and_survive_a_save() -> None:
    done = Done(FinishReason.STOP, reasoning_tokens=12, final_tokens=4, counts_estimated=True, time_to_first_token=0.1)
    stats = AnswerStats.from_done(done, total_seconds=1.0, thinking_seconds=0.5)
    figures = [readable(f) for f in stats_figures(stats)]
    assert figures[:3] == ["≈ 12 reasoning", "≈ 4 answer tokens", "counts estimated"]
    assert AnswerStats.from_record(stats.to_record()) == stats
    exact = AnswerStats.from_done(
        Done(FinishReason.STOP, reasoning_tokens=12), total_seconds=1.0, thinking_seconds=None
    )
    assert "counts estimated" not in stats_line(exact) and "counts_estimated" not in exact.to_record()


def test_a_lost_connection_is_kept_and_named_apart_from_other_failures() -> None:
    lost = Done(
        FinishReason.ERROR, reasoning_tokens=5, error="connection lost mid-answer (reset); the partial answer is kept"
    )
    stats = AnswerStats.from_done(lost, total_seconds=1.0, thinking_seconds=None)
    assert stats.connection_lost and stats_figures(stats)[-1] == "connection lost"
    record = stats.to_record()
    assert record["error"] == lost.error and AnswerStats.from_record(record) == stats  # the reopened chat says so
    other = AnswerStats.from_done(
        Done(FinishReason.ERROR, error="the model raised"), total_seconds=1.0, thinking_seconds=None
    )
    assert not other.connection_lost and stats_figures(other)[-1] == "failed"
    # A row saved before errors were kept (no "error" key) still opens, as a plain failure.
    old = AnswerStats.from_record({"finish_reason": "error", "reasoning_tokens": 5})
    assert old.error is None and stats_figures(old)[-1] == "failed"
    assert (
        "error"
        not in AnswerStats.from_done(Done(FinishReason.STOP), total_seconds=1.0, thinking_seconds=None).to_record()
    )


def test_counts_that_were_not_recorded_are_unknown_not_zero() -> None:
    # A saved answer without counts (an older version's, an import, one cut off): neither figure reads as 0.
    unknown = AnswerStats.from_record({"ttft": 0.21, "finish_reason": "stop"})
    assert (unknown.reasoning_tokens, unknown.answer_tokens) == (None, None)
    assert [readable(f) for f in stats_figures(unknown)] == ["tokens not recorded", "first token 0.21 s"]
    assert AnswerStats.from_record({}).reasoning_tokens is None
    assert AnswerStats.from_record({"reasoning_tokens": "many", "final_tokens": None}).answer_tokens is None
    # One of the two recorded: that one is shown, the other named as not recorded.
    assert stats_figures(AnswerStats.from_record({"final_tokens": 96}))[:2] == [
        "96 answer tokens",
        "reasoning tokens not recorded",
    ]
    assert stats_figures(AnswerStats.from_record({"reasoning_tokens": 312}))[:2] == [
        "312 reasoning tokens",
        "answer tokens not recorded",
    ]
    # Saved again, an unknown count stays absent rather than becoming a 0 that would read back as a real count.
    record = unknown.to_record()
    assert "reasoning_tokens" not in record and "final_tokens" not in record
    assert AnswerStats.from_record(record) == unknown


def test_recorded_zero_counts_still_read_as_zero() -> None:
    zero = AnswerStats.from_record({"reasoning_tokens": 0, "final_tokens": 0, "finish_reason": "stop"})
    assert (zero.reasoning_tokens, zero.answer_tokens) == (0, 0)
    assert stats_figures(zero) == ["0 reasoning", "0 answer tokens"]
    assert zero.to_record()["reasoning_tokens"] == 0 and AnswerStats.from_record(zero.to_record()) == zero
    straight = AnswerStats.from_done(
        Done(FinishReason.STOP, final_tokens=7, time_to_first_token=0.1), total_seconds=1.0, thinking_seconds=0.1
    )
    assert stats_figures(straight)[:2] == ["0 reasoning", "7 answer tokens"]


def test_turns_left_out_to_fit_the_context_are_said_and_survive_a_save() -> None:
    for dropped, said in [
        (1, "oldest turn left out to fit the context"),
        (3, "oldest 3 turns left out to fit the context"),
    ]:
        stats = AnswerStats.from_done(
            Done(FinishReason.STOP, reasoning_tokens=5, final_tokens=2, dropped_turns=dropped),
            total_seconds=1.0,
            thinking_seconds=0.5,
        )
        assert said in [readable(f) for f in stats_figures(stats)]
        assert AnswerStats.from_record(stats.to_record()) == stats
    whole = AnswerStats.from_done(Done(FinishReason.STOP, final_tokens=2), total_seconds=1.0, thinking_seconds=0.5)
    assert "left out" not in readable(stats_line(whole)) and "dropped_turns" not in whole.to_record()
