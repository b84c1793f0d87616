"""Holding the model to a request's channel rules by masking its logits: a call it must make, a thinking budget.

Two requests a model may ignore when only asked in words are enforced here, on the harmony structure and nowhere
else (the message bodies stay the model's own):

- **Must call** (``tool_choice`` "required" or a named function): every message header is held to
  ``<|start|>assistant<|channel|>analysis<|message|>`` (thinking, once) or a call of an allowed name,
  ``<|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>`` (the form gpt-oss
  writes) or ``<|start|>assistant to=functions.NAME<|channel|>commentary <|constrain|>json<|message|>`` (the form
  harmony renders, which models trained on rendered chats write). An analysis message must close with ``<|end|>``
  and a call with ``<|call|>``, which ends the request as any call does. The final channel is unreachable.
- **Reasoning budget** (the most analysis tokens one request may write): once the analysis bodies have that many
  tokens, the open analysis message is closed (``<|end|>``) and every later header is held to ``final``,
  ``commentary`` or a recipient (or, with must call, to a call): no more thinking. A budget of 0 skips thinking.

- **JSON arguments** (``json_calls``, and every must-call call): a call whose header says ``<|constrain|>json`` gets
  only tokens that keep its text a prefix of a JSON object (engine/json_prefix.py), then only ``<|call|>`` once the
  object closes: the call completes, and its arguments parse. With ``call_schemas`` a call to
  an offered function is held to its parameters schema too (engine/json_schema.py): its keys, types, enums and
  required keys.
- **Answer format** (``answer_schema``, a request's ``response_format``): the message on the ``final`` channel gets
  only tokens that keep it a prefix of a JSON object held to that schema, then only ``<|return|>``.
  Thinking, preambles and calls are left as they are.

Outside those rules the model is free: a request with a budget that it never reaches samples exactly as without one.
The header tokens are the harmony encoding's own encoding of that text, so the model is held to the tokens it writes
unconstrained. The prompt ends with ``<|start|>assistant``, so the completion starts inside a header, after the role.

:class:`ToolCallRule` is a request's (immutable, part of its :class:`~engine.sampling.SamplingParams`);
:class:`ChannelGuard` is one sequence's position in the rules.
"""

from __future__ import annotations

import enum
import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gpt_oss_desktop.engine.json_prefix import JsonState, TokenTable, default_token_table, feed
from gpt_oss_desktop.engine.json_schema import ANY, CallSchemas, SchemaNode
from gpt_oss_desktop.engine.vocab import CALL, CHANNEL, CONSTRAIN, END, MESSAGE, RETURN, START, get_encoding

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

logger = logging.getLogger(__name__)

_RECIPIENT = re.compile(r"to=([^\s<]+)")  # in a header's text: " to=functions.get_weather"


@dataclass(frozen=True, slots=True)
class HeaderWords:
    """The token ids of the words a harmony header is made of, as the encoding writes them."""

    assistant: tuple[int, ...]
    analysis: tuple[int, ...]
    final: tuple[int, ...]
    commentary: tuple[int, ...]
    recipient: tuple[int, ...]  # " to", which opens a recipient (" to=functions.get_weather")
    json: tuple[int, ...]  # after <|constrain|>: the arguments are JSON

    @classmethod
    def of(cls, encoding: HarmonyEncoding) -> HeaderWords:
        def tokens(text: str) -> tuple[int, ...]:
            return tuple(encoding.encode(text, allowed_special="all"))

        words = ("assistant", "analysis", "final", "commentary", " to", "json")
        return cls(*(tokens(word) for word in words))


@functools.cache
def default_header_words() -> HeaderWords:
    """The header words of the bundled o200k harmony encoding (every gpt-oss model's)."""
    return HeaderWords.of(get_encoding())


@dataclass(frozen=True, slots=True)
class ToolCallRule:
    """The calls a must-call request may make: each allowed call's header after the role's name, up to and
    including ``<|message|>``, in both places harmony lets the recipient stand (after the channel, as gpt-oss writes
    it, or before it, as harmony renders a call in a prompt and models trained on rendered chats write it)."""

    headers: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if not self.headers:
            raise ValueError("a tool-call rule must allow at least one call")
        for header in self.headers:
            if not header or header[-1] != MESSAGE or MESSAGE in header[:-1] or CHANNEL not in header:
                raise ValueError("each call's header must hold <|channel|> and end with <|message|> (only there)")

    @classmethod
    def for_functions(cls, encoding: HarmonyEncoding, names: Sequence[str]) -> ToolCallRule:
        """The rule that lets the model call one of ``names`` (the request's function names)."""
        if not names:
            raise ValueError("a tool-call rule needs at least one function name")

        def tokens(text: str) -> tuple[int, ...]:
            return tuple(encoding.encode(text, allowed_special="all"))

        headers = []
        for name in names:
            headers.append((CHANNEL, *tokens(f"commentary to=functions.{name} <|constrain|>json"), MESSAGE))
            headers.append(
                (*tokens(f" to=functions.{name}"), CHANNEL, *tokens("commentary <|constrain|>json"), MESSAGE)
            )
        return cls(tuple(headers))


