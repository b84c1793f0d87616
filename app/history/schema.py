"""The history database schema: versioned forward migrations plus the (unversioned) full-text index.

Each migration runs in its own transaction together with the row that records it in ``schema_migrations``, so a
crash mid-migration leaves the file at the previous version, and the next start simply retries.

The FTS5 index is derived data, not part of the versioned schema: it is created (and rebuilt from the tables) when
the running SQLite has FTS5, rebuilt in the shape this version defines when a file holds another (an older
version's), and its triggers are dropped when SQLite has no FTS5, so that a file moved between machines stays
writable either way.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

logger = logging.getLogger(__name__)

MIGRATIONS_TABLE: Final = "schema_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]


def _run(conn: sqlite3.Connection, statements: Sequence[str]) -> None:
    # Not executescript(): it COMMITs any open transaction first, which would break the all-or-nothing migration.
    for statement in statements:
        conn.execute(statement)


_V1: Final = (
    """
    CREATE TABLE chats (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL DEFAULT 'chat' CHECK (kind IN ('chat', 'comparison')),
        title TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        system_instructions TEXT NOT NULL DEFAULT '',
        developer_instructions TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        sampling_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(sampling_json)),
        meta_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(meta_json)),
        deleted_at INTEGER
    )
    """,
    # AUTOINCREMENT above: ids are never reused after a purge, so a stale id held by the GUI (e.g. an undo toast)
    # cannot silently point at a different chat.
    "CREATE INDEX chats_recent ON chats (deleted_at, updated_at DESC, id DESC)",
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chat_id INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
        position INTEGER NOT NULL CHECK (position >= 0),
        "column" INTEGER NOT NULL DEFAULT 0 CHECK ("column" >= 0),
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
        text TEXT NOT NULL DEFAULT '',
        analysis TEXT NOT NULL DEFAULT '',
        effort TEXT CHECK (effort IS NULL OR effort IN ('low', 'medium', 'high')),
        stats_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(stats_json)),
        complete INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1)),
        created_at INTEGER NOT NULL,
        UNIQUE (chat_id, position, "column")
    )
    """,
)


def _migrate_v1(conn: sqlite3.Connection) -> None:
    _run(conn, _V1)


def _migrate_v2(conn: sqlite3.Connection) -> None:
    # Imported here: versions.py builds on the row helpers, which import nothing from this module either way.
    from .versions import MIGRATION

    _run(conn, MIGRATION)


# v3: pinned chats. ADD COLUMN with a constant default rewrites no rows, so an old file upgrades in place at once,
# with every chat unpinned. The sidebar's order becomes pinned first, then last activity: the index follows it.
_V3: Final = (
    "ALTER TABLE chats ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1))",
    "DROP INDEX IF EXISTS chats_recent",
    "CREATE INDEX chats_recent ON chats (deleted_at, pinned DESC, updated_at DESC, id DESC)",
)


def _migrate_v3(conn: sqlite3.Connection) -> None:
    _run(conn, _V3)


# v4: the tool calls an answer made while it was written, as a JSON list of call objects in call order (see
# models.StoredToolCall). As in v3 the constant default rewrites no rows: every existing message has no calls. The
# search index is not part of this migration: it is derived data outside the versioned schema, and it covers the
# calls' names, arguments and results since its own shape changed (see the full-text index below).
_V4: Final = (
    "ALTER TABLE messages ADD COLUMN tool_calls_json TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tool_calls_json))",
)


def _migrate_v4(conn: sqlite3.Connection) -> None:
    _run(conn, _V4)


# v5: the files attached to a question, as a JSON list of attachment objects in the order they were attached (see
# attachments.Attachment). As in v3 and v4 the constant default rewrites no rows: every existing message has none.
# The value must be JSON as in v4, but held there by triggers rather than a CHECK on the column: SQLite (3.37 on)
# tests an added column's CHECK against every existing row, so one damaged page of messages would fail the upgrade
# and keep the whole history from opening (such a file opens, and only the chats on that page fail to read).
# The search index covers the files' names (not their contents: up to megabytes each, and a name is what a user
# remembers), through its own change of shape as with the tool calls. The names are also kept apart, a line each, in
# attachment_names, which the store writes with the JSON: reading them out of the JSON in SQL parses all of it (files
# included) once per file, which made saving a question with five 2 MiB files take 0.4 s and every search that met
# it as long (SQLite 3.40 keeps no parsed JSON between calls).
_ATTACHMENTS_NOT_JSON: Final = (
    "WHEN NOT json_valid(new.attachments_json) BEGIN SELECT RAISE(ABORT, 'attachments_json is not JSON'); END"
)
_V5: Final = (
    "ALTER TABLE messages ADD COLUMN attachments_json TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE messages ADD COLUMN attachment_names TEXT NOT NULL DEFAULT ''",
    f"CREATE TRIGGER messages_attachments_json_ai BEFORE INSERT ON messages {_ATTACHMENTS_NOT_JSON}",
    "CREATE TRIGGER messages_attachments_json_au BEFORE UPDATE OF attachments_json ON messages "
    f"{_ATTACHMENTS_NOT_JSON}",
)


