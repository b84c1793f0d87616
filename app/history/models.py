"""Immutable row types of the chat history.

Rows are frozen dataclasses so that a value the GUI holds cannot drift from what is on disk without going through
the store. Timestamps are timezone-aware UTC datetimes; JSON-ish fields (sampling settings, stats, meta) are plain
dicts of JSON values, and an answer's tool calls a tuple of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypedDict, cast

from .attachments import Attachment

ChatKind = Literal["chat", "comparison"]
Role = Literal["user", "assistant", "system"]
Effort = Literal["low", "medium", "high"]

CHAT_KINDS: Final[tuple[ChatKind, ...]] = ("chat", "comparison")
ROLES: Final[tuple[Role, ...]] = ("user", "assistant", "system")
EFFORTS: Final[tuple[Effort, ...]] = ("low", "medium", "high")

# JSON values as stored in the *_json columns. Kept loose (Any) because stats grow new keys over time.
JSONDict = dict[str, Any]


class AnswerStats(TypedDict, total=False):
    """The keys the app writes into Message.stats today; the column is open JSON, so more may appear.

    Any key may be absent: an answer saved while it streamed, cut off, imported, or written by an older version
    has fewer (or none). An absent token count is unknown, not zero; readers must not show it as 0.
    """

    reasoning_tokens: int
    final_tokens: int
    ttft: float  # seconds to the first token of any channel
    thinking_s: float
    answer_s: float
    tok_s: float
    finish_reason: str
    error: str  # what ended the answer early, as shown under it ("connection lost mid-answer (…)"); absent if nothing
    reasoning_cut: bool  # the thinking budget ended the reasoning; absent if it did not
    dropped_turns: int  # the chat's oldest turns left out of the prompt to fit the context; absent if none


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """Exact integer microseconds since the epoch: sortable in SQL and lossless (a float REAL is not)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def utc_now() -> datetime:
    return datetime.now(UTC)


def clean_json_dict(value: Mapping[str, Any] | None, what: str) -> JSONDict:
    """A JSON-safe copy: NaN/inf become None, because tok_s of a zero-length answer must not make exports invalid."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping, not {type(value).__name__}")
    return cast(JSONDict, _clean(dict(value), what))


def _clean(value: Any, what: str) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        out: JSONDict = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{what}: keys must be strings, got {key!r}")
            out[key] = _clean(item, what)
        return out
    if isinstance(value, list | tuple):
        return [_clean(item, what) for item in value]
    raise TypeError(f"{what}: {type(value).__name__} is not JSON-serialisable")


class StoredToolCall(TypedDict, total=False):
    """The keys the app writes for one tool call of an answer (Message.tool_calls); open JSON like the stats, so
    only ``recipient`` is required and unknown keys are kept."""

    recipient: str  # "python" or "functions.NAME"
    arguments: str  # the raw text the model wrote
    channel: str  # "analysis" or "commentary"
    content_type: str | None
    reasoning: str  # the analysis written before this call, in the same round
    status: str  # ok, error, timeout, cancelled, denied, unknown_tool, bad_arguments, unavailable
    output: str  # what went back to the model
    seconds: float
    approval: str  # asked, always, denied, never


def clean_tool_calls(value: Sequence[Mapping[str, Any]] | None, what: str = "tool_calls") -> tuple[JSONDict, ...]:
    """A JSON-safe copy of an answer's tool calls, in call order: a list of objects, each with a string
    ``recipient``. TypeError or ValueError names what is wrong."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise TypeError(f"{what} must be a list of objects, not {type(value).__name__}")
    calls = []
    for index, call in enumerate(value):
        if not isinstance(call, Mapping):
            raise TypeError(f"{what}[{index}] must be an object, not {type(call).__name__}")
        if not isinstance(call.get("recipient"), str):
            raise ValueError(f"{what}[{index}] needs a string 'recipient'")
        calls.append(clean_json_dict(call, f"{what}[{index}]"))
    return tuple(calls)


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    return cast(Role, role)


def check_effort(effort: str | None) -> Effort | None:
    # str() so engine.harmony.ReasoningEffort (a StrEnum) is accepted without app.history importing the engine.
    if effort is None:
        return None
    value = str(effort)
    if value not in EFFORTS:
        raise ValueError(f"effort must be one of {EFFORTS}, not {effort!r}")
    return cast(Effort, value)


