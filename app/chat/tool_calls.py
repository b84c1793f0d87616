"""The tool calls of one answer, as the chat keeps them: what the model asked, what the user decided, what came back
(no Qt here).

A :class:`ToolCallRecord` is both the card in the chat and the history's record (``to_record``/``from_record``, the
JSON stored with the answer), and it rebuilds the harmony messages the next round's prompt needs
(:meth:`ToolCallRecord.messages`): the round's reasoning, the call, and the result on the call's channel.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from openai_harmony import Message, TextContent

from gpt_oss_desktop.engine.events import ANALYSIS, COMMENTARY, Done, FinishReason
from gpt_oss_desktop.engine.harmony import PYTHON_TOOL, ChatMessage
from gpt_oss_desktop.engine.tools.base import ToolOutcome, ToolStatus
from gpt_oss_desktop.engine.tools.browser.names import is_browser_call
from gpt_oss_desktop.engine.tools.builtin_functions import FUNCTIONS_NAMESPACE

# A model that keeps calling tools (a loop it cannot leave) is stopped: after this many calls in one answer the next
# call is answered with "limit reached" instead of run, and the one after that ends the answer.
MAX_TOOL_CALLS: Final = 8
# The result's text, as the model and the card get it, before the tool has run.
PENDING: Final = ""


class Approval(enum.StrEnum):
    """The user's answer to "run this call?"."""

    ONCE = "once"
    ALWAYS = "always"  # and do not ask again for this tool
    DENY = "deny"


class CallState(enum.StrEnum):
    """Where a call is: the card's status before the call has an outcome."""

    WRITING = "writing"  # the model is still writing its arguments
    WAITING = "waiting"  # for the user's approval
    RUNNING = "running"
    DONE = "done"  # see ``status``


def tool_name(recipient: str) -> str:
    """What the user calls a tool: ``python``, ``get_current_time``, an MCP tool's name (no ``functions.``)."""
    return recipient.strip().removeprefix(FUNCTIONS_NAMESPACE)


_TITLE_CHARS: Final = 60


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _TITLE_CHARS else text[: _TITLE_CHARS - 1] + "…"


def call_title(recipient: str, arguments: str) -> str:
    """A card's title: what a browser call does ("Web search · “tides”", "Open page · example.org/tides"), else
    ``Tool call · <name>`` (also for a browser call whose arguments are not readable yet)."""
    generic = f"Tool call · {tool_name(recipient)}"
    if not is_browser_call(recipient):
        return generic
    try:
        args = json.loads(arguments)
    except ValueError:
        return generic
    if not isinstance(args, dict):
        return generic
    action = recipient.strip().removeprefix("browser.")
    if action == "search" and isinstance(args.get("query"), str):
        return f"Web search · “{_short(args['query'])}”"
    if action == "find" and isinstance(args.get("pattern"), str):
        return f"Find on page · “{_short(args['pattern'])}”"
    if action == "open":
        link = args.get("id", -1)
        if isinstance(link, str) and not link.strip().lstrip("-").isdigit():
            return f"Open page · {_short(link.strip().removeprefix('https://').removeprefix('http://'))}"
        if isinstance(link, int | str) and not isinstance(link, bool) and int(link) >= 0:
            return f"Open link {int(link)}"
        return "Scroll a page"
    return generic


def _text(message: Message) -> str:
    return "".join(part.text for part in message.content if isinstance(part, TextContent))