def _migrate_v5(conn: sqlite3.Connection) -> None:
    _run(conn, _V5)


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(1, "chats and messages", _migrate_v1),
    Migration(2, "earlier versions of answers and questions", _migrate_v2),
    Migration(3, "pinned chats", _migrate_v3),
    Migration(4, "tool calls of answers", _migrate_v4),
    Migration(5, "files attached to questions", _migrate_v5),
)
SCHEMA_VERSION: Final = MIGRATIONS[-1].version


def create_migrations_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )


def current_version(conn: sqlite3.Connection) -> int:
    """The newest applied migration, 0 for a fresh file (or one without our table)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MIGRATIONS_TABLE,)
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {MIGRATIONS_TABLE}").fetchone()
    return int(row[0])


def user_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").fetchall()
    return [str(r[0]) for r in rows]


# --- full-text index -------------------------------------------------------------------------------------------

# unicode61 folds case for all of Unicode and remove_diacritics 2 lets "cafe" find "café".
_TOKENIZE: Final = "tokenize = 'unicode61 remove_diacritics 2'"

# The namespace of every function tool's name ("functions.get_weather"): left out of the indexed name, or the word
# "functions" would find every chat that called one.
_FUNCTIONS_PREFIX: Final = "functions."


def tool_calls_text_sql(calls: str) -> str:
    """SQL for the searchable text of a ``tool_calls_json`` value (``calls``: a column or other expression): each
    call's tool name, arguments and result, a line each, in call order; '' for a message without calls.

    Scalar JSON functions and a counting CTE only, no json_each: FTS5 reads its content with virtual tables (which
    json_each is) forbidden, and its 'rebuild' of a view that calls json_each fails ("SQL logic error", SQLite
    3.40). The index's content view, its triggers and the scanning search all use this one expression, so they agree
    to the character on what a message's calls say: a trigger's 'delete' must hand FTS5 exactly the indexed text.
    A value that is not JSON (a damaged row) reads as no calls rather than failing every write and search near it.
    """

    def field(key: str) -> str:
        return f"coalesce(json_extract(calls, '$[' || i || '].{key}'), '')"

    skip = len(_FUNCTIONS_PREFIX)
    name = f"CASE WHEN substr(name, 1, {skip}) = '{_FUNCTIONS_PREFIX}' THEN substr(name, {skip + 1}) ELSE name END"
    return (
        f"(SELECT coalesce(group_concat({name} || char(10) || arguments || char(10) || output, char(10)), '') "
        f"FROM (WITH RECURSIVE source (calls) AS (SELECT CASE WHEN json_valid({calls}) THEN {calls} ELSE '[]' END), "
        "nth (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM nth, source WHERE i + 1 < json_array_length(calls)) "
        f"SELECT {field('recipient')} AS name, {field('arguments')} AS arguments, {field('output')} AS output "
        "FROM nth, source WHERE i < json_array_length(calls)))"
    )


# What the message index reads (on a rebuild): the answer, the reasoning, the text of the tool calls (which no column
# holds as text) and the names of the attached files.
MESSAGES_FTS_CONTENT: Final = "messages_fts_content"
_CONTENT_VIEW: Final = (
    f"CREATE VIEW {MESSAGES_FTS_CONTENT} AS SELECT id, text, analysis, "
    f"{tool_calls_text_sql('messages.tool_calls_json')} AS tool_calls, attachment_names AS attachments FROM messages"
)

# Each statement as sqlite_master keeps it, so that ensure_fts can tell an index of another shape from this one.
FTS_TABLES: Final[dict[str, str]] = {
    "chats_fts": "CREATE VIRTUAL TABLE chats_fts USING fts5("
    f"title, content = 'chats', content_rowid = 'id', {_TOKENIZE})",
    "messages_fts": "CREATE VIRTUAL TABLE messages_fts USING fts5(text, analysis, tool_calls, attachments, "
    f"content = '{MESSAGES_FTS_CONTENT}', content_rowid = 'id', {_TOKENIZE})",
}

_NEW_CALLS: Final = tool_calls_text_sql("new.tool_calls_json")
_OLD_CALLS: Final = tool_calls_text_sql("old.tool_calls_json")
_INDEX_NEW: Final = (
    "INSERT INTO messages_fts (rowid, text, analysis, tool_calls, attachments) "
    f"VALUES (new.id, new.text, new.analysis, {_NEW_CALLS}, new.attachment_names);"
)
_UNINDEX_OLD: Final = (
    "INSERT INTO messages_fts (messages_fts, rowid, text, analysis, tool_calls, attachments) "
    f"VALUES ('delete', old.id, old.text, old.analysis, {_OLD_CALLS}, old.attachment_names);"
)

# External-content FTS tables: the triggers keep the index in step with every write, including the cascaded
# message deletes of a purge (SQLite fires triggers for foreign-key actions). The message triggers keep the names
# they had before the index covered tool calls, so that a version of the app without that, run where SQLite lacks
# FTS5, still finds and drops them all (drop_fts_triggers).
FTS_TRIGGERS: Final[dict[str, str]] = {
    "chats_fts_ai": "AFTER INSERT ON chats BEGIN INSERT INTO chats_fts (rowid, title) VALUES (new.id, new.title); END",
    "chats_fts_ad": "AFTER DELETE ON chats BEGIN "
    "INSERT INTO chats_fts (chats_fts, rowid, title) VALUES ('delete', old.id, old.title); END",
    "chats_fts_au": "AFTER UPDATE OF title ON chats BEGIN "
    "INSERT INTO chats_fts (chats_fts, rowid, title) VALUES ('delete', old.id, old.title); "
    "INSERT INTO chats_fts (rowid, title) VALUES (new.id, new.title); END",
    "messages_fts_ai": f"AFTER INSERT ON messages BEGIN {_INDEX_NEW} END",
    "messages_fts_ad": f"AFTER DELETE ON messages BEGIN {_UNINDEX_OLD} END",
    "messages_fts_au": "AFTER UPDATE OF text, analysis, tool_calls_json, attachment_names ON messages BEGIN "
    f"{_UNINDEX_OLD} {_INDEX_NEW} END",
}

# Every piece of the index in the order of creation (the table reads the view, the triggers write the tables):
# name -> (sqlite_master type, CREATE statement).
_FTS_OBJECTS: Final[dict[str, tuple[str, str]]] = {
    MESSAGES_FTS_CONTENT: ("view", _CONTENT_VIEW),
    **{name: ("table", sql) for name, sql in FTS_TABLES.items()},
    **{name: ("trigger", f"CREATE TRIGGER {name} {body}") for name, body in FTS_TRIGGERS.items()},
}


def fts5_available() -> bool:
    """Whether this process's SQLite has FTS5 (a compile-time option; most builds have it, not all)."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("CREATE VIRTUAL TABLE probe USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()
    return True


