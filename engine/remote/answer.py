"""Assembles one streamed Chat Completions answer: the Deltas each chunk carries, then the Done with counts and
timings.

Reasoning is read from ``reasoning`` or ``reasoning_content``, whichever a chunk carries (our server and some
proxies send both, mirrored: only one is read). ``content`` that turns out to be raw harmony is split by
:class:`~engine.remote.harmony_content.HarmonyContentSplitter`.

Counting: the server's ``usage`` when it sends one (``stream_options.include_usage``, or Groq's ``x_groq.usage``);
reasoning tokens from ``completion_tokens_details.reasoning_tokens`` when reported, else counted here with the o200k
encoding and the Done marked ``counts_estimated``. Without usage everything is counted here (the prompt by rendering
it as harmony), also marked. Timings are the client's own: from sending the request to the first text (TTFT), to the
first answer text, and the rate of the tokens after the first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openai.types.chat import ChatCompletionChunk
from openai_harmony import HarmonyEncoding, Message, Role, TextContent

from gpt_oss_desktop.engine.events import ANALYSIS, COMMENTARY, FINAL, Delta, Done, FinishReason
from gpt_oss_desktop.engine.harmony import PYTHON_TOOL
from gpt_oss_desktop.engine.remote.harmony_content import HarmonyContentSplitter, looks_like_harmony
from gpt_oss_desktop.engine.remote.tool_wire import call_message, streamed_recipient
from gpt_oss_desktop.engine.stream_parser import message_category
from gpt_oss_desktop.engine.tools.browser.names import is_browser_call

logger = logging.getLogger(__name__)

REASONING_FIELDS = ("reasoning", "reasoning_content")
RAW_HARMONY = "content (raw harmony)"

_FINISH = {
    "stop": FinishReason.STOP,
    "tool_calls": FinishReason.STOP,
    "function_call": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "content_filter": FinishReason.STOP,
}


@dataclass(frozen=True, slots=True)
class Usage:
    """The token counts a server reported (None where it did not)."""

    prompt: int | None = None
    cached: int | None = None
    completion: int | None = None
    reasoning: int | None = None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def usage_from(raw: Mapping[str, Any]) -> Usage:
    """A usage object as JSON (OpenAI's shape; Groq's ``x_groq.usage`` is the same)."""
    completion_details = raw.get("completion_tokens_details") or {}
    prompt_details = raw.get("prompt_tokens_details") or {}
    return Usage(
        prompt=_int(raw.get("prompt_tokens")),
        cached=_int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, Mapping) else None,
        completion=_int(raw.get("completion_tokens")),
        reasoning=_int(completion_details.get("reasoning_tokens")) if isinstance(completion_details, Mapping) else None,
    )


class AnswerBuilder:
    """Feed every chunk with :meth:`chunk`; then :meth:`finish` and :meth:`done`."""

    def __init__(
        self,
        encoding: HarmonyEncoding,
        started: float,
        estimate_prompt: Callable[[], int],
        *,
        python_alias: bool = False,
        browser_alias: bool = False,
    ) -> None:
        """``python_alias``: the python tool was offered as a function named ``python`` (engine/remote/tool_wire.py),
        so a call to it is the built-in tool's call; ``browser_alias``: the same for the browser's functions."""
        self._enc = encoding
        self._python_alias = python_alias
        self._browser_alias = browser_alias
        self._started = started
        self._estimate_prompt = estimate_prompt
        self._reasoning: list[str] = []
        self._final: list[str] = []
        self._content_head = ""  # content held back until it is clear whether it is raw harmony
        self._splitter: HarmonyContentSplitter | None = None
        self._plain: bool | None = None
        self._calls: dict[int, list[str]] = {}  # index -> [name, arguments]
        self._usage: Usage | None = None
        self.finish_reason: str | None = None
        self.reasoning_field: str | None = None
        self._first_text: float | None = None
        self._first_final: float | None = None
        self._last_text: float | None = None

    # -- what arrived ----------------------------------------------------------------------------------------

    @property
    def partial_reasoning(self) -> str:
        return "".join(self._reasoning) + self._split_text(ANALYSIS)

    @property
    def partial_text(self) -> str:
        if self._splitter is not None:
            return self._split_text(FINAL)
        return "".join(self._final) + self._content_head

    def _split_other(self) -> list[str]:
        """Texts of split messages that are neither reasoning nor answer (commentary, tool calls, no channel)."""
        return [
            "".join(c.text for c in m.content if isinstance(c, TextContent))
            for m in self._split_messages()
            if message_category(m) == "other"
        ]

    def _split_text(self, channel: str) -> str:
        category = "reasoning" if channel == ANALYSIS else "final"
        messages = [m for m in self._split_messages() if message_category(m) == category]
        return "".join(c.text for m in messages for c in m.content if isinstance(c, TextContent))

    @property
    def any_text(self) -> bool:
        return self._first_text is not None

    def _split_messages(self) -> tuple[Message, ...]:
        return self._splitter.messages if self._splitter is not None else ()

    # -- feeding ---------------------------------------------------------------------------------------------

    def chunk(self, chunk: ChatCompletionChunk, now: float) -> list[Delta]:
        extra = chunk.model_extra or {}
        if chunk.usage is not None:
            self._usage = usage_from(chunk.usage.model_dump())
        elif isinstance(extra.get("x_groq"), Mapping) and isinstance(extra["x_groq"].get("usage"), Mapping):
            self._usage = usage_from(extra["x_groq"]["usage"])
        out: list[Delta] = []
        for choice in chunk.choices[:1]:  # n = 1: one choice, index 0
            delta = choice.delta
            fields = delta.model_extra or {}
            for name in REASONING_FIELDS:
                value = fields.get(name)
                if isinstance(value, str) and value:
                    self.reasoning_field = self.reasoning_field or name
                    self._reasoning.append(value)
                    out.append(Delta(ANALYSIS, value))
                    break  # the other field, when present, mirrors this one
            if delta.content:
                out.extend(self._content(delta.content))
            for call in delta.tool_calls or ():
                # OpenAI streams a call as its id and name, then its arguments in pieces, under one index.
                entry = self._calls.setdefault(call.index, ["", ""])
                if call.function is not None:
                    entry[0] += call.function.name or ""
                    arguments = call.function.arguments or ""
                    entry[1] += arguments
                    if arguments and call.index == next(iter(self._calls)):
                        recipient = streamed_recipient(entry[0], python=self._python_alias, browser=self._browser_alias)
                        channel = ANALYSIS if recipient == PYTHON_TOOL or is_browser_call(recipient) else COMMENTARY
                        out.append(Delta(channel, arguments, recipient=recipient))
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        self._stamp(out, now)
        return out

    def _content(self, text: str) -> list[Delta]:
        if self._plain is True:
            self._final.append(text)
            return [Delta(FINAL, text)]
        if self._splitter is not None:
            return self._splitter.feed(text)
        self._content_head += text
        verdict = looks_like_harmony(self._content_head)
        if verdict is None:
            return []
        head, self._content_head = self._content_head, ""
        if verdict:
            self._splitter = HarmonyContentSplitter(self._enc)
            self.reasoning_field = self.reasoning_field or RAW_HARMONY
            return self._splitter.feed(head)
        self._plain = True
        self._final.append(head)
        return [Delta(FINAL, head)]

    def finish(self, now: float) -> list[Delta]:
        """The content still held back (a short answer that never became clearly plain or harmony)."""
        out: list[Delta] = []
        if self._splitter is not None:
            out = self._splitter.finish()
        elif self._content_head:
            self._final.append(self._content_head)
            out = [Delta(FINAL, self._content_head)]
            self._content_head = ""
        self._stamp(out, now)
        return out

    def _stamp(self, out: list[Delta], now: float) -> None:
        """Note when text (and answer text) first and last arrived, for the client-side timings."""
        if not out:
            return
        self._first_text = self._first_text if self._first_text is not None else now
        self._last_text = now
        if self._first_final is None and any(d.is_final for d in out):
            self._first_final = now

    # -- the result ------------------------------------------------------------------------------------------

    def _count(self, text: str) -> int:
        return len(self._enc.encode(text, disallowed_special=())) if text else 0

    def messages(self) -> tuple[Message, ...]:
        out: list[Message] = []
        reasoning = "".join(self._reasoning)
        if reasoning:
            out.append(Message.from_role_and_content(Role.ASSISTANT, reasoning).with_channel(ANALYSIS))
        out.extend(self._split_messages())
        final = "".join(self._final)
        if final:
            out.append(Message.from_role_and_content(Role.ASSISTANT, final).with_channel(FINAL))
        # One call per round, as harmony makes them (gpt-oss stops at <|call|>; the request asks for no parallel
        # calls): a server that sends more anyway has its first one run, and the model may call the others again.
        for name, arguments in list(self._calls.values())[:1]:
            out.append(call_message(name, arguments, python=self._python_alias, browser=self._browser_alias))
        if len(self._calls) > 1:
            logger.info("the server sent %d tool calls in one answer; only the first is run", len(self._calls))
        return tuple(out)

    def done(self, finish_reason: FinishReason, *, error: str | None = None) -> Done:
        # Counted from whole texts: raw harmony was tokenised chunk by chunk to stream it, which splits words the
        # server's tokeniser kept whole, so those counts run high.
        local_reasoning = self._count("".join(self._reasoning) + self._split_text(ANALYSIS))
        local_final = self._count("".join(self._final) + self._split_text(FINAL))
        local_other = sum(self._count(a) for _, a in self._calls.values()) + sum(
            self._count(text) for text in self._split_other()
        )
        usage = self._usage
        if usage is not None and usage.completion is not None:
            completion = usage.completion
            # 0 reasoning tokens reported beside reasoning text means "not counted" (some servers fill 0 in).
            reported = usage.reasoning if usage.reasoning or not local_reasoning else None
            reasoning = reported if reported is not None else min(local_reasoning, completion)
            other = min(local_other, completion - reasoning)
            final = max(0, completion - reasoning - other)
            estimated = reported is None and local_reasoning > 0
        else:
            reasoning, final, other = local_reasoning, local_final, local_other
            estimated = True
        prompt = usage.prompt if usage is not None and usage.prompt is not None else None
        if prompt is None:
            prompt = self._estimate_prompt()
            estimated = True
        total = reasoning + final + other
        rate = 0.0
        if total >= 2 and self._first_text is not None and self._last_text is not None:
            span = self._last_text - self._first_text
            rate = (total - 1) / span if span > 0 else 0.0
        return Done(
            finish_reason=finish_reason,
            prompt_tokens=prompt,
            reused_prompt_tokens=(usage.cached or 0) if usage is not None else 0,
            reasoning_tokens=reasoning,
            final_tokens=final,
            other_tokens=other,
            time_to_first_token=None if self._first_text is None else self._first_text - self._started,
            time_to_first_final_token=None if self._first_final is None else self._first_final - self._started,
            decode_tokens_per_s=rate,
            error=error,
            messages=self.messages(),
            malformed=self._splitter.malformed if self._splitter is not None else None,
            counts_estimated=estimated,
        )

    def finish_reason_enum(self) -> FinishReason | None:
        return _FINISH.get(self.finish_reason or "", FinishReason.STOP) if self.finish_reason else None