@dataclass(slots=True)
class ToolCallRecord:
    """One call and its result.

    ``recipient`` is as the model wrote it (``python``, ``functions.get_current_time``); ``reasoning`` is the
    analysis it wrote before the call in the same round (sent back while the loop runs: harmony keeps a turn's
    reasoning until its final answer); ``approval`` says how it came to run or not (``asked``, ``always``,
    ``denied``, ``never``).
    """

    recipient: str
    arguments: str
    channel: str = COMMENTARY
    content_type: str | None = None
    reasoning: str = ""
    state: CallState = CallState.WRITING
    status: ToolStatus | None = None
    output: str = PENDING
    seconds: float = 0.0
    approval: str = ""
    notice: str = ""
    # What the call would do, in words, asked before it runs (the browser's "Open https://…?"); not saved
    question: str = ""

    @property
    def is_python(self) -> bool:
        return self.recipient.strip() == PYTHON_TOOL

    @property
    def name(self) -> str:
        """What the card calls the tool: ``python``, ``get_current_time``, an MCP tool's name."""
        return tool_name(self.recipient)

    @classmethod
    def from_done(cls, done: Done) -> ToolCallRecord | None:
        """The call a round stopped on (its last message, closed with ``<|call|>``), with that round's reasoning;
        None when the round ended any other way (an answer, a stop, the token limit)."""
        if done.finish_reason is not FinishReason.STOP or not done.messages:
            return None
        call = done.messages[-1]
        if call.recipient is None or (done.completion_ids and done.tool_call is None):
            return None  # a cut-off call (no <|call|>) is not runnable
        reasoning = "".join(
            _text(m) for m in done.messages[:-1] if m.recipient is None and (m.channel or "") == ANALYSIS
        )
        return cls(
            recipient=call.recipient,
            arguments=_text(call),
            channel=call.channel or COMMENTARY,
            content_type=call.content_type,
            reasoning=reasoning,
        )

    def finish(self, outcome: ToolOutcome, approval: str) -> None:
        self.state = CallState.DONE
        self.status = outcome.status
        self.output = outcome.output
        self.seconds = outcome.seconds
        self.notice = outcome.notice
        self.approval = approval

    def messages(self) -> list[ChatMessage]:
        """The harmony messages of this call for the next prompt: reasoning, the call, its result."""
        out = [ChatMessage.analysis(self.reasoning)] if self.reasoning else []
        out.append(
            ChatMessage.tool_call(
                self.recipient.strip(), self.arguments, channel=self.channel, content_type=self.content_type
            )
        )
        out.append(ChatMessage.tool_result(self.recipient.strip(), self.output, channel=self.channel))
        return out

    def to_record(self) -> dict[str, Any]:
        """The JSON kept with the saved answer (app/history: ``Message.tool_calls``)."""
        return {
            "recipient": self.recipient,
            "arguments": self.arguments,
            "channel": self.channel,
            "content_type": self.content_type,
            "reasoning": self.reasoning,
            "status": (self.status or ToolStatus.CANCELLED).value,
            "output": self.output,
            "seconds": round(self.seconds, 3),
            "approval": self.approval,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ToolCallRecord:
        """Back from :meth:`to_record`; tolerant (older or newer versions wrote it), like the answer's stats."""

        def text(key: str, default: str = "") -> str:
            value = record.get(key)
            return value if isinstance(value, str) else default

        try:
            status = ToolStatus(text("status", ToolStatus.CANCELLED.value))
        except ValueError:
            status = ToolStatus.ERROR
        seconds = record.get("seconds")
        return cls(
            recipient=text("recipient", "tool"),
            arguments=text("arguments"),
            channel=text("channel", COMMENTARY),
            content_type=record.get("content_type") if isinstance(record.get("content_type"), str) else None,
            reasoning=text("reasoning"),
            state=CallState.DONE,
            status=status,
            output=text("output"),
            seconds=float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else 0.0,
            approval=text("approval"),
        )


def thinking_left(budget: int | None, rounds: Sequence[Done]) -> int | None:
    """The thinking budget (``SamplingParams.reasoning_budget``) left for an answer's next round: ``budget`` less the
    reasoning its earlier ``rounds`` wrote, never below 0 (the engine then answers without thinking); None (no
    limit) stays None.

    The budget is the answer's, not each request's: without this, every round after a tool call would think the
    whole budget again. The rounds' counts are their reasoning tokens as the stats show them, which include each
    analysis message's few header tokens that the engine's count leaves out: a continuation may get a few tokens
    less than an exact count would leave it, never more.
    """
    if budget is None:
        return None
    return max(0, budget - sum(r.reasoning_tokens for r in rounds))


def merge_rounds(rounds: Sequence[Done]) -> Done:
    """One answer's :class:`Done` from the rounds of its tool loop: token counts add up, the prompt is the last
    round's (what the context holds now), the first token is the first round's, the decode rate covers every
    round's decoding (tool time is not decode time), and the thinking was cut if any round's was."""
    if len(rounds) == 1:
        return rounds[0]
    last = rounds[-1]
    decoded = sum(max(0, r.completion_tokens - 1) for r in rounds)
    decode_seconds = sum(
        max(0, r.completion_tokens - 1) / r.decode_tokens_per_s for r in rounds if r.decode_tokens_per_s > 0
    )
    return Done(
        finish_reason=last.finish_reason,
        prompt_tokens=last.prompt_tokens,
        reused_prompt_tokens=last.reused_prompt_tokens,
        reasoning_tokens=sum(r.reasoning_tokens for r in rounds),
        final_tokens=sum(r.final_tokens for r in rounds),
        other_tokens=sum(r.other_tokens for r in rounds),
        time_to_first_token=rounds[0].time_to_first_token,
        time_to_first_final_token=next(
            (r.time_to_first_final_token for r in rounds if r.time_to_first_final_token is not None), None
        ),
        prefill_seconds=sum(r.prefill_seconds for r in rounds),
        decode_tokens_per_s=decoded / decode_seconds if decode_seconds > 0 else 0.0,
        error=next((r.error for r in reversed(rounds) if r.error), None),
        completion_ids=tuple(token for r in rounds for token in r.completion_ids),
        messages=tuple(message for r in rounds for message in r.messages),
        malformed=next((r.malformed for r in reversed(rounds) if r.malformed), None),
        counts_estimated=any(r.counts_estimated for r in rounds),
        reasoning_cut=any(r.reasoning_cut for r in rounds),
        dropped_turns=max(r.dropped_turns for r in rounds),
    )
