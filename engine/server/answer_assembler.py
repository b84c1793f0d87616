"""Engine events sorted into what both APIs return: reasoning text, answer text, whole tool calls, and the finish.

Routing follows :class:`~engine.events.Delta`: text with a recipient is a tool call's arguments (returned whole,
from the :class:`~engine.events.ToolCall` event, never as answer text); ``analysis`` is reasoning; ``final``,
``commentary`` preambles and salvaged text on no channel are the answer, so a malformed header never loses it.
``stop`` sequences cut the answer (:class:`StopMatcher`); the handler then cancels the request.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from gpt_oss_desktop.engine.events import Delta, Done, Event, FinishReason, ToolCall
from gpt_oss_desktop.engine.server.stop_sequences import StopMatcher


class PieceKind(enum.Enum):
    REASONING = "reasoning"
    CONTENT = "content"
    TOOL_CALL = "tool_call"


@dataclass(frozen=True, slots=True)
class Piece:
    """Something to stream now: text of a kind, or one whole tool call."""

    kind: PieceKind
    text: str = ""
    call: ToolCall | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int

    @classmethod
    def of(cls, done: Done) -> Usage:
        return cls(done.prompt_tokens, done.reused_prompt_tokens, done.completion_tokens, done.reasoning_tokens)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class AnswerAssembler:
    def __init__(self, stop: Sequence[str] = ()) -> None:
        self._matcher = StopMatcher(stop)
        self.reasoning: list[str] = []
        self.content: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.done: Done | None = None

    @property
    def stopped_by_sequence(self) -> bool:
        """A stop sequence matched: the caller cancels the request and finishes with "stop"."""
        return self._matcher.stopped

    def feed(self, event: Event) -> list[Piece]:
        if isinstance(event, Done):
            self.done = event
            tail = self._matcher.flush()
            return self._content(tail)
        if isinstance(event, ToolCall):
            self.tool_calls.append(event)
            return [Piece(PieceKind.TOOL_CALL, call=event)]
        return self._delta(event)

    def finish_reason(self) -> str:
        """OpenAI's finish_reason: ``stop``, ``length`` or ``tool_calls``."""
        if self._matcher.stopped:
            return "stop"
        if self.tool_calls:
            return "tool_calls"
        done = self.done
        if done is not None and done.finish_reason is FinishReason.LENGTH:
            return "length"
        return "stop"

    @property
    def failed(self) -> str | None:
        """Why the generation failed (model error, or cancelled by the server), else None."""
        done = self.done
        if done is None or self._matcher.stopped:
            return None
        if done.finish_reason is FinishReason.ERROR:
            return done.error or "the model failed"
        if done.finish_reason is FinishReason.CANCELLED:
            return "the request was cancelled (the server is shutting down)"
        return None

    def _delta(self, delta: Delta) -> list[Piece]:
        if delta.is_tool_call or not delta.text:
            return []  # the arguments arrive whole in the ToolCall event
        if delta.is_reasoning:
            self.reasoning.append(delta.text)
            return [Piece(PieceKind.REASONING, delta.text)]
        return self._content(self._matcher.feed(delta.text))

    def _content(self, text: str) -> list[Piece]:
        if not text:
            return []
        self.content.append(text)
        return [Piece(PieceKind.CONTENT, text)]
