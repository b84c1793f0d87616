"""Holding the model to a request's channel rules by masking its logits: a call it must make, a thinking budget.

Two requests a model may ignore when only asked in words are enforced here, on the harmony structure and nowhere
else (the message bodies stay the model's own):

- **Must call** (``tool_choice`` "required" or a named function): every message header is held to
  ``<|start|>assistant<|channel|>analysis<|message|>`` (thinking, once) or
  ``<|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>`` for an allowed name,
  the form the model itself writes a call in. An analysis message must close with ``<|end|>`` and a call with
  ``<|call|>``, which ends the request as any call does. The final channel is unreachable.
- **Reasoning budget** (the most analysis tokens one request may write): once the analysis bodies have that many
  tokens, the open analysis message is closed (``<|end|>``) and every later header is held to ``final`` or
  ``commentary`` (or, with must call, to a call): no more thinking. A budget of 0 skips thinking altogether.

Outside those rules the model is free: a request with a budget that it never reaches samples exactly as without one.
The header tokens are the harmony encoding's own encoding of that text, so the model is held to the tokens it writes
unconstrained. The prompt ends with ``<|start|>assistant``, so the completion starts inside a header's role part.

:class:`ToolCallRule` is a request's (immutable, part of its :class:`~engine.sampling.SamplingParams`);
:class:`ChannelGuard` is one sequence's position in the rules.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gpt_oss_desktop.engine.vocab import CALL, CHANNEL, END, MESSAGE, RETURN, START, get_encoding

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding


@dataclass(frozen=True, slots=True)
class HeaderWords:
    """The token ids of the words a harmony header is made of, as the encoding writes them."""

    assistant: tuple[int, ...]
    analysis: tuple[int, ...]
    final: tuple[int, ...]
    commentary: tuple[int, ...]

    @classmethod
    def of(cls, encoding: HarmonyEncoding) -> HeaderWords:
        def tokens(text: str) -> tuple[int, ...]:
            return tuple(encoding.encode(text, allowed_special="all"))

        return cls(tokens("assistant"), tokens("analysis"), tokens("final"), tokens("commentary"))


@functools.cache
def default_header_words() -> HeaderWords:
    """The header words of the bundled o200k harmony encoding (every gpt-oss model's)."""
    return HeaderWords.of(get_encoding())


@dataclass(frozen=True, slots=True)
class ToolCallRule:
    """The calls a must-call request may make: for each allowed function, the header tail after ``<|channel|>``
    up to and including ``<|message|>``."""

    calls: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if not self.calls:
            raise ValueError("a tool-call rule must allow at least one call")
        if any(not tail or tail[-1] != MESSAGE or MESSAGE in tail[:-1] for tail in self.calls):
            raise ValueError("each call's header tail must end with <|message|> and hold it only there")

    @classmethod
    def for_functions(cls, encoding: HarmonyEncoding, names: Sequence[str]) -> ToolCallRule:
        """The rule that lets the model call one of ``names`` (the request's function names)."""
        if not names:
            raise ValueError("a tool-call rule needs at least one function name")
        calls = [f"commentary to=functions.{name} <|constrain|>json" for name in names]
        return cls(tuple((*encoding.encode(text, allowed_special="all"), MESSAGE) for text in calls))


class _Kind(enum.Enum):
    ANALYSIS = enum.auto()
    CALL = enum.auto()  # a must-call request's call
    OTHER = enum.auto()  # final, a preamble, a call the model chose freely


@dataclass(frozen=True, slots=True)
class _Tail:
    tokens: tuple[int, ...]  # after <|channel|>; ends with <|message|>, or the model finishes the header freely
    kind: _Kind


class _Place(enum.Enum):
    ROLE = enum.auto()  # after <|start|>: the role, then (held) straight to <|channel|>
    HEADER = enum.auto()  # after <|channel|>, until <|message|>
    BODY = enum.auto()  # a message's text, until it closes
    AFTER_END = enum.auto()  # a message closed with <|end|>; the next one starts with <|start|>


# How each kind of message may not close under must call: analysis closes with <|end|>, a call with <|call|>.
_BANS: dict[_Kind, tuple[int, ...]] = {_Kind.ANALYSIS: (RETURN, CALL), _Kind.CALL: (RETURN, END)}


class ChannelGuard:
    """One sequence's place in its request's rules: which tokens it may write next, advanced token by token.

    Args:
        must_call: the calls the answer must be one of, or None.
        reasoning_budget: the most analysis tokens, or None for no limit.
        words: the encoding's header words (default: the bundled encoding's).
    """

    def __init__(
        self,
        *,
        must_call: ToolCallRule | None = None,
        reasoning_budget: int | None = None,
        words: HeaderWords | None = None,
    ) -> None:
        self.words = words if words is not None else default_header_words()
        self.must_call = must_call
        self.reasoning_budget = reasoning_budget
        self.analysis_tokens = 0  # written in analysis bodies so far
        self.reasoning_cut = False  # the budget closed an analysis message or kept one from opening
        self._thought = False  # an analysis message was opened (must call allows one)
        # The prompt ends with <|start|>assistant: the completion starts after the role's name.
        self._place = _Place.ROLE
        self._written: list[int] = list(self.words.assistant)  # of the role or the header, in the current place
        self._candidates: list[_Tail] = []  # held header: the tails still matching what was written
        self._kind = _Kind.OTHER  # of the open message

    # -- the two calls the decode loop makes -----------------------------------------------------------------

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` ``[V]`` with every token this sequence may not write next at -inf: a new tensor (callers may
        keep theirs, e.g. a prefill's logits reused by a regeneration), or ``logits`` itself where all are allowed."""
        allowed = self._allowed()
        if allowed is not None:
            index = torch.tensor(sorted(allowed), dtype=torch.long, device=logits.device)
            masked = torch.full_like(logits, float("-inf"))
            masked[index] = logits[index]
            return masked
        banned = _BANS.get(self._kind, ()) if self._place is _Place.BODY and self.must_call is not None else ()
        if not banned:
            return logits
        return logits.index_fill(0, torch.tensor(banned, device=logits.device), float("-inf"))

    def advance(self, token: int) -> None:
        """Record the token the sequence wrote (one :meth:`mask` allowed)."""
        place = self._place
        if place is _Place.BODY:
            if token == END:
                if self._kind is _Kind.ANALYSIS and self._budget_spent():
                    self.reasoning_cut = True
                self._place = _Place.AFTER_END
            elif self._kind is _Kind.ANALYSIS:
                self.analysis_tokens += 1
        elif place is _Place.AFTER_END:
            if token == START:
                self._enter(_Place.ROLE)
        elif place is _Place.ROLE:
            if token == CHANNEL:
                held = self._held()
                self._enter(_Place.HEADER)
                self._candidates = self._tails() if held else []
                if held and self._budget_spent() and not (self.must_call is not None and self._thought):
                    self.reasoning_cut = True  # thinking was still allowed but for the budget
            elif token == MESSAGE:  # a header without a channel (free mode): not analysis
                self._written = []
                self._open_body()
            else:
                self._written.append(token)
        elif token == MESSAGE:
            self._open_body()
        else:
            at = len(self._written)
            self._written.append(token)
            self._candidates = [t for t in self._candidates if len(t.tokens) > at and t.tokens[at] == token]

    # -- the rules -------------------------------------------------------------------------------------------

    def _budget_spent(self) -> bool:
        return self.reasoning_budget is not None and self.analysis_tokens >= self.reasoning_budget

    def _held(self) -> bool:
        """Whether headers are held now (a must-call request, or thinking is over)."""
        return self.must_call is not None or self._budget_spent()

    def _tails(self) -> list[_Tail]:
        words = self.words
        may_think = not self._budget_spent() and not (self.must_call is not None and self._thought)
        tails = [_Tail((*words.analysis, MESSAGE), _Kind.ANALYSIS)] if may_think else []
        if self.must_call is not None:
            return tails + [_Tail(call, _Kind.CALL) for call in self.must_call.calls]
        # Thinking is over: an answer, or a commentary message (a preamble or a call) the model finishes itself.
        return [*tails, _Tail((*words.final, MESSAGE), _Kind.OTHER), _Tail(words.commentary, _Kind.OTHER)]

    def _allowed(self) -> set[int] | None:
        """The only tokens allowed next, or None where any may come (bans aside)."""
        place = self._place
        if place is _Place.BODY:
            if self._kind is _Kind.ANALYSIS and self._budget_spent():
                return {END}
            return None
        if not self._held():
            return None
        if place is _Place.AFTER_END:
            return {START}
        if place is _Place.ROLE:
            role, at = self.words.assistant, len(self._written)
            return {role[at]} if at < len(role) else {CHANNEL}  # no recipient before the channel
        at = len(self._written)
        if not self._candidates or any(len(t.tokens) == at for t in self._candidates):
            return None  # a tail the model finishes itself (commentary) is written: the header is its own
        return {t.tokens[at] for t in self._candidates}

    def _enter(self, place: _Place) -> None:
        self._place = place
        self._written = []

    def _open_body(self) -> None:
        header = tuple(self._written)
        ended = [t for t in self._candidates if t.tokens in ((*header, MESSAGE), header)]
        if ended:
            self._kind = ended[0].kind
        else:  # a free header: only whether it opens analysis matters (for the budget)
            analysis = self.words.analysis
            self._kind = _Kind.ANALYSIS if header[: len(analysis)] == analysis else _Kind.OTHER
        if self._kind is _Kind.ANALYSIS:
            self._thought = True
        self._enter(_Place.BODY)
        self._candidates = []
