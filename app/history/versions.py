"""Versions of a chat's answers and questions: regenerating an answer or editing a question never deletes what was
there; it becomes an earlier version that the user can go back to (‹ 1/3 ›). No Qt here.

A chat's messages table holds the thread on screen, the *live* one. Making a new version from ``position`` on moves
the live messages from there to the end into a *branch*: one row of ``branches`` holding them as JSON (so every
other query, search and export see only the live thread, as before). Versions nest the way the conversation does:
a branch archived at ``position`` takes with it the versions of its later messages (their ``parent_id`` becomes
the new branch), and when a branch comes back to life its own nested versions become live-level again.

The versions at one position are the live-level branches there plus the live messages (when there are any),
ordered by when each version's first message was written, so switching never renumbers them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from .models import Message
from .rows import MESSAGE_COLUMNS, message_from_row

MIGRATION: Final = (
    """
    CREATE TABLE branches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chat_id INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
        position INTEGER NOT NULL CHECK (position >= 0),
        parent_id INTEGER REFERENCES branches (id) ON DELETE CASCADE,
        started_at INTEGER NOT NULL,
        messages_json TEXT NOT NULL CHECK (json_valid(messages_json))
    )
    """,
    "CREATE INDEX branches_by_chat ON branches (chat_id, parent_id, position)",
)

# The fields a message keeps while archived (its id is not kept: it gets a new one when it comes back).
_ARCHIVED_FIELDS: Final = (
    "position",
    "column",
    "role",
    "text",
    "analysis",
    "effort",
    "stats_json",
    "complete",
    "tool_calls_json",
    "attachments_json",
    "attachment_names",
)
# Fields that branches archived by an older version of the app lack, with the value they had there: before schema
# v4 no message had tool calls, before v5 none had attached files.
_ARCHIVED_DEFAULTS: Final[dict[str, Any]] = {"tool_calls_json": "[]", "attachments_json": "[]", "attachment_names": ""}


@dataclass(frozen=True, slots=True)
class Versions:
    """The versions at one position of a chat: ``current`` is the one on screen (0-based), of ``count``."""

    position: int
    current: int
    count: int


def archive_from(conn: sqlite3.Connection, chat_id: int, position: int) -> int | None:
    """Move the live messages at ``position`` and after into a new branch; its id, or None if there were none.

    The caller is in a write transaction and writes the new version's first message at ``position`` next.
    """
    rows = conn.execute(
        f'SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? AND position >= ? AND "column" = 0 '
        "ORDER BY position",
        (chat_id, position),
    ).fetchall()
    if not rows:
        return None
    archived = [{field: row[field] for field in _ARCHIVED_FIELDS} | {"created_at": row["created_at"]} for row in rows]
    branch_id = _insert_branch(conn, chat_id, position, rows[0]["created_at"], archived)
    # The live thread's later versions belong to the messages just archived: they go with them.
    conn.execute(
        "UPDATE branches SET parent_id = ? WHERE chat_id = ? AND parent_id IS NULL AND position > ? AND id != ?",
        (branch_id, chat_id, position, branch_id),
    )
    conn.execute('DELETE FROM messages WHERE chat_id = ? AND position >= ? AND "column" = 0', (chat_id, position))
    return branch_id


def versions_of(conn: sqlite3.Connection, chat_id: int) -> dict[int, Versions]:
    """Every position of the live thread that has more than one version (positions without are left out)."""
    starts = {
        int(row[0]): int(row[1])
        for row in conn.execute(
            'SELECT position, created_at FROM messages WHERE chat_id = ? AND "column" = 0', (chat_id,)
        )
    }
    branches: dict[int, list[int]] = {}
    for position, started_at in conn.execute(
        "SELECT position, started_at FROM branches WHERE chat_id = ? AND parent_id IS NULL", (chat_id,)
    ):
        branches.setdefault(int(position), []).append(int(started_at))
    found = {}
    for position, archived in branches.items():
        live = starts.get(position)
        # A live version being written right now (a regenerated answer not saved yet) is the newest.
        count = len(archived) + 1
        current = len(archived) if live is None else sum(1 for started in archived if started <= live)
        found[position] = Versions(position, current, count)
    return found


def show_version(conn: sqlite3.Connection, chat_id: int, position: int, index: int) -> None:
    """Make version ``index`` (0-based, as counted by :func:`versions_of`) at ``position`` the live one; the live
    one becomes a branch. Raises IndexError for a version that does not exist; no-op for the live one."""
    versions = versions_of(conn, chat_id).get(position)
    if versions is None or not 0 <= index < versions.count:
        raise IndexError(f"no version {index + 1} at position {position}")
    if index == versions.current:
        return
    ordered = _branches_in_order(conn, chat_id, position, live_index=versions.current)
    branch_id = ordered[index]
    assert branch_id is not None  # only the live version has no branch row, and it is not the one asked for
    row = conn.execute("SELECT messages_json FROM branches WHERE id = ?", (branch_id,)).fetchone()
    archive_from(conn, chat_id, position)
    for message in json.loads(row[0]):
        _insert_message(conn, chat_id, message)
    conn.execute("UPDATE branches SET parent_id = NULL WHERE parent_id = ?", (branch_id,))
    conn.execute("DELETE FROM branches WHERE id = ?", (branch_id,))


def archived_messages(conn: sqlite3.Connection, chat_id: int, position: int, index: int) -> list[Message]:
    """The messages of version ``index`` at ``position`` without making it live (ids are 0: they have none)."""
    versions = versions_of(conn, chat_id).get(position)
    if versions is None or not 0 <= index < versions.count:
        raise IndexError(f"no version {index + 1} at position {position}")
    branch_id = _branches_in_order(conn, chat_id, position, live_index=versions.current)[index]
    if branch_id is None:
        rows = conn.execute(
            f'SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? AND position >= ? AND "column" = 0 '
            "ORDER BY position",
            (chat_id, position),
        )
        return [message_from_row(r) for r in rows]
    (text,) = conn.execute("SELECT messages_json FROM branches WHERE id = ?", (branch_id,)).fetchone()
    return [_message(chat_id, m) for m in json.loads(text)]


def _branches_in_order(conn: sqlite3.Connection, chat_id: int, position: int, *, live_index: int) -> list[int | None]:
    """Branch ids of the versions at ``position`` in version order, None standing for the live version."""
    ids: list[int | None] = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM branches WHERE chat_id = ? AND parent_id IS NULL AND position = ? ORDER BY started_at, id",
            (chat_id, position),
        )
    ]
    ids.insert(live_index, None)
    return ids


def _insert_branch(
    conn: sqlite3.Connection, chat_id: int, position: int, started_at: int, messages: Sequence[dict[str, Any]]
) -> int:
    cursor = conn.execute(
        "INSERT INTO branches (chat_id, position, started_at, messages_json) VALUES (?, ?, ?, ?)",
        (chat_id, position, started_at, json.dumps(list(messages), ensure_ascii=False)),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _unarchived(message: dict[str, Any]) -> dict[str, Any]:
    """An archived message with the fields older archives lack filled in."""
    return _ARCHIVED_DEFAULTS | message


def _insert_message(conn: sqlite3.Connection, chat_id: int, message: dict[str, Any]) -> None:
    message = _unarchived(message)
    columns = ", ".join(f'"{field}"' for field in _ARCHIVED_FIELDS)
    marks = ", ".join("?" for _ in _ARCHIVED_FIELDS)
    conn.execute(
        f"INSERT INTO messages (chat_id, {columns}, created_at) VALUES (?, {marks}, ?)",
        (chat_id, *(message[field] for field in _ARCHIVED_FIELDS), message["created_at"]),
    )


def _message(chat_id: int, archived: dict[str, Any]) -> Message:
    row = {"id": 0, "chat_id": chat_id, **_unarchived(archived)}
    return message_from_row(row)  # type: ignore[arg-type]
