"""The chat as the engine sees it: finished turns plus the one being answered (no Qt, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpt_oss_desktop.app.chat.tool_calls import ToolCallRecord
from gpt_oss_desktop.app.history.attachments import Attachment, message_text
from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort


@dataclass(slots=True)
class Turn:
    """A user message (what was typed, and the files attached to it) and the answer to it (empty until one
    finishes), with the tool calls made while answering (filled round by round while the answer's tool loop
    runs)."""

    user: str
    reasoning: str = ""
    answer: str = ""
    effort: ReasoningEffort | None = None
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    attachments: tuple[Attachment, ...] = ()

    @property
    def user_text(self) -> str:
        """The user message as the model reads it: the typed text, then each attached file's block."""
        return message_text(self.user, self.attachments)

    @property
    def answered(self) -> bool:
        return self.effort is not None


class Conversation:
    """Turns in order. The request for the next answer is every turn so far, reasoning included: the harmony
    renderer prunes earlier turns' reasoning itself, so the record here stays complete."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []

    def add_user(self, text: str, attachments: tuple[Attachment, ...] = ()) -> Turn:
        turn = Turn(text, attachments=attachments)
        self.turns.append(turn)
        return turn

    def clear(self) -> None:
        self.turns.clear()

    @property
    def last(self) -> Turn | None:
        return self.turns[-1] if self.turns else None

    def request_messages(self) -> tuple[ChatMessage, ...]:
        """History for answering the last turn (whose own answer, if any, is left out: it is being replaced; its tool
        calls so far are the loop in progress, and stay). Each turn's calls and results come before its answer; the
        renderer drops finished turns' reasoning, the round reasoning of the calls included. Every turn's attached
        files are sent with it, each time: the model keeps nothing between requests."""
        out: list[ChatMessage] = []
        for index, turn in enumerate(self.turns):
            out.append(ChatMessage.user(turn.user_text))
            for call in turn.tool_calls:
                out.extend(call.messages())
            if index == len(self.turns) - 1:
                break
            if turn.reasoning:
                out.append(ChatMessage.analysis(turn.reasoning))
            if turn.answer:
                out.append(ChatMessage.final(turn.answer))
        return tuple(out)
