"""Turn completion tokens into :class:`~engine.events.Delta` s and :class:`~engine.events.ToolCall` s, tolerating the
malformed harmony the model emits.

Wraps ``openai_harmony.StreamableParser`` (docs/model.md#streaming-parser). The wrapped parser raises ``HarmonyError``
on malformed output that real models produce (docs/model.md#pitfall-malformed-harmony): ``<|end|>`` followed by
``<|return|>``, an unknown role such as ``assistantassistant``, a header with ``<|channel|>`` but no channel name,
tokens after ``<|call|>``, and the output ending inside a header. A chat app must never lose an answer to that, so this
class never raises from :meth:`feed` or :meth:`finish`. Its policy:

- Messages already completed are always kept.
- A header that fails to parse is salvaged: channel (``<|channel|>X``), recipient (``to=X``) and content type
  (``<|constrain|>X``) are recovered from its text with a lenient scan, a fresh parser is primed with a clean
  header, and the message's text keeps streaming (on :data:`~engine.events.NO_CHANNEL` if no channel was named).
- A header without ``<|channel|>`` (every assistant message must name its channel) is kept as harmony parses it, except
  that a header that is just a channel name (``final<|message|>``: the model forgot ``<|channel|>``, which harmony
  would read as a message to a recipient called "final") is read as that channel.
- ``<|return|>``/``<|call|>`` right after ``<|end|>`` ends the output normally (the answer is complete).
- A stray ``<|end|>`` between messages is skipped; any other token where ``<|start|>`` was expected is taken as
  the first header token of a new assistant message (the model forgot ``<|start|>assistant``).
- After ``<|return|>``/``<|call|>`` the output is over: later tokens are counted but ignored.
- A header running past :data:`MAX_HEADER_TOKENS` tokens is text the model wrote without a header: it and what
  follows stream as text on :data:`~engine.events.NO_CHANNEL` (otherwise the user would see nothing at all).
- Output ending inside a (short) header loses only that header (it has no text yet).
- A header harmony accepts but reads wrongly, leaving a control token inside the recipient or channel
  (``to=functions.f<|channel|>commentary``, or ``<|channel|>final <|constrain|>json`` read as a message *to*
  ``<|constrain|>json``), is salvaged like a header harmony rejects.
Each of these is reported in :attr:`malformed`; the stream keeps going.

Tool calls: when a message with a recipient closes with a message stop token (``<|call|>``, or ``<|end|>``, or
``<|return|>``), :meth:`HarmonyStreamParser.feed` returns a :class:`~engine.events.ToolCall` for that closing token
(which adds no text), after the Deltas that streamed its arguments. That includes calls whose header was salvaged,
so a broken ``<|constrain|>`` never loses a call whose recipient could be read. A call cut off by the end of output
(max_tokens, a full context, a cancel) is *not* emitted, even if its arguments happen to be complete JSON: the
model had not committed to it (it never wrote ``<|call|>``), so it is not runnable; it stays in :attr:`messages` and
the stream's Done says why it ended. A header closed by a stop token before ``<|message|>`` has no arguments and is
not a call either.

Token accounting: every token is counted to the message it belongs to (its header, its content and the token
closing it), and the message's category (reasoning / final / other, see :class:`~engine.events.Done`) is decided
when it closes, from its channel and recipient. Tokens belonging to no message count as other.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from openai_harmony import HarmonyEncoding, HarmonyError, Message, Role, StreamableParser, TextContent

from gpt_oss_desktop.engine.events import ANALYSIS, COMMENTARY, FINAL, NO_CHANNEL, Delta, ToolCall
from gpt_oss_desktop.engine.vocab import (
    ASSISTANT_STOP_TOKENS,
    CHANNEL,
    END,
    MESSAGE,
    MESSAGE_STOP_TOKENS,
    START,
    get_encoding,
)

logger = logging.getLogger(__name__)

# Lenient header scans used only to salvage a header harmony rejected.
_CHANNEL_RE = re.compile(r"<\|channel\|>\s*([^\s<]+)")
_RECIPIENT_RE = re.compile(r"\bto=([^\s<]+)")
_CONSTRAIN_RE = re.compile(r"<\|constrain\|>\s*([^\s<]+)")
_CHANNELS = frozenset({ANALYSIS, COMMENTARY, FINAL})
# A control token's text (``<|constrain|>``, ``<|channel|>``) can never be part of a real recipient or channel name.
_CONTROL_MARK = "<|"
# Real headers are a few tokens (the longest, a tool call with a JSON constraint, ~15). A longer one means the model
# is writing text without a header; past this many tokens it is streamed as text so the user sees something.
MAX_HEADER_TOKENS = 48


class _State(enum.Enum):
    EXPECT_START = enum.auto()
    HEADER = enum.auto()
    CONTENT = enum.auto()


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """Completion tokens per category; see :class:`~engine.events.Done` for the rules."""

    reasoning: int = 0
    final: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.reasoning + self.final + self.other


def message_category(message: Message) -> str:
    """``"reasoning"``, ``"final"`` or ``"other"``; a message with a recipient is a tool call whatever its channel."""
    if message.recipient is not None:
        return "other"
    if message.channel == ANALYSIS:
        return "reasoning"
    if message.channel == FINAL:
        return "final"
    return "other"


class HarmonyStreamParser:
    """Incremental parser of one assistant completion (the prompt ended with ``<|start|>assistant``).

    Feed every generated token, including the stop token, with :meth:`feed`; call :meth:`finish` once at the end
    (idempotent). Not thread-safe: one parser per generation.
    """

    def __init__(self, encoding: HarmonyEncoding | None = None) -> None:
        self._enc = encoding if encoding is not None else get_encoding()
        self._parser = StreamableParser(self._enc, Role.ASSISTANT, strict=False)
        self._state = _State.HEADER  # the prompt already holds <|start|>assistant
        self._header_tokens: list[int] = []
        self._channel: str | None = None
        self._recipient: str | None = None
        self._msg_tokens = 0  # tokens of the open message so far, counted when it closes
        self._messages: list[Message] = []
        self._taken = 0  # how many of the wrapped parser's messages are already in _messages
        self._reasoning = 0
        self._final = 0
        self._other = 0
        self._ids: list[int] = []
        self._stop_token: int | None = None
        self._ignored_after_stop = 0
        self._malformed: list[str] = []
        self._finished = False

    # -- results ---------------------------------------------------------------------------------------------

    @property
    def messages(self) -> tuple[Message, ...]:
        """Completed assistant messages (after :meth:`finish`, also the one cut off by the end of output)."""
        return tuple(self._messages)

    @property
    def counts(self) -> TokenCounts:
        return TokenCounts(self._reasoning, self._final, self._other)

    @property
    def completion_ids(self) -> tuple[int, ...]:
        return tuple(self._ids)

    @property
    def stop_token(self) -> int | None:
        """``<|return|>`` or ``<|call|>`` once the model emitted one, else None."""
        return self._stop_token

    @property
    def malformed(self) -> str | None:
        """What was wrong with the output (several findings joined by ``"; "``), or None if it was well formed."""
        return "; ".join(self._malformed) if self._malformed else None

    @property
    def current_channel(self) -> str | None:
        """Channel of the message whose text is streaming now (None between messages and inside headers)."""
        return self._channel if self._state is _State.CONTENT else None

    @property
    def current_recipient(self) -> str | None:
        return self._recipient if self._state is _State.CONTENT else None

    # -- feeding ---------------------------------------------------------------------------------------------

    def feed(self, token: int) -> Delta | ToolCall | None:
        """Process one completion token; return the text it added, or the call it completed, if any.

        Never raises for malformed output.
        """
        self._ids.append(token)
        if self._stop_token is not None or self._finished:
            self._ignored_after_stop += 1
            self._other += 1
            return None
        self._msg_tokens += 1
        if self._state is _State.EXPECT_START and not self._expect_start(token):
            return None
        if self._state is _State.HEADER:
            return self._header(token)
        return self._content(token)

    def finish(self) -> None:
        """Close the output: keep a message cut off mid-text, report a header cut off. Idempotent."""
        if self._finished:
            return
        self._finished = True
        if self._stop_token is None:
            if self._state is _State.CONTENT:
                try:
                    self._parser.process_eos()
                except HarmonyError as exc:  # not expected in content, but never lose the stream over it
                    self._note(f"error closing the last message: {exc}")
                self._close_message()
            elif self._state is _State.HEADER and self._msg_tokens:
                self._note(f"output ended inside a message header {self._text(self._header_tokens)!r}")
                self._other += self._msg_tokens
                self._msg_tokens = 0
        if self._ignored_after_stop:
            name = self._text([self._stop_token]) if self._stop_token is not None else "the end"
            self._note(f"{self._ignored_after_stop} token(s) after {name} ignored")

    # -- states ----------------------------------------------------------------------------------------------

    def _expect_start(self, token: int) -> bool:
        """Handle a token between messages; True when it begins a header that must be processed as such."""
        if token == START:
            self._process_quietly(token)
            self._begin_header()
            return False
        if token in ASSISTANT_STOP_TOKENS:
            # <|end|><|return|>: the answer was already complete (docs/model.md#pitfall-malformed-harmony).
            self._note(f"{self._text([token])} after a closed message")
            self._stop_token = token
            self._other += self._msg_tokens
            self._msg_tokens = 0
            return False
        if token == END:
            self._note("stray <|end|> between messages skipped")
            self._other += self._msg_tokens
            self._msg_tokens = 0
            return False
        self._note(f"token {token} where <|start|> was expected; read as the start of a new assistant message")
        self._replace_parser(Role.ASSISTANT)
        self._begin_header()
        return True

    def _header(self, token: int) -> Delta | ToolCall | None:
        self._header_tokens.append(token)
        try:
            self._parser.process(token)
        except HarmonyError as exc:
            if token == MESSAGE:
                self._salvage_header(exc)
            else:
                self._note(f"unexpected error in a header: {exc}")
                self._other += self._msg_tokens
                self._msg_tokens = 0
                self._replace_parser(None)
                self._state = _State.EXPECT_START
            return None
        if token == MESSAGE:
            misread = self._misread_header()
            if misread is not None:
                self._salvage_header(misread)
            elif CHANNEL in self._header_tokens:
                self._enter_content()
            else:
                self._channelless_header()
        elif token in MESSAGE_STOP_TOKENS:
            # The lenient parser closed a message that never reached <|message|>.
            self._note(f"message header ended by {self._text([token])} without <|message|>")
            return self._close_message(token)
        elif len(self._header_tokens) > MAX_HEADER_TOKENS:
            return self._header_as_text()
        return None

    def _content(self, token: int) -> Delta | ToolCall | None:
        try:
            self._parser.process(token)
        except HarmonyError as exc:  # not expected in content; drop this message's tail rather than raise
            self._note(f"unexpected error in message content: {exc}")
            self._close_message()
            self._replace_parser(None)
            return None
        if token in MESSAGE_STOP_TOKENS:
            return self._close_message(token)
        text = self._parser.last_content_delta
        if not text:
            return None  # e.g. waiting for the rest of a multi-byte character
        channel = self._channel if self._channel is not None else NO_CHANNEL
        return Delta(channel=channel, text=text, recipient=self._recipient)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _begin_header(self) -> None:
        self._state = _State.HEADER
        self._header_tokens = []
        self._channel = None
        self._recipient = None

    def _enter_content(self) -> None:
        self._state = _State.CONTENT
        self._channel = self._parser.current_channel
        self._recipient = self._parser.current_recipient

    def _misread_header(self) -> str | None:
        """Why a header harmony accepted was read wrongly (a control token left in its recipient or channel), or
        None. Seen from real models: ``to=functions.f<|channel|>commentary`` (the recipient swallows the channel)
        and ``<|channel|>final <|constrain|>json`` (harmony takes the word after the channel for the recipient)."""
        for what, value in (("recipient", self._parser.current_recipient), ("channel", self._parser.current_channel)):
            if value is not None and _CONTROL_MARK in value:
                return f"harmony read the {what} as {value!r}"
        return None

    def _salvage_header(self, exc: HarmonyError | str) -> None:
        header = self._text(self._header_tokens)
        channel = _CHANNEL_RE.search(header)
        recipient = _RECIPIENT_RE.search(header)
        constrain = _CONSTRAIN_RE.search(header)
        clean = ""
        if channel:
            clean += f"<|channel|>{channel.group(1)}"
        if recipient:
            clean += f" to={recipient.group(1)}"
            # Only after a recipient: without ``to=``, harmony reads the first word after the channel (this one)
            # as the recipient. A content type matters only for a call's arguments anyway.
            if constrain:
                clean += f" <|constrain|>{constrain.group(1)}"
        clean += "<|message|>"
        self._replace_parser(Role.ASSISTANT)
        try:
            for tok in self._enc.encode(clean, allowed_special="all"):
                self._parser.process(tok)
        except HarmonyError as again:  # the repaired header is ours, so this should not happen
            self._note(f"malformed message header {header!r} ({exc}); could not recover: {again}")
            self._other += self._msg_tokens
            self._msg_tokens = 0
            self._replace_parser(None)
            self._state = _State.EXPECT_START
            return
        self._note(f"malformed message header {header!r} ({exc}); kept its text")
        self._enter_content()

    def _channelless_header(self) -> None:
        """A header harmony accepted although it names no channel (``final<|message|>``); mark it, and read a bare
        channel name as the channel harmony would otherwise take for a recipient."""
        header = self._text(self._header_tokens[:-1])
        name = header.strip()
        if name in _CHANNELS and self._parser.current_recipient == name:
            self._replace_parser(Role.ASSISTANT)
            try:
                for tok in self._enc.encode(f"<|channel|>{name}<|message|>", allowed_special="all"):
                    self._parser.process(tok)
            except HarmonyError as exc:  # our own clean header; should not happen
                self._note(f"message header {header!r} has no <|channel|>; could not recover: {exc}")
                self._other += self._msg_tokens
                self._msg_tokens = 0
                self._replace_parser(None)
                self._state = _State.EXPECT_START
                return
            self._note(f"message header {header!r} has no <|channel|>; read {name!r} as its channel")
        else:
            self._note(f"message header {header!r} has no <|channel|>")
        self._enter_content()

    def _header_as_text(self) -> Delta | None:
        """A "header" that never ends is text the model wrote without one: stream it (and what follows) as text."""
        self._note(f"message header longer than {MAX_HEADER_TOKENS} tokens; read as text without a channel")
        pending = self._header_tokens
        self._replace_parser(Role.ASSISTANT)
        text = []
        try:
            self._parser.process(MESSAGE)
            for tok in pending:
                self._parser.process(tok)
                text.append(self._parser.last_content_delta or "")
        except HarmonyError as exc:  # cannot happen for tokens that were acceptable in a header; stay safe
            self._note(f"could not read the header as text: {exc}")
            self._other += self._msg_tokens
            self._msg_tokens = 0
            self._replace_parser(None)
            self._state = _State.EXPECT_START
            return None
        self._enter_content()
        joined = "".join(text)
        return Delta(channel=NO_CHANNEL, text=joined, recipient=None) if joined else None

    def _close_message(self, token: int | None = None) -> ToolCall | None:
        """Book the open message's tokens to the category of the message the wrapped parser just completed.

        Returns the :class:`ToolCall` when ``token`` (a message stop token) closed a message with a recipient.
        """
        new = self._collect()
        category = message_category(new[-1]) if new else "other"
        if category == "reasoning":
            self._reasoning += self._msg_tokens
        elif category == "final":
            self._final += self._msg_tokens
        else:
            self._other += self._msg_tokens
        self._msg_tokens = 0
        self._state = _State.EXPECT_START
        self._channel = None
        self._recipient = None
        if token in ASSISTANT_STOP_TOKENS:
            self._stop_token = token
        if token is None or token not in MESSAGE_STOP_TOKENS or not new:
            return None
        return _tool_call(new[-1])

    def _collect(self) -> list[Message]:
        # Reading .messages re-parses JSON of all messages, so only do it when one may have completed.
        all_messages = self._parser.messages
        new = all_messages[self._taken :]
        self._messages.extend(new)
        self._taken = len(all_messages)
        return new

    def _replace_parser(self, role: Role | None) -> None:
        self._collect()
        self._parser = StreamableParser(self._enc, role, strict=False)
        self._taken = 0

    def _process_quietly(self, token: int) -> None:
        try:
            self._parser.process(token)
        except HarmonyError as exc:
            self._note(f"unexpected error: {exc}")
            self._replace_parser(Role.ASSISTANT)

    def _text(self, tokens: Sequence[int | None]) -> str:
        return self._enc.decode([t for t in tokens if t is not None])

    def _note(self, finding: str) -> None:
        logger.debug("malformed harmony output: %s", finding)
        self._malformed.append(finding)


def _tool_call(message: Message) -> ToolCall | None:
    """The call ``message`` makes, if it has a recipient (the arguments are its text as written, JSON unchecked)."""
    if message.recipient is None:
        return None
    return ToolCall(
        recipient=message.recipient,
        arguments="".join(c.text for c in message.content if isinstance(c, TextContent)),
        channel=message.channel if message.channel is not None else NO_CHANNEL,
        content_type=message.content_type,
    )
