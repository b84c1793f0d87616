"""The chat as the engine sees it: finished turns plus the one being answered (no Qt, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort


@dataclass(slots=True)
class Turn:
    """A user message and the answer to it (empty until one finishes)."""

    user: str
    reasoning: str = ""
    answer: str = ""
    effort: ReasoningEffort | None = None

    @property
    def answered(self) -> bool:
        return self.effort is not None


class Conversation:
    """Turns in order. The request for the next answer is every turn so far, reasoning included: the harmony
    renderer prunes earlier turns' reasoning itself, so the record here stays complete."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []

    def add_user(self, text: str) -> Turn:
        turn = Turn(text)
        self.turns.append(turn)
        return turn

    def clear(self) -> None:
        self.turns.clear()

    @property
    def last(self) -> Turn | None:
        return self.turns[-1] if self.turns else None

    def request_messages(self) -> tuple[ChatMessage, ...]:
        """History for answering the last turn (whose own answer, if any, is left out: it is being replaced)."""
        out: list[ChatMessage] = []
        for index, turn in enumerate(self.turns):
            out.append(ChatMessage.user(turn.user))
            if index == len(self.turns) - 1:
                break
            if turn.reasoning:
                out.append(ChatMessage.analysis(turn.reasoning))
            if turn.answer:
                out.append(ChatMessage.final(turn.answer))
        return tuple(out)