class _Kind(enum.Enum):
    ANALYSIS = enum.auto()
    CALL = enum.auto()  # a must-call request's call
    OTHER = enum.auto()  # final, a preamble, a call the model chose freely


@dataclass(frozen=True, slots=True)
class _Tail:
    tokens: tuple[int, ...]  # after <|start|>; ends with <|message|>, or the model finishes the header freely
    kind: _Kind


class _Place(enum.Enum):
    HEADER = enum.auto()  # after <|start|>, until <|message|>: the role, maybe a recipient, the channel
    BODY = enum.auto()  # a message's text, until it closes
    AFTER_END = enum.auto()  # a message closed with <|end|>; the next one starts with <|start|>


# How each kind of message may not close under must call: analysis closes with <|end|>, a call with <|call|>.
_BANS: dict[_Kind, tuple[int, ...]] = {_Kind.ANALYSIS: (RETURN, CALL), _Kind.CALL: (RETURN, END)}


class ChannelGuard:
    """One sequence's place in its request's rules: which tokens it may write next, advanced token by token.

    A held header (must call, or thinking over) is walked as a set of allowed token sequences from the role's name
    to ``<|message|>``; a sequence that ends without it (``commentary``, a recipient) leaves the rest to the model.

    Args:
        must_call: the calls the answer must be one of, or None.
        reasoning_budget: the most analysis tokens, or None for no limit.
        json_calls: hold every call marked ``<|constrain|>json`` to a JSON object (must-call calls always are).
        call_schemas: the offered functions' parameters schemas, which such a call to one of them is held to.
        answer_schema: the JSON schema the final answer is held to (structured output), or None.
        words: the encoding's header words (default: the bundled encoding's).
        tokens: every token's bytes and the JSON masks (default: the bundled vocabulary's, read on first use).
    """

    def __init__(
        self,
        *,
        must_call: ToolCallRule | None = None,
        reasoning_budget: int | None = None,
        json_calls: bool = False,
        call_schemas: CallSchemas | None = None,
        answer_schema: SchemaNode | None = None,
        words: HeaderWords | None = None,
        tokens: TokenTable | None = None,
    ) -> None:
        self.words = words if words is not None else default_header_words()
        self.json_calls = json_calls
        self.call_schemas = call_schemas
        self.answer_schema = answer_schema
        self._json_end = CALL  # the token that ends the held JSON message: <|call|>, or <|return|> for an answer
        self._tokens = tokens
        self._json: JsonState | None = None  # the open message is JSON arguments, this far
        self.must_call = must_call
        self.reasoning_budget = reasoning_budget
        self.analysis_tokens = 0  # written in analysis bodies so far
        self.reasoning_cut = False  # the budget closed an analysis message or kept one from opening
        self._thought = False  # an analysis message was opened (must call allows one)
        self._kind = _Kind.OTHER  # of the open message
        self._place = _Place.HEADER
        self._written: list[int] = []  # of the header, since <|start|>
        self._candidates: list[_Tail] = []  # held header: the sequences still matching what was written
        # The prompt ends with <|start|>assistant: the completion starts after the role's name.
        self._start_header()
        for token in self.words.assistant:
            self._header_token(token)

    # -- the two calls the decode loop makes -----------------------------------------------------------------

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` ``[V]`` with every token this sequence may not write next at -inf: a new tensor (callers may
        keep theirs, e.g. a prefill's logits reused by a regeneration), or ``logits`` itself where all are allowed."""
        if self._json is not None:
            table = self._table(logits.shape[-1])
            banned, any_allowed = table.banned(self._json)
            if not self._json.done and not any_allowed:
                # (A schema no text can satisfy here. Compiled schemas avoid this; should one not, the call is
                # left to the model rather than given no token at all.)
                logger.warning("no token continues the call's arguments under its schema; the rest is left free")
                self._json = None
                return logits
            if self._json.done:
                banned = banned.clone()
                banned[self._json_end] = False
            return logits.masked_fill(banned.to(logits.device), float("-inf"))
        allowed = self._allowed()
        if allowed is not None:
            index = torch.tensor(sorted(allowed), dtype=torch.long, device=logits.device)
            masked = torch.full_like(logits, float("-inf"))
            masked[index] = logits[index]
            return masked
        ends = _BANS.get(self._kind, ()) if self._place is _Place.BODY and self.must_call is not None else ()
        if not ends:
            return logits
        return logits.index_fill(0, torch.tensor(ends, device=logits.device), float("-inf"))

    def advance(self, token: int) -> None:
        """Record the token the sequence wrote (one :meth:`mask` allowed)."""
        if self._place is _Place.BODY:
            if self._json is not None:
                table = self._tokens
                data = table.token_bytes[token] if table is not None and token < len(table.token_bytes) else b""
                # (A token the mask let through always continues the JSON; None only ends it at <|call|>.)
                self._json = feed(self._json, data) if data else None
            if token == END:
                if self._kind is _Kind.ANALYSIS and self._budget_spent():
                    self.reasoning_cut = True
                self._place = _Place.AFTER_END
            elif self._kind is _Kind.ANALYSIS:
                self.analysis_tokens += 1
        elif self._place is _Place.AFTER_END:
            if token == START:
                self._start_header()
        elif token == MESSAGE:
            self._open_body()
        else:
            self._header_token(token)

    # -- the rules -------------------------------------------------------------------------------------------

    def _budget_spent(self) -> bool:
        return self.reasoning_budget is not None and self.analysis_tokens >= self.reasoning_budget

    def _held(self) -> bool:
        """Whether headers are held now (a must-call request, or thinking is over)."""
        return self.must_call is not None or self._budget_spent()

    def _tails(self) -> list[_Tail]:
        """The headers allowed now, each from after <|start|>."""
        words = self.words
        role = words.assistant
        may_think = not self._budget_spent() and not (self.must_call is not None and self._thought)
        tails = [_Tail((*role, CHANNEL, *words.analysis, MESSAGE), _Kind.ANALYSIS)] if may_think else []
        if self.must_call is not None:
            return tails + [_Tail((*role, *header), _Kind.CALL) for header in self.must_call.headers]
        # Thinking is over: an answer, a preamble, or a call whose recipient and rest the model writes itself (a
        # commentary header that goes on otherwise, e.g. straight to <|constrain|>, names no recipient: malformed).
        return [
            *tails,
            _Tail((*role, CHANNEL, *words.final, MESSAGE), _Kind.OTHER),
            _Tail((*role, CHANNEL, *words.commentary, MESSAGE), _Kind.OTHER),
            _Tail((*role, CHANNEL, *words.commentary, *words.recipient), _Kind.OTHER),
            _Tail((*role, *words.recipient), _Kind.OTHER),
        ]

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
        at = len(self._written)
        if not self._candidates or any(len(t.tokens) == at for t in self._candidates):
            return None  # a header the model finishes itself (commentary, a recipient): the rest is its own
        return {t.tokens[at] for t in self._candidates}

    def _start_header(self) -> None:
        self._place = _Place.HEADER
        self._written = []
        held = self._held()
        self._candidates = self._tails() if held else []
        if held and self._budget_spent() and not (self.must_call is not None and self._thought):
            self.reasoning_cut = True  # thinking would still be allowed but for the budget

    def _header_token(self, token: int) -> None:
        at = len(self._written)
        self._written.append(token)
        self._candidates = [t for t in self._candidates if len(t.tokens) > at and t.tokens[at] == token]

    def _open_body(self) -> None:
        header = tuple(self._written)
        ended = [t for t in self._candidates if t.tokens == (*header, MESSAGE)]
        if ended:
            self._kind = ended[0].kind
        else:  # a header the model wrote (or finished) itself: only whether it opens analysis matters (the budget)
            analysis = self.words.analysis
            at = header.index(CHANNEL) + 1 if CHANNEL in header else len(header)
            self._kind = _Kind.ANALYSIS if header[at : at + len(analysis)] == analysis else _Kind.OTHER
        if self._kind is _Kind.ANALYSIS:
            self._thought = True
        self._place = _Place.BODY
        self._candidates = []
        # Held to JSON: a call (it names a recipient, and ends with <|call|>, the one end allowed after the object)
        # whose header says <|constrain|>json. Any other message is left as it is.
        json_type = (CONSTRAIN, *self.words.json)
        says_json = _holds(header, json_type) and _holds(header, self.words.recipient)
        held = says_json and (self.json_calls or self._kind is _Kind.CALL)
        self._json = JsonState.held_to(self._schema_of(header)) if held else None
        self._json_end = CALL
        if self.answer_schema is not None and _holds(header, (CHANNEL, *self.words.final)):
            self._json, self._json_end = JsonState.held_to(self.answer_schema), RETURN

    def _schema_of(self, header: tuple[int, ...]) -> SchemaNode:
        """The parameters schema of the function the call ``header`` names (any JSON object where none is known)."""
        if self.call_schemas is None:
            return ANY
        try:
            text = get_encoding().decode_utf8(list(header))
        except Exception:  # (openai_harmony raises its own error for bytes that are no UTF-8)
            return ANY
        found = _RECIPIENT.search(text)
        return self.call_schemas.node_for(found.group(1)) if found else ANY

    def _table(self, vocab_size: int) -> TokenTable:
        if self._tokens is None:
            self._tokens = default_token_table(vocab_size)
        return self._tokens


def _holds(tokens: tuple[int, ...], part: tuple[int, ...]) -> bool:
    """Whether ``part`` occurs in ``tokens`` as a run."""
    return any(tokens[i : i + len(part)] == part for i in range(len(tokens) - len(part) + 1))
