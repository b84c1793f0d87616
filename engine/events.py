"""What the engine reports: the typed events a generation stream yields (text :class:`Delta` s, then exactly one
:class:`Done`), and the progress of a model load (:data:`LoadProgress`)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from openai_harmony import Message

from gpt_oss_desktop.engine.vocab import CALL

LoadProgress = Callable[[float, str], None]
"""``on_progress(fraction 0..1, what is happening)``. The engine calls it on the loading thread, where raising
:class:`~engine.errors.LoadCancelled` cancels the load; the app's backend calls it on the GUI thread."""

# Channel names the model uses (harmony docs/format.md).
ANALYSIS: str = "analysis"
COMMENTARY: str = "commentary"
FINAL: str = "final"
# Channel of text whose header named no channel (malformed or salvaged output).
NO_CHANNEL: str = ""


class FinishReason(enum.StrEnum):
    """Why a generation ended."""

    STOP = "stop"  # the model emitted <|return|> (answer complete) or <|call|> (tool call)
    LENGTH = "length"  # max_tokens reached, or the context is full
    CANCELLED = "cancelled"  # the caller's cancel event was set
    ERROR = "error"  # the model raised; see Done.error


@dataclass(frozen=True, slots=True)
class Delta:
    """New text of the message being generated.

    Route by ``recipient`` first: a message with a recipient (e.g. ``functions.get_weather``) is a tool call
    whatever its channel (the model sometimes calls tools on ``analysis``). Otherwise ``channel`` says where the
    text belongs: ``analysis`` = reasoning, ``final`` = the answer, ``commentary`` = user-visible preamble.
    """

    channel: str
    text: str
    recipient: str | None = None

    @property
    def is_tool_call(self) -> bool:
        return self.recipient is not None

    @property
    def is_reasoning(self) -> bool:
        return self.recipient is None and self.channel == ANALYSIS

    @property
    def is_final(self) -> bool:
        return self.recipient is None and self.channel == FINAL


@dataclass(frozen=True, slots=True)
class Done:
    """The last event of a stream: statistics, why it ended, and the parsed assistant messages.

    Token counts: every completion token (header tokens, content tokens and the closing <|end|>/<|return|>/<|call|>)
    is counted to the message it belongs to. A message without a recipient on ``analysis`` counts as reasoning, on
    ``final`` as final; everything else (commentary, tool calls on any channel, malformed or unfinished headers,
    stray tokens) counts as other. So ``reasoning + final + other == len(completion_ids)``.

    Timings are in seconds from the start of the request: ``time_to_first_token`` includes prefill;
    ``time_to_first_final_token`` is None when no final text was produced. ``decode_tokens_per_s`` covers the
    tokens after the first one (model decode + sampling time only; 0.0 when fewer than two tokens).
    """

    finish_reason: FinishReason
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0  # prompt tokens found in the KV cache and not recomputed
    reasoning_tokens: int = 0
    final_tokens: int = 0
    other_tokens: int = 0
    time_to_first_token: float | None = None
    time_to_first_final_token: float | None = None
    prefill_seconds: float = 0.0
    decode_tokens_per_s: float = 0.0
    error: str | None = None
    completion_ids: tuple[int, ...] = ()
    messages: tuple[Message, ...] = field(default=())
    malformed: str | None = None  # what was wrong with the model's harmony output, if anything
    # True when some token counts were counted on this machine (o200k) instead of reported by the server that
    # generated the answer (a remote server without usage, or without reasoning_tokens): they may be a little off.
    counts_estimated: bool = False
    # True when a reasoning budget (SamplingParams.reasoning_budget) ended the thinking, or kept it from starting.
    reasoning_cut: bool = False
    # The oldest turns of the conversation left out so the prompt fit the context (engine/context_fit.py); 0: none.
    dropped_turns: int = 0

    @property
    def completion_tokens(self) -> int:
        # A remote answer has no token ids, only counts (the server's usage, or estimates).
        if self.completion_ids:
            return len(self.completion_ids)
        return self.reasoning_tokens + self.final_tokens + self.other_tokens

    @property
    def tool_call(self) -> Message | None:
        """The tool call the model stopped on with <|call|>, else None (a cut-off call is not runnable)."""
        if (
            self.finish_reason is FinishReason.STOP
            and self.completion_ids
            and self.completion_ids[-1] == CALL
            and self.messages
            and self.messages[-1].recipient is not None
        ):
            return self.messages[-1]
        return None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete function call the model made: a message with a recipient that closed (usually with ``<|call|>``).

    Emitted by the stream parser when the call's message closes, after the :class:`Delta` s that streamed its
    arguments, so a consumer that only wants whole calls reads this and skips those deltas.
    ``recipient`` is the full harmony recipient (``functions.get_weather``); ``arguments`` is the raw text the model
    wrote (JSON when ``content_type`` is ``<|constrain|>json``, but not validated here: a server passes it on as the
    model wrote it).
    """

    recipient: str
    arguments: str
    channel: str = COMMENTARY
    content_type: str | None = None

    @property
    def name(self) -> str:
        """The function's name without its namespace (``get_weather`` for ``functions.get_weather``)."""
        return self.recipient.split(".", 1)[1] if "." in self.recipient else self.recipient


Event = Delta | ToolCall | Done
