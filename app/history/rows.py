"""SQLite rows of the history to model objects and back: the column lists, the JSON columns, and the decoders that
turn a damaged row into CorruptDatabaseError instead of a crash (no Qt here)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .attachments import attachments_loads
from .errors import CorruptDatabaseError
from .models import (
    Chat,
    ChatSummary,
    JSONDict,
    Message,
    check_effort,
    check_kind,
    check_role,
    clean_tool_calls,
    from_micros,
)

# Row values that a damaged page can hand back and the decoders below refuse.
DECODE_ERRORS: Final = (ValueError, TypeError, OverflowError, KeyError, IndexError)

CHAT_COLUMNS: Final = (
    "id, kind, title, created_at, updated_at, system_instructions, developer_instructions, model, "
    "sampling_json, meta_json, deleted_at, pinned"
)
SUMMARY_COLUMNS: Final = "id, kind, title, created_at, updated_at, model, deleted_at, pinned"
MESSAGE_COLUMNS: Final = (
    'id, chat_id, position, "column", role, text, analysis, effort, stats_json, complete, created_at, tool_calls_json, '
    "attachments_json, attachment_names"
)


def json_loads(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def json_dumps(value: Mapping[str, Any]) -> str:
    # sort_keys: identical settings serialise identically, so diffs of the file and exports stay stable.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True)


def tool_calls_loads(text: str) -> tuple[JSONDict, ...]:
    """The stored tool calls of a message. Unlike the stats (where a stray value reads as no stats), anything but a
    list of call objects raises ValueError: the calls are part of the conversation, so a damaged value is reported,
    not silently read as "no calls"."""
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError(f"tool calls must be a JSON list, not {type(value).__name__}")
    return clean_tool_calls(value)


def tool_calls_dumps(calls: Sequence[Mapping[str, Any]]) -> str:
    # A list keeps the call order; sort_keys inside each call as for the other JSON columns.
    return json.dumps(list(calls), ensure_ascii=False, allow_nan=False, sort_keys=True)


def damaged_row(table: str, exc: Exception) -> CorruptDatabaseError:
    # No path here; ChatStore._errors adds it.
    return CorruptDatabaseError(f"a damaged row in {table} ({type(exc).__name__}: {exc})")


def summary_from_row(row: sqlite3.Row) -> ChatSummary:
    try:
        return ChatSummary(
            id=row["id"],
            kind=check_kind(row["kind"]),
            title=row["title"],
            created_at=from_micros(row["created_at"]),
            updated_at=from_micros(row["updated_at"]),
            model=row["model"],
            deleted_at=None if row["deleted_at"] is None else from_micros(row["deleted_at"]),
            pinned=decode_flag(row["pinned"]),
        )
    except DECODE_ERRORS as exc:
        raise damaged_row("chats", exc) from exc


def decode_flag(value: object) -> bool:
    # The column's CHECK keeps it 0 or 1; anything else came from a damaged page.
    if value not in (0, 1):
        raise ValueError(f"a flag must be 0 or 1, not {value!r}")
    return bool(value)


def message_from_row(row: sqlite3.Row) -> Message:
    try:
        return Message(
            id=row["id"],
            chat_id=row["chat_id"],
            position=row["position"],
            column=row["column"],
            role=check_role(row["role"]),
            text=row["text"],
            analysis=row["analysis"],
            effort=check_effort(row["effort"]),
            stats=json_loads(row["stats_json"]),
            complete=bool(row["complete"]),
            created_at=from_micros(row["created_at"]),
            tool_calls=tool_calls_loads(row["tool_calls_json"]),
            attachments=attachments_loads(row["attachments_json"]),
        )
    except DECODE_ERRORS as exc:
        raise damaged_row("messages", exc) from exc


def chat_from_row(row: sqlite3.Row, messages: list[Message]) -> Chat:
    """A chat row (every column of ``CHAT_COLUMNS``) and its decoded messages; a damaged row is
    CorruptDatabaseError, as for summaries and messages."""
    try:
        return Chat(
            id=row["id"],
            kind=check_kind(row["kind"]),
            title=row["title"],
            created_at=from_micros(row["created_at"]),
            updated_at=from_micros(row["updated_at"]),
            system_instructions=row["system_instructions"],
            developer_instructions=row["developer_instructions"],
            model=row["model"],
            sampling=json_loads(row["sampling_json"]),
            meta=json_loads(row["meta_json"]),
            deleted_at=None if row["deleted_at"] is None else from_micros(row["deleted_at"]),
            messages=tuple(messages),
            pinned=decode_flag(row["pinned"]),
        )
    except DECODE_ERRORS as exc:
        raise damaged_row("chats", exc) from exc