def _existing(conn: sqlite3.Connection, kind: str, names: Sequence[str]) -> set[str]:
    marks = ", ".join("?" for _ in names)
    rows = conn.execute(f"SELECT name FROM sqlite_master WHERE type = ? AND name IN ({marks})", (kind, *names))
    return {str(r[0]) for r in rows}


def ensure_fts(conn: sqlite3.Connection) -> None:
    """Create each piece of the index (its tables, the view it reads, its triggers) that is missing or differs from
    this version's, then rebuild the index from the tables.

    A missing trigger means writes happened without the index (a fresh file, or one last written by a SQLite
    without FTS5); a piece that differs means an index of another shape (an older version's, without the tool
    calls or the attached files' names). Either way the whole index is rebuilt rather than trusted. Call inside a
    transaction.
    """
    names = list(_FTS_OBJECTS)
    marks = ", ".join("?" for _ in names)
    stored = {
        str(name): (str(kind), sql)
        for kind, name, sql in conn.execute(f"SELECT type, name, sql FROM sqlite_master WHERE name IN ({marks})", names)
    }
    stale = [name for name, wanted in _FTS_OBJECTS.items() if stored.get(name) != wanted]
    if not stale:
        return
    logger.info("building the chat history search index")
    for name in reversed(stale):  # triggers before the tables they write, tables before the view they read
        if name in stored:
            conn.execute(f"DROP {stored[name][0].upper()} {name}")
    for name in stale:
        conn.execute(_FTS_OBJECTS[name][1])
    conn.execute("INSERT INTO chats_fts (chats_fts) VALUES ('rebuild')")
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")


def drop_fts_triggers(conn: sqlite3.Connection) -> None:
    """Without FTS5 the triggers would make every write fail ("no such module: fts5"), so they go.

    The index tables stay (they cannot be dropped without the module); ensure_fts rebuilds them once FTS5 is back.
    Call inside a transaction.
    """
    present = _existing(conn, "trigger", list(FTS_TRIGGERS))
    if present:
        logger.info("chat history: dropping the search index triggers while full-text search is off")
    for name in present:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
