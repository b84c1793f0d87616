"""A long chat in a short context: leave out its oldest turns until the prompt leaves room for an answer.

Without this a chat that outgrows the context ends with "the prompt is longer than the context", and the user must
start over. A turn is a user message and everything after it up to the next user message (the answer, its tool calls
and their results): turns are left out whole, oldest first, so a call never loses its result and harmony's structure
holds. The last turn (the question being answered, with this answer's tool rounds so far) is always kept; if it does
not fit on its own, nothing is left out and the request fails as it would have.

The room kept for the answer is :func:`answer_room`: a quarter of the context, or the answer's ``max_tokens`` if
smaller. A reasoning model thinks before it answers: a prompt that leaves it a few hundred tokens gets an answer cut
short.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gpt_oss_desktop.engine.harmony import ChatMessage, ChatRole

Render = Callable[[Sequence[ChatMessage]], int]  # messages -> prompt length in tokens


@dataclass(frozen=True, slots=True)
class FittedConversation:
    """The messages to send, and how many of the oldest turns were left out to fit (0 when all fit)."""

    messages: tuple[ChatMessage, ...]
    dropped_turns: int = 0


def answer_room(context: int, max_tokens: int) -> int:
    """Tokens kept free for the answer when older turns must go: ``max_tokens``, at most a quarter of the context."""
    return max(1, min(max_tokens, context // 4))


def turn_starts(messages: Sequence[ChatMessage]) -> list[int]:
    """The index of each turn's first message (each user message; messages before the first user message belong to
    the first turn)."""
    starts = [i for i, message in enumerate(messages) if message.role is ChatRole.USER]
    if starts and starts[0] != 0:
        starts[0] = 0
    return starts or [0]


def fit_to_context(messages: Sequence[ChatMessage], prompt_length: Render, limit: int) -> FittedConversation:
    """``messages`` with as few of the oldest turns left out as make the prompt at most ``limit`` tokens.

    ``prompt_length`` renders messages as the request would (instructions, tools and all) and counts the tokens.
    The prompt shrinks as turns go, so the fewest is found by bisection: a few renders, even for a long chat.
    """
    everything = tuple(messages)
    if prompt_length(everything) <= limit:
        return FittedConversation(everything)
    starts = turn_starts(everything)
    if len(starts) < 2:
        return FittedConversation(everything)  # one turn: nothing may go

    def kept(dropped: int) -> tuple[ChatMessage, ...]:
        return everything[starts[dropped] :]

    # Find the fewest dropped turns in [1, len(starts) - 1] whose prompt fits.
    low, high = 1, len(starts) - 1
    if prompt_length(kept(high)) > limit:
        return FittedConversation(everything)  # even the last turn alone does not fit: the request fails as before
    while low < high:
        middle = (low + high) // 2
        if prompt_length(kept(middle)) <= limit:
            high = middle
        else:
            low = middle + 1
    return FittedConversation(kept(low), dropped_turns=low)


def _turns(messages: Sequence[ChatMessage]) -> int:
    return len(turn_starts(messages)) if messages else 0


class ContextWindow:
    """Where one conversation is cut, kept from request to request (not thread-safe: one engine thread uses it).

    Each request of a chat sends the whole chat. Cut afresh each time, the cut would move with every turn, so every
    prompt would start differently and be prefilled in full (minutes for a 20b on a CPU). Instead the first cut goes
    deep, to half the context, and later requests of the same chat are cut at the same place, so their prompts start
    alike and the KV cache's prefix is reused, until the kept part no longer leaves room for an answer; then it is cut
    again, once. A request whose older messages differ (another chat, an edited question) is cut afresh.
    """

    def __init__(self) -> None:
        self._dropped: tuple[ChatMessage, ...] = ()  # the messages the last cut left out, oldest first

    def fit(
        self, messages: Sequence[ChatMessage], prompt_length: Render, *, context: int, max_tokens: int
    ) -> FittedConversation:
        """``messages`` cut (if they must be) so the prompt leaves :func:`answer_room` for the answer."""
        chat = tuple(messages)
        limit = context - answer_room(context, max_tokens)
        cut = len(self._dropped)
        if cut and chat[:cut] == self._dropped and cut < len(chat) and chat[cut].role is ChatRole.USER:
            kept = chat[cut:]
            if prompt_length(kept) <= limit:
                return FittedConversation(kept, dropped_turns=_turns(self._dropped))
        if prompt_length(chat) <= limit:
            self._dropped = ()
            return FittedConversation(chat)
        fitted = fit_to_context(chat, prompt_length, context // 2)  # deep: the next turns fit behind it
        if not fitted.dropped_turns:
            fitted = fit_to_context(chat, prompt_length, limit)
        self._dropped = chat[: len(chat) - len(fitted.messages)]
        return fitted
