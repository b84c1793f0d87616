"""Per-answer statistics and their wording (pure functions; no Qt, no torch)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpt_oss_desktop.engine.events import Done, FinishReason
from gpt_oss_desktop.engine.remote.errors import CONNECTION_LOST_PREFIX


@dataclass(frozen=True, slots=True)
class AnswerStats:
    """What the stats line under an answer shows. Times in seconds; None where it did not happen.

    A token count is None where it was not recorded: a saved answer without it (written by an older version,
    imported, or cut off before its end). The line and the reasoning panel say so; they never show it as 0, which
    stays a real count (an answer that did not reason).
    """

    reasoning_tokens: int | None
    answer_tokens: int | None
    time_to_first_token: float | None
    thinking_seconds: float | None
    answer_seconds: float | None
    tokens_per_second: float
    finish_reason: FinishReason
    # The server reported no reasoning tokens, so the counts were made with the o200k tokenizer on this side
    # (engine/remote); the line says so rather than pass an estimate off as the server's count.
    counts_estimated: bool = False
    # Tool calls made while answering (a chat's tool loop) and the time they ran: neither thinking nor decoding.
    tool_calls: int = 0
    tool_seconds: float = 0.0
    # What ended the answer early, as the chat showed it under the answer ("connection lost mid-answer (…)", a tool
    # limit reached); kept so a reopened chat shows it again (it is one line, never a key: engine/remote/errors.py).
    error: str | None = None
    # The thinking budget (the sampling menu's) ended the reasoning, or kept it from starting: the answer came
    # after less thought than the model would have given it.
    reasoning_cut: bool = False
    # The chat was longer than the context: its oldest turns were left out of this answer's prompt.
    dropped_turns: int = 0

    @property
    def connection_lost(self) -> bool:
        """The server's connection dropped mid-answer: the answer is partial and Retry redoes it."""
        return self.finish_reason is FinishReason.ERROR and (self.error or "").startswith(CONNECTION_LOST_PREFIX)

    @classmethod
    def from_done(cls, done: Done, *, total_seconds: float, thinking_seconds: float | None) -> AnswerStats:
        """Combine the engine's counts with the GUI's own clock.

        Args:
            done: the stream's last event.
            total_seconds: from sending the request to receiving ``done``.
            thinking_seconds: from sending the request to the first answer text (None if no answer started).
        """
        if thinking_seconds is None:
            # Cut off (or cancelled) while still thinking: all of it was thinking, if there was any reasoning.
            thinking = total_seconds if done.reasoning_tokens else None
            answer = None
        else:
            thinking = thinking_seconds if done.reasoning_tokens else None
            answer = max(0.0, total_seconds - thinking_seconds)
        rate = done.decode_tokens_per_s
        if rate <= 0 and done.time_to_first_token is not None and total_seconds > done.time_to_first_token:
            rate = done.completion_tokens / (total_seconds - done.time_to_first_token)
        return cls(
            reasoning_tokens=done.reasoning_tokens,
            answer_tokens=done.final_tokens,
            time_to_first_token=done.time_to_first_token,
            thinking_seconds=thinking,
            answer_seconds=answer,
            tokens_per_second=rate,
            finish_reason=done.finish_reason,
            counts_estimated=done.counts_estimated,
            error=done.error or None,
            reasoning_cut=done.reasoning_cut,
            dropped_turns=done.dropped_turns,
        )

    def to_record(self) -> dict[str, Any]:
        """The JSON kept with a saved answer (the key names of app.history.AnswerStats)."""
        # A count that was not recorded stays absent: written as 0 it would read back as a real count.
        counts = {"reasoning_tokens": self.reasoning_tokens, "final_tokens": self.answer_tokens}
        return {
            **{key: value for key, value in counts.items() if value is not None},
            "ttft": self.time_to_first_token,
            "thinking_s": self.thinking_seconds,
            "answer_s": self.answer_seconds,
            "tok_s": self.tokens_per_second,
            "finish_reason": self.finish_reason.value,
            **({"counts_estimated": True} if self.counts_estimated else {}),
            **({"tool_calls": self.tool_calls, "tool_s": self.tool_seconds} if self.tool_calls else {}),
            **({"error": self.error} if self.error else {}),
            **({"reasoning_cut": True} if self.reasoning_cut else {}),
            **({"dropped_turns": self.dropped_turns} if self.dropped_turns else {}),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AnswerStats:
        """Back from :meth:`to_record`. Tolerant: stats are open JSON written by older or newer versions, and a
        saved chat must still open with a missing or odd key (it only affects the stats line)."""

        def number(key: str) -> float | None:
            value = record.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        def tokens(key: str) -> int | None:
            # Absent (or odd) is "not recorded", not 0: see the class docstring.
            value = number(key)
            return None if value is None else int(value)

        try:
            finish = FinishReason(record.get("finish_reason", FinishReason.STOP))
        except ValueError:
            finish = FinishReason.STOP
        return cls(
            reasoning_tokens=tokens("reasoning_tokens"),
            answer_tokens=tokens("final_tokens"),
            time_to_first_token=number("ttft"),
            thinking_seconds=number("thinking_s"),
            answer_seconds=number("answer_s"),
            tokens_per_second=number("tok_s") or 0.0,
            finish_reason=finish,
            counts_estimated=record.get("counts_estimated") is True,
            tool_calls=int(number("tool_calls") or 0),
            tool_seconds=number("tool_s") or 0.0,
            error=error if isinstance(error := record.get("error"), str) and error else None,
            reasoning_cut=record.get("reasoning_cut") is True,
            dropped_turns=max(0, int(number("dropped_turns") or 0)),
        )


# How a value that is not known reads where a figure would stand (as the compare view's empty cells do).
_UNKNOWN = "–"


def count(n: int | None) -> str:
    """1843 -> '1,843'; None (a count that was not recorded) -> '–', the mark of an unknown value, never '0'."""
    return _UNKNOWN if n is None else f"{n:,}"


def seconds(value: float) -> str:
    """A short duration: '0.42 s', '12.3 s', '2 min 05 s'."""
    if value < 1:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


def plural(n: int, word: str) -> str:
    return f"{count(n)} {word}{'' if n == 1 else 's'}"


def thinking_header(seconds_: float | None, tokens: int | None, *, live: bool) -> str:
    """The reasoning panel's header: 'Thinking…' while live, then 'Thought for 12.3 s · 1,843 tokens'.

    What is not known is left out: 'Reasoning · 1,843 tokens' without the time, 'Thought for 12.3 s' without the
    count, and just 'Reasoning' without either (the stats line under the answer says the counts were not recorded).
    """
    if live:
        return "Thinking…"
    head = "Reasoning" if seconds_ is None else f"Thought for {seconds(seconds_)}"
    return head if tokens is None else f"{head} · {plural(tokens, 'token')}"


_FINISH_NOTES = {
    FinishReason.STOP: "",
    FinishReason.LENGTH: "stopped at the token limit",
    FinishReason.CANCELLED: "stopped",
    FinishReason.ERROR: "failed",
}


# Wrapping the stats line may break between figures, never inside one ("153.1 tok/" + "s" on the next line): the
# spaces inside a figure are no-break spaces, a word joiner on each side of "/" forbids a break there, and the
# separator stays at the end of the figure before it rather than starting a line.
_NO_BREAK_SPACE = "\u00a0"
_WORD_JOINER = "\u2060"
_SEPARATOR = f"{_NO_BREAK_SPACE}· "


def kept_together(figure: str) -> str:
    """``figure`` (e.g. "153.1 tok/s") with every break opportunity inside it removed."""
    return figure.replace(" ", _NO_BREAK_SPACE).replace("/", f"{_WORD_JOINER}/{_WORD_JOINER}")


def readable(text: str) -> str:
    """Text made with :func:`kept_together` back to plain spaces and slashes (to read or search it)."""
    return text.replace(_WORD_JOINER, "").replace(_NO_BREAK_SPACE, " ")


def stats_figures(stats: AnswerStats) -> list[str]:
    """The figures under an answer, e.g. ['312 reasoning', '96 answer tokens', 'first token 0.21 s', …]."""
    parts = _count_figures(stats)
    if stats.counts_estimated:
        parts.append("counts estimated")
    if stats.time_to_first_token is not None:
        parts.append(f"first token {seconds(stats.time_to_first_token)}")
    if stats.thinking_seconds is not None:
        parts.append(f"thinking {seconds(stats.thinking_seconds)}")
    if stats.reasoning_cut:
        parts.append("thinking cut at the budget")
    if stats.answer_seconds is not None:
        parts.append(f"answer {seconds(stats.answer_seconds)}")
    if stats.tokens_per_second > 0:
        parts.append(f"{stats.tokens_per_second:.1f} tok/s")
    if stats.tool_calls:
        parts.append(f"{plural(stats.tool_calls, 'tool call')} {seconds(stats.tool_seconds)}")
    if stats.dropped_turns:
        turns = "turn" if stats.dropped_turns == 1 else f"{count(stats.dropped_turns)} turns"
        parts.append(f"oldest {turns} left out to fit the context")
    note = "connection lost" if stats.connection_lost else _FINISH_NOTES[stats.finish_reason]
    if note:
        parts.append(note)
    return parts


def _count_figures(stats: AnswerStats) -> list[str]:
    """The token counts of the line: ['312 reasoning', '96 answer tokens'], or what is known of them and that the
    rest was not recorded ('tokens not recorded' when neither was)."""
    about = "≈ " if stats.counts_estimated else ""
    reasoning, answer = stats.reasoning_tokens, stats.answer_tokens
    if reasoning is not None and answer is not None:
        return [f"{about}{count(reasoning)} reasoning", f"{about}{count(answer)} answer tokens"]
    if reasoning is None and answer is None:
        return ["tokens not recorded"]
    if reasoning is None:
        return [f"{about}{count(answer)} answer tokens", "reasoning tokens not recorded"]
    return [f"{about}{count(reasoning)} reasoning tokens", "answer tokens not recorded"]


def stats_line(stats: AnswerStats) -> str:
    """One line under an answer, e.g. '312 reasoning · 96 answer tokens · first token 0.21 s · …', which wraps
    only between figures (:func:`kept_together`; :func:`readable` gives it back with plain spaces)."""
    return _SEPARATOR.join(kept_together(part) for part in stats_figures(stats))


def memory(num_bytes: int) -> str:
    """Process memory: '812 MB', '13.4 GB'."""
    if num_bytes >= 10**9:
        return f"{num_bytes / 1e9:.1f} GB"
    return f"{num_bytes / 1e6:.0f} MB"


def context_usage(used: int, total: int) -> str:
    return f"Context {count(used)} / {count(total)}"
