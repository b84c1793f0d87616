"""Making the model call a function (``tool_choice`` "required" or a named function) by masking its logits.

Telling the model "you must call a function" (the developer instruction the reference implementation adds) is a
request it may ignore and answer directly; a client that asked for ``tool_choice: "required"`` then gets no call.
This module enforces it on the harmony structure instead, and only there: the message bodies stay the model's own.

While a must-call request runs, every message header the model writes is held to one of:

- ``<|start|>assistant<|channel|>analysis<|message|>`` (it may think first, once: a model that is not moving towards
  the call does not get to think until max_tokens), or
- ``<|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>`` for one of the allowed
  names (the form the model itself writes a call in; harmony reads it as recipient ``functions.NAME``).

The final channel and a preamble to nobody are therefore unreachable. An analysis message must close with
``<|end|>`` (not ``<|return|>``/``<|call|>``) and a call with ``<|call|>``, which ends the request as any call does.
The prompt ends with ``<|start|>assistant``, so the first completion token is the ``<|channel|>`` of a header.

The header tokens are the harmony encoding's own encoding of that text, so the model is held to the tokens it
writes unconstrained. :class:`ToolCallRule` is the request's (immutable, part of its
:class:`~engine.sampling.SamplingParams`); :class:`ToolCallConstraint` is one sequence's position in it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gpt_oss_desktop.engine.vocab import CALL, CHANNEL, END, MESSAGE, RETURN, START

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding


@dataclass(frozen=True, slots=True)
class ToolCallRule:
    """The headers a must-call request may write.

    assistant: the token(s) of the role name ``assistant``, written after each ``<|start|>``.
    channels: each allowed header tail after ``<|channel|>``, up to and including ``<|message|>``.
    calls: for each tail in ``channels``, whether it opens a call (else it opens an analysis message).
    """

    assistant: tuple[int, ...]
    channels: tuple[tuple[int, ...], ...]
    calls: tuple[bool, ...]

    def __post_init__(self) -> None:
        if not self.assistant or not self.channels or len(self.channels) != len(self.calls):
            raise ValueError("a tool-call rule needs the role's tokens and at least one channel tail per flag")
        if not any(self.calls):
            raise ValueError("a tool-call rule must allow at least one call")
        if any(not tail or tail[-1] != MESSAGE or MESSAGE in tail[:-1] for tail in self.channels):
            raise ValueError("each channel tail must end with <|message|> and hold it only there")

    @classmethod
    def for_functions(cls, encoding: HarmonyEncoding, names: Sequence[str]) -> ToolCallRule:
        """The rule that lets the model think, then call one of ``names`` (the request's function names)."""
        if not names:
            raise ValueError("a tool-call rule needs at least one function name")

        def tokens(text: str) -> tuple[int, ...]:
            return tuple(encoding.encode(text, allowed_special="all"))

        tails = [(*tokens("analysis"), MESSAGE)]
        tails += [(*tokens(f"commentary to=functions.{name} <|constrain|>json"), MESSAGE) for name in names]
        return cls(tokens("assistant"), tuple(tails), (False, *(True for _ in names)))


class _Place(enum.Enum):
    BODY = enum.auto()  # inside a message's text: free, except for how the message may close
    AFTER_END = enum.auto()  # a message closed with <|end|>: the next must be <|start|>
    ROLE = enum.auto()  # after <|start|>: writing "assistant"
    BEFORE_CHANNEL = enum.auto()  # after the role: <|channel|> comes next (no recipient before it)
    CHANNEL = enum.auto()  # after <|channel|>: writing one of the rule's tails


# What may not close each kind of message: analysis closes with <|end|>, a call with <|call|>.
_ANALYSIS_BANS: tuple[int, ...] = (RETURN, CALL)
_CALL_BANS: tuple[int, ...] = (RETURN, END)


class ToolCallConstraint:
    """One sequence's place in a :class:`ToolCallRule`: which tokens it may sample next, advanced token by token."""

    def __init__(self, rule: ToolCallRule) -> None:
        self.rule = rule
        self._place = _Place.BEFORE_CHANNEL  # the prompt ends with <|start|>assistant
        self._written = 0  # tokens of the role or tail written so far
        self._candidates: list[int] = []  # indexes into rule.channels still matching what was written
        self._in_call = False  # the open message is a call (else analysis)
        self._thought = False  # an analysis message was opened: the next header must open a call

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` ``[V]`` with every token this sequence may not write next at -inf (a new tensor: callers may
        keep theirs, e.g. a prefill's logits reused by a regeneration)."""
        allowed = self._allowed()
        if allowed is not None:
            index = torch.tensor(sorted(allowed), dtype=torch.long, device=logits.device)
            masked = torch.full_like(logits, float("-inf"))
            masked[index] = logits[index]
            return masked
        banned = torch.tensor(_CALL_BANS if self._in_call else _ANALYSIS_BANS, device=logits.device)
        return logits.index_fill(0, banned, float("-inf"))

    def advance(self, token: int) -> None:
        """Record the token the sequence wrote (one :meth:`mask` allowed)."""
        rule = self.rule
        if self._place is _Place.BODY:
            if token == END:
                self._place = _Place.AFTER_END
        elif self._place is _Place.AFTER_END:
            self._place, self._written = _Place.ROLE, 0
        elif self._place is _Place.ROLE:
            self._written += 1
            if self._written == len(rule.assistant):
                self._place = _Place.BEFORE_CHANNEL
        elif self._place is _Place.BEFORE_CHANNEL:
            self._place, self._written = _Place.CHANNEL, 0
            self._candidates = [i for i, call in enumerate(rule.calls) if call or not self._thought]
        else:
            at = self._written
            self._candidates = [i for i in self._candidates if rule.channels[i][at] == token]
            self._written += 1
            if token == MESSAGE:  # only a tail's last token: exactly one candidate has ended
                ended = next(i for i in self._candidates if len(rule.channels[i]) == self._written)
                self._in_call, self._place = rule.calls[ended], _Place.BODY
                self._thought = self._thought or not self._in_call

    def _allowed(self) -> set[int] | None:
        """The only tokens allowed next, or None inside a message body (where only closings are banned)."""
        place = self._place
        if place is _Place.BODY:
            return None
        if place is _Place.AFTER_END:
            return {START}
        if place is _Place.ROLE:
            return {self.rule.assistant[self._written]}
        if place is _Place.BEFORE_CHANNEL:
            return {CHANNEL}
        at = self._written
        return {self.rule.channels[i][at] for i in self._candidates if len(self.rule.channels[i]) > at}