def check_kind(kind: str) -> ChatKind:
    if kind not in CHAT_KINDS:
        raise ValueError(f"kind must be one of {CHAT_KINDS}, not {kind!r}")
    return cast(ChatKind, kind)


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a chat.

    ``position`` orders turns; ``column`` separates parallel answers to the same turn. A normal chat uses column 0
    throughout. A comparison stores its prompt (and any copied context) in column 0 and its parallel answers at one
    position in columns 0, 1, 2 (low, medium, high).

    For assistant messages ``text`` is the final answer and ``analysis`` the reasoning. ``complete`` is False while an
    answer streams (or when the app died mid-answer): what was produced so far is kept. ``tool_calls`` are the calls
    an assistant made while writing this answer, in call order (see StoredToolCall); other messages have none.
    ``attachments`` are the files a user attached to this message, in order (see attachments.py); ``text`` is only
    what was typed, and the model reads both (attachments.message_text). Other messages have none.
    """

    id: int
    chat_id: int
    position: int
    column: int
    role: Role
    text: str
    analysis: str
    effort: Effort | None
    stats: JSONDict
    complete: bool
    created_at: datetime
    tool_calls: tuple[JSONDict, ...] = ()
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatSummary:
    """What the sidebar needs: no messages, no instructions.

    ``updated_at`` is the chat's last activity: its creation or the last write to its messages. Renames, pins and
    settings leave it alone, so that they never move a chat in the sidebar. ``pinned`` chats are listed first.
    """

    id: int
    kind: ChatKind
    title: str
    created_at: datetime
    updated_at: datetime
    model: str
    deleted_at: datetime | None
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class Chat:
    """A chat (or comparison) with its settings and all its messages, ordered by (position, column).

    ``meta`` holds kind-specific extras (e.g. a comparison's "include context" flag) without a schema change.
    An id of 0 marks a chat that is not (yet) in a store, e.g. one parsed from a JSON export. ``updated_at`` and
    ``pinned`` are as in ChatSummary; pinning is the store's (the sidebar's) state and is not exported.
    """

    id: int
    kind: ChatKind
    title: str
    created_at: datetime
    updated_at: datetime
    system_instructions: str
    developer_instructions: str
    model: str
    sampling: JSONDict
    meta: JSONDict
    deleted_at: datetime | None
    messages: tuple[Message, ...] = field(default=())
    pinned: bool = False

    @property
    def summary(self) -> ChatSummary:
        return ChatSummary(
            id=self.id,
            kind=self.kind,
            title=self.title,
            created_at=self.created_at,
            updated_at=self.updated_at,
            model=self.model,
            deleted_at=self.deleted_at,
            pinned=self.pinned,
        )

    @property
    def columns(self) -> tuple[int, ...]:
        return tuple(sorted({m.column for m in self.messages}))

    def thread(self, column: int = 0) -> tuple[Message, ...]:
        """The linear conversation seen from one column.

        At each position the message of ``column`` wins, falling back to the shared column 0 (a comparison's prompt
        and context). For a normal chat this is just its messages.
        """
        by_position: dict[int, Message] = {}
        for message in self.messages:
            if message.column == column or (message.column == 0 and message.position not in by_position):
                by_position[message.position] = message
        return tuple(by_position[p] for p in sorted(by_position))

    def without_ids(self) -> Chat:
        """This chat detached from any store (ids 0), used to compare a chat with its re-imported copy."""
        return replace(
            self,
            id=0,
            deleted_at=None,
            pinned=False,
            messages=tuple(replace(m, id=0, chat_id=0) for m in self.messages),
        )


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One chat matching a search.

    ``snippet`` is a short excerpt around the match with the matched words wrapped in the caller's markers (the
    message's text, reasoning, tool calls or attached files' names when a message matched, else the title).
    ``message_id`` is the best-matching message, if any (for a match in a tool call's arguments or result, the answer
    that made the call; for a match in a file's name, the question it is attached to).
    """

    chat: ChatSummary
    snippet: str
    title_match: bool
    message_id: int | None
