"""ChatStore: the SQLite-backed chat history (stdlib sqlite3, WAL, foreign keys, explicit transactions).

Threading: one connection guarded by a re-entrant lock, so the store may be called from the GUI thread and from
worker threads alike; a transaction holds the lock until it ends. Other processes (or other ChatStore instances)
may read the same file while this one writes: WAL gives readers the last committed state without blocking.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from gpt_oss_desktop.engine.private_files import create_private_file

from . import schema
from .errors import (
    ChatNotFoundError,
    CorruptDatabaseError,
    ForeignDatabaseError,
    HistoryError,
    SchemaTooNewError,
    SearchCancelledError,
    StoreClosedError,
)
from .export import chat_from_json, chat_to_json, chat_to_markdown
from .models import (
    EFFORTS,
    Chat,
    ChatKind,
    ChatSummary,
    Message,
    SearchHit,
    check_effort,
    check_kind,
    check_role,
    clean_json_dict,
    from_micros,
    to_micros,
    utc_now,
)
from .search import SNIPPET_SCAN_CHARS, contains_all, fts_query, make_snippet, query_terms, shorten

logger = logging.getLogger(__name__)

DEFAULT_TITLE: Final = "New chat"
BUSY_TIMEOUT_S: Final = 5.0
_MAX_TITLE_FROM_PROMPT: Final = 60
# Cap on message rows a search reads; a sidebar shows a few dozen chats at most and the best-ranked rows come first.
_SEARCH_ROW_CAP: Final = 2000
# A cancellable search checks whether it was cancelled every this many SQLite VM steps (well under a millisecond).
_PROGRESS_STEPS: Final = 1000
# Characters of a message a snippet is made from: the part it scans plus the context after a match at its very end.
_SNIPPET_FETCH_CHARS: Final = SNIPPET_SCAN_CHARS + 200
# Characters of context fetched before a match found past the first SNIPPET_SCAN_CHARS (and thrice that in all).
_SNIPPET_CONTEXT_CHARS: Final = 60
# Row values that a damaged page can hand back and the decoders below refuse.
_DECODE_ERRORS: Final = (ValueError, TypeError, OverflowError, KeyError, IndexError)

_CHAT_COLUMNS: Final = (
    "id, kind, title, created_at, updated_at, system_instructions, developer_instructions, model, "
    "sampling_json, meta_json, deleted_at"
)
_SUMMARY_COLUMNS: Final = "id, kind, title, created_at, updated_at, model, deleted_at"
_MESSAGE_COLUMNS: Final = (
    'id, chat_id, position, "column", role, text, analysis, effort, stats_json, complete, created_at'
)


def _json_loads(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _json_dumps(value: Mapping[str, Any]) -> str:
    # sort_keys: identical settings serialise identically, so diffs of the file and exports stay stable.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True)


def _damaged_row(table: str, exc: Exception) -> CorruptDatabaseError:
    # No path here; ChatStore._errors adds it.
    return CorruptDatabaseError(f"a damaged row in {table} ({type(exc).__name__}: {exc})")


def _summary(row: sqlite3.Row) -> ChatSummary:
    try:
        return ChatSummary(
            id=row["id"],
            kind=check_kind(row["kind"]),
            title=row["title"],
            created_at=from_micros(row["created_at"]),
            updated_at=from_micros(row["updated_at"]),
            model=row["model"],
            deleted_at=None if row["deleted_at"] is None else from_micros(row["deleted_at"]),
        )
    except _DECODE_ERRORS as exc:
        raise _damaged_row("chats", exc) from exc


def _message(row: sqlite3.Row) -> Message:
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
            stats=_json_loads(row["stats_json"]),
            complete=bool(row["complete"]),
            created_at=from_micros(row["created_at"]),
        )
    except _DECODE_ERRORS as exc:
        raise _damaged_row("messages", exc) from exc


def _clean_title(title: str) -> str:
    # Titles are single sidebar lines; a pasted multi-line title would break the layout.
    cleaned = " ".join(title.split())
    if not cleaned:
        raise ValueError("a chat title must not be empty")
    return cleaned


def title_from_prompt(prompt: str) -> str:
    """A sidebar title from a first prompt: its first line, shortened at a word boundary."""
    first = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    if not first:
        return DEFAULT_TITLE
    if len(first) <= _MAX_TITLE_FROM_PROMPT:
        return first
    cut = first[:_MAX_TITLE_FROM_PROMPT].rsplit(" ", 1)[0]
    return (cut or first[:_MAX_TITLE_FROM_PROMPT]) + "…"


class ChatStore:
    """Persistent chat history in one SQLite file.

    Args:
        path: the database file (created with its parent folders if missing). The app passes
            ``engine.paths.user_data_dir() / "history.sqlite3"``.
        use_fts: force the full-text index on or off; None uses FTS5 when this SQLite has it. Off makes search
            scan with a Unicode-aware substring match instead.
        clock: the current time (timezone-aware); injectable so tests can order chats deterministically.

    Raises:
        CorruptDatabaseError: the file is not a SQLite database (it is left untouched).
        ForeignDatabaseError: a SQLite database that belongs to something else.
        SchemaTooNewError: written by a newer app version (left untouched).
        HistoryError: the file cannot be opened at all (permissions, a folder, locked for too long).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        use_fts: bool | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._path = Path(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._depth = 0  # transaction nesting: 0 none, 1 BEGIN, >1 savepoints
        self._conn: sqlite3.Connection | None = None
        conn = self._connect()
        try:
            self._check_file(conn)
            self._configure(conn)
            self._conn = conn
            self._migrate()
            self._fts = schema.fts5_available() if use_fts is None else (use_fts and schema.fts5_available())
            if not self._fts:
                logger.warning("chat history: full-text search is off; search scans the messages instead")
            with self.transaction():
                if self._fts:
                    schema.ensure_fts(conn)
                else:
                    schema.drop_fts_triggers(conn)
        except BaseException:
            self._conn = None
            conn.close()
            raise
        logger.info("chat history open at %s (full-text search %s)", self._path, "on" if self._fts else "off")

    # --- opening -------------------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._path.is_dir():
            raise HistoryError("is a folder, not a chat history file", self._path)
        try:
            if self._path.exists():
                # SQLite says only "unable to open database file"; the OS names the cause (permission denied...).
                # Read-write, as the store needs it: a read-only file would fail at the first save instead.
                self._path.open("r+b").close()
        except OSError as exc:
            raise HistoryError(f"cannot open the file: {exc.strerror or exc}", self._path) from exc
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            create_private_file(self._path)  # 0600 before SQLite opens it; its -wal/-shm copy the mode
            # isolation_level=None: the sqlite3 module's implicit BEGINs are off; this class issues BEGIN/COMMIT
            # itself so that every multi-statement change is exactly one transaction.
            conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open chat history: {exc}", self._path) from exc
        conn.row_factory = sqlite3.Row
        return conn

    def _check_file(self, conn: sqlite3.Connection) -> None:
        """Refuse files that are not ours before anything (even the WAL switch) writes to them."""
        try:
            version = schema.current_version(conn)
            tables = schema.user_tables(conn)
        except sqlite3.OperationalError as exc:
            # Locked, unreadable, I/O: the file may be fine, so it is not called corrupt.
            raise HistoryError(f"cannot read chat history: {exc}", self._path) from exc
        except sqlite3.DatabaseError as exc:
            raise CorruptDatabaseError(
                f"not a readable chat history database ({exc}); the file was left as it is — move it away "
                "to start a new history",
                self._path,
            ) from exc
        if version > schema.SCHEMA_VERSION:
            raise SchemaTooNewError(self._path, version, schema.SCHEMA_VERSION)
        if version == 0 and tables:
            raise ForeignDatabaseError(
                f"a SQLite database of another program (tables: {', '.join(sorted(tables)[:5])}); not touched",
                self._path,
            )

    def _configure(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            # synchronous stays at its default FULL: a finished answer must survive a power cut, and commits
            # are few (one per message, plus throttled partial saves).
            conn.create_function("history_contains", -1, contains_all, deterministic=True)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot configure chat history: {exc}", self._path) from exc
        if str(mode).lower() != "wal":
            logger.warning("chat history %s: journal mode is %s, not WAL", self._path, mode)

    def _migrate(self) -> None:
        for migration in schema.MIGRATIONS:
            with self.transaction():
                conn = self._connection()
                schema.create_migrations_table(conn)
                # Re-read inside the write lock: another process may have migrated since we looked.
                if schema.current_version(conn) >= migration.version:
                    continue
                logger.info("chat history: migrating to v%d (%s)", migration.version, migration.description)
                migration.apply(conn)
                conn.execute(
                    f"INSERT INTO {schema.MIGRATIONS_TABLE} (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, to_micros(self._clock())),
                )

    # --- plumbing -------------------------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def fts_enabled(self) -> bool:
        """Whether search uses the FTS5 index (else a scan)."""
        return self._fts

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosedError("the chat history store is closed", self._path)
        return self._conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Report SQLite failures (and rows a damaged page garbled) as HistoryError naming the file; other exceptions
        pass through unchanged."""
        with _translated_errors(self._path):
            yield

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all.

        Any exception inside rolls back everything done in the block and propagates. Nested blocks become
        savepoints, so an inner failure that the caller catches undoes only the inner block. BEGIN IMMEDIATE takes
        the write lock up front, which avoids the deadlock of two readers upgrading to writers at once.
        """
        with self._lock:
            conn = self._connection()
            name = f"sp{self._depth}"
            with self._errors():
                conn.execute("BEGIN IMMEDIATE" if self._depth == 0 else f"SAVEPOINT {name}")
            self._depth += 1
            try:
                # Translated here too: the store's own blocks (migrations, the index) run raw SQL inside.
                with self._errors():
                    yield
            except BaseException:
                self._depth -= 1
                self._undo(conn, name)
                raise
            self._depth -= 1
            try:
                with self._errors():
                    conn.execute("COMMIT" if self._depth == 0 else f"RELEASE {name}")
            except HistoryError:
                self._undo(conn, name)
                raise

    def _undo(self, conn: sqlite3.Connection, savepoint: str) -> None:
        try:
            if self._depth == 0:
                conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO {savepoint}")
                conn.execute(f"RELEASE {savepoint}")
        except sqlite3.Error:
            # SQLite may already have rolled back by itself (e.g. after SQLITE_FULL); the original error matters.
            logger.exception("chat history: rollback failed")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for reads spanning several statements (a chat row and its messages)."""
        with self._lock:
            conn = self._connection()
            if self._depth:
                with self._errors():
                    yield conn
                return
            with self._errors():
                conn.execute("BEGIN DEFERRED")
            try:
                with self._errors():
                    yield conn
            except BaseException:
                # The read failed (a damaged page, say): end the snapshot without letting a second error from
                # SQLite replace the first, which says what went wrong.
                _end_read_quietly(conn)
                raise
            # COMMIT can fail too (it reported a damaged page as a raw sqlite3.DatabaseError before).
            try:
                with self._errors():
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except HistoryError:
                _end_read_quietly(conn)
                raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self.transaction(), self._errors():
            yield self._connection()

    def _now(self) -> int:
        return to_micros(self._clock())

    def close(self) -> None:
        """Close the database (idempotent). SQLite checkpoints the WAL into the main file on the last close."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                with self._errors():
                    conn.close()
                logger.info("chat history closed: %s", self._path)

    def __enter__(self) -> ChatStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- chats ----------------------------------------------------------------------------------------------------

    def _require_chat(self, conn: sqlite3.Connection, chat_id: int) -> sqlite3.Row:
        row = conn.execute(f"SELECT {_CHAT_COLUMNS} FROM chats WHERE id = ?", (chat_id,)).fetchone()
        if row is None:
            raise ChatNotFoundError(f"no chat with id {chat_id}", self._path)
        return row

    def _touch(self, conn: sqlite3.Connection, chat_id: int) -> None:
        conn.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (self._now(), chat_id))

    def _insert_chat(
        self,
        conn: sqlite3.Connection,
        *,
        title: str,
        kind: ChatKind,
        system_instructions: str,
        developer_instructions: str,
        model: str,
        sampling: Mapping[str, Any] | None,
        meta: Mapping[str, Any] | None,
        created_at: int | None = None,
        updated_at: int | None = None,
    ) -> int:
        now = self._now()
        cursor = conn.execute(
            "INSERT INTO chats (kind, title, created_at, updated_at, system_instructions, developer_instructions, "
            "model, sampling_json, meta_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                check_kind(kind),
                _clean_title(title),
                now if created_at is None else created_at,
                now if updated_at is None else updated_at,
                system_instructions,
                developer_instructions,
                model,
                _json_dumps(clean_json_dict(sampling, "sampling")),
                _json_dumps(clean_json_dict(meta, "meta")),
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def create_chat(
        self,
        title: str = DEFAULT_TITLE,
        *,
        kind: ChatKind = "chat",
        system_instructions: str = "",
        developer_instructions: str = "",
        model: str = "",
        sampling: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Chat:
        """A new, empty chat. ``sampling`` holds temperature, top_p, max_tokens, ... as JSON."""
        with self._write() as conn:
            chat_id = self._insert_chat(
                conn,
                title=title,
                kind=kind,
                system_instructions=system_instructions,
                developer_instructions=developer_instructions,
                model=model,
                sampling=sampling,
                meta=meta,
            )
            return self._load_chat(conn, chat_id)

    def rename_chat(self, chat_id: int, title: str) -> ChatSummary:
        """Rename without moving the chat in the recency order (a rename is not new activity)."""
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            conn.execute("UPDATE chats SET title = ? WHERE id = ?", (_clean_title(title), chat_id))
            return _summary(self._require_chat(conn, chat_id))

    def update_chat(
        self,
        chat_id: int,
        *,
        system_instructions: str | None = None,
        developer_instructions: str | None = None,
        model: str | None = None,
        sampling: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Chat:
        """Change per-chat settings; arguments left as None keep their stored value."""
        changes: dict[str, Any] = {}
        if system_instructions is not None:
            changes["system_instructions"] = system_instructions
        if developer_instructions is not None:
            changes["developer_instructions"] = developer_instructions
        if model is not None:
            changes["model"] = model
        if sampling is not None:
            changes["sampling_json"] = _json_dumps(clean_json_dict(sampling, "sampling"))
        if meta is not None:
            changes["meta_json"] = _json_dumps(clean_json_dict(meta, "meta"))
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            if changes:
                # Column names come from the fixed keys above, never from the caller.
                assignments = ", ".join(f"{column} = ?" for column in changes)
                conn.execute(f"UPDATE chats SET {assignments} WHERE id = ?", (*changes.values(), chat_id))
                self._touch(conn, chat_id)
            return self._load_chat(conn, chat_id)

    def list_chats(
        self, *, kind: ChatKind | None = None, include_deleted: bool = False, limit: int | None = None
    ) -> list[ChatSummary]:
        """Chats, most recently active first (ties broken by newest id), without soft-deleted ones by default."""
        where: list[str] = []
        params: list[Any] = []
        if not include_deleted:
            where.append("deleted_at IS NULL")
        if kind is not None:
            where.append("kind = ?")
            params.append(check_kind(kind))
        sql = f"SELECT {_SUMMARY_COLUMNS} FROM chats"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read() as conn:
            return [_summary(row) for row in conn.execute(sql, params)]

    def _load_chat(self, conn: sqlite3.Connection, chat_id: int) -> Chat:
        row = self._require_chat(conn, chat_id)
        messages = conn.execute(
            f'SELECT {_MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? ORDER BY position, "column"', (chat_id,)
        ).fetchall()
        return Chat(
            id=row["id"],
            kind=check_kind(row["kind"]),
            title=row["title"],
            created_at=from_micros(row["created_at"]),
            updated_at=from_micros(row["updated_at"]),
            system_instructions=row["system_instructions"],
            developer_instructions=row["developer_instructions"],
            model=row["model"],
            sampling=_json_loads(row["sampling_json"]),
            meta=_json_loads(row["meta_json"]),
            deleted_at=None if row["deleted_at"] is None else from_micros(row["deleted_at"]),
            messages=tuple(_message(m) for m in messages),
        )

    def get_chat(self, chat_id: int) -> Chat:
        """A chat with all its messages (also a soft-deleted one, so an undo can show what comes back)."""
        with self._read() as conn:
            return self._load_chat(conn, chat_id)

    def delete_chat(self, chat_id: int) -> None:
        """Soft delete: hidden from lists and search until undo_delete, or gone for good after purge."""
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            conn.execute("UPDATE chats SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL", (self._now(), chat_id))

    def undo_delete(self, chat_id: int) -> None:
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            conn.execute("UPDATE chats SET deleted_at = NULL WHERE id = ?", (chat_id,))

    def purge(self, older_than: timedelta = timedelta(0)) -> int:
        """Hard-delete chats soft-deleted at least ``older_than`` ago (messages go by cascade). Returns the count."""
        cutoff = to_micros(self._clock() - older_than)
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM chats WHERE deleted_at IS NOT NULL AND deleted_at <= ?", (cutoff,))
            count = cursor.rowcount
        if count:
            logger.info("chat history: purged %d deleted chat(s)", count)
        return count

    # --- messages -------------------------------------------------------------------------------------------------

    def _insert_message(
        self,
        conn: sqlite3.Connection,
        chat_id: int,
        *,
        role: str,
        text: str,
        analysis: str,
        effort: str | None,
        stats: Mapping[str, Any] | None,
        complete: bool,
        position: int | None,
        column: int,
        created_at: int | None = None,
    ) -> int:
        checked_role = check_role(role)
        checked_effort = check_effort(effort)
        if checked_effort is not None and checked_role != "assistant":
            raise ValueError("only assistant messages carry a reasoning effort")
        if column < 0 or (position is not None and position < 0):
            raise ValueError("position and column must not be negative")
        if position is None:
            row = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE chat_id = ?", (chat_id,))
            position = int(row.fetchone()[0])
        cursor = conn.execute(
            'INSERT INTO messages (chat_id, position, "column", role, text, analysis, effort, stats_json, complete, '
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                position,
                column,
                checked_role,
                text,
                analysis,
                checked_effort,
                _json_dumps(clean_json_dict(stats, "stats")),
                int(complete),
                self._now() if created_at is None else created_at,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _load_message(self, conn: sqlite3.Connection, message_id: int) -> Message:
        row = conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise ChatNotFoundError(f"no message with id {message_id}", self._path)
        return _message(row)

    def add_message(
        self,
        chat_id: int,
        role: str,
        text: str = "",
        *,
        analysis: str = "",
        effort: str | None = None,
        stats: Mapping[str, Any] | None = None,
        complete: bool = True,
        position: int | None = None,
        column: int = 0,
    ) -> Message:
        """Append a message (``position`` None = after the last one) and mark the chat as recently active.

        For a streaming answer, add it with ``complete=False`` when generation starts, save progress with
        update_message(..., complete=False) every few seconds, and finish with complete=True and the stats.
        """
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            message_id = self._insert_message(
                conn,
                chat_id,
                role=role,
                text=text,
                analysis=analysis,
                effort=effort,
                stats=stats,
                complete=complete,
                position=position,
                column=column,
            )
            self._touch(conn, chat_id)
            return self._load_message(conn, message_id)

    def update_message(
        self,
        message_id: int,
        *,
        text: str | None = None,
        analysis: str | None = None,
        effort: str | None = None,
        stats: Mapping[str, Any] | None = None,
        complete: bool | None = None,
    ) -> Message:
        """Replace fields of a message; None keeps the stored value.

        Used both for the final save of a streamed answer and for partial saves while it streams: each call is
        one transaction, so after a crash the message holds the last saved prefix with complete=False.
        """
        changes: dict[str, Any] = {}
        if text is not None:
            changes["text"] = text
        if analysis is not None:
            changes["analysis"] = analysis
        if stats is not None:
            changes["stats_json"] = _json_dumps(clean_json_dict(stats, "stats"))
        if complete is not None:
            changes["complete"] = int(complete)
        with self._write() as conn:
            current = self._load_message(conn, message_id)
            if effort is not None:
                if current.role != "assistant":
                    raise ValueError("only assistant messages carry a reasoning effort")
                changes["effort"] = check_effort(effort)
            if changes:
                assignments = ", ".join(f'"{column}" = ?' for column in changes)
                conn.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*changes.values(), message_id))
                self._touch(conn, current.chat_id)
            return self._load_message(conn, message_id)

    def delete_messages_from(self, chat_id: int, position: int) -> int:
        """Hard-delete every message at ``position`` or later (regenerate, or edit-and-resend). Returns the count."""
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            count = conn.execute(
                "DELETE FROM messages WHERE chat_id = ? AND position >= ?", (chat_id, position)
            ).rowcount
            if count:
                self._touch(conn, chat_id)
            return count

    def replace_messages_from(self, chat_id: int, position: int, role: str, text: str) -> Message:
        """Replace every message at ``position`` or later by one new message there (an edited last question).

        One transaction: after a crash the chat holds either the old messages or the new one, never neither, so an
        edit can never leave a chat empty.
        """
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            conn.execute("DELETE FROM messages WHERE chat_id = ? AND position >= ?", (chat_id, position))
            message_id = self._insert_message(
                conn,
                chat_id,
                role=role,
                text=text,
                analysis="",
                effort=None,
                stats=None,
                complete=True,
                position=position,
                column=0,
            )
            self._touch(conn, chat_id)
            return self._load_message(conn, message_id)

    # --- comparisons ----------------------------------------------------------------------------------------------

    def create_comparison(
        self,
        prompt: str,
        efforts: Sequence[str] = EFFORTS,
        *,
        context: Sequence[Message] = (),
        title: str | None = None,
        system_instructions: str = "",
        developer_instructions: str = "",
        model: str = "",
        sampling: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Chat:
        """A comparison entry: optional context turns, the prompt, then one empty answer per effort.

        The answers share one position and sit in columns 0..n-1 in the order of ``efforts``; they start with
        complete=False and are filled in with update_message as the columns stream.
        """
        if not efforts:
            raise ValueError("a comparison needs at least one effort")
        with self._write() as conn:
            chat_id = self._insert_chat(
                conn,
                title=title if title is not None else title_from_prompt(prompt),
                kind="comparison",
                system_instructions=system_instructions,
                developer_instructions=developer_instructions,
                model=model,
                sampling=sampling,
                meta=meta,
            )
            for index, message in enumerate(context):
                self._copy_message(conn, chat_id, message, index)
            prompt_position = len(context)
            self._insert_message(
                conn,
                chat_id,
                role="user",
                text=prompt,
                analysis="",
                effort=None,
                stats=None,
                complete=True,
                position=prompt_position,
                column=0,
            )
            for column, effort in enumerate(efforts):
                self._insert_message(
                    conn,
                    chat_id,
                    role="assistant",
                    text="",
                    analysis="",
                    effort=effort,
                    stats=None,
                    complete=False,
                    position=prompt_position + 1,
                    column=column,
                )
            return self._load_chat(conn, chat_id)

    def _copy_message(self, conn: sqlite3.Connection, chat_id: int, message: Message, position: int) -> None:
        self._insert_message(
            conn,
            chat_id,
            role=message.role,
            text=message.text,
            analysis=message.analysis,
            effort=message.effort,
            stats=message.stats,
            complete=message.complete,
            position=position,
            column=0,
            created_at=to_micros(message.created_at),
        )

    def continue_from_column(self, chat_id: int, column: int, *, title: str | None = None) -> Chat:
        """A new normal chat holding one column's thread of a comparison (context, prompt, that answer)."""
        with self._write() as conn:
            source = self._load_chat(conn, chat_id)
            if column not in source.columns:
                raise ValueError(f"chat {chat_id} has no column {column}")
            thread = source.thread(column)
            effort = next((m.effort for m in reversed(thread) if m.role == "assistant" and m.effort), None)
            new_id = self._insert_chat(
                conn,
                title=title if title is not None else (f"{source.title} ({effort})" if effort else source.title),
                kind="chat",
                system_instructions=source.system_instructions,
                developer_instructions=source.developer_instructions,
                model=source.model,
                sampling=source.sampling,
                meta={"continued_from": {"chat_id": chat_id, "column": column}},
            )
            for position, message in enumerate(thread):
                self._copy_message(conn, new_id, message, position)
            return self._load_chat(conn, new_id)

    # --- search ---------------------------------------------------------------------------------------------------

    def search(self, query: str, *, limit: int = 50, start: str = "[", end: str = "]") -> list[SearchHit]:
        """Chats whose title or messages (answer or reasoning) contain every word of ``query``.

        Case-insensitive; with FTS5 each word also matches as a prefix ("pyth" finds "Python"), without it as a
        substring. One hit per chat, most recently active first; deleted chats are left out. Matched words in
        the snippet are wrapped in ``start``/``end`` (escape the text before adding HTML markers in a view).

        The cost is bounded per message whatever its size (see search.py). Still, this runs on the store's shared
        connection and holds its lock throughout; the GUI searches with open_searcher() on a worker thread instead.
        """
        terms = query_terms(query)
        if not terms:
            return []
        with self._read() as conn:
            return _find(conn, self._fts, terms, limit, start, end, _never)

    def open_searcher(self) -> HistorySearcher:
        """A searcher with a connection of its own to this file, for a worker thread (see HistorySearcher)."""
        self._connection()  # a closed store hands out no searchers
        return HistorySearcher(self._path, fts=self._fts)

    # --- export / import ------------------------------------------------------------------------------------------

    def export_markdown(self, chat_id: int) -> str:
        return chat_to_markdown(self.get_chat(chat_id))

    def export_json(self, chat_id: int) -> str:
        return chat_to_json(self.get_chat(chat_id))

    def import_json(self, text: str) -> Chat:
        """Recreate a chat from export_json output as a new chat (new ids, original times). All or nothing."""
        parsed = chat_from_json(text)
        with self._write() as conn:
            chat_id = self._insert_chat(
                conn,
                title=parsed.title,
                kind=parsed.kind,
                system_instructions=parsed.system_instructions,
                developer_instructions=parsed.developer_instructions,
                model=parsed.model,
                sampling=parsed.sampling,
                meta=parsed.meta,
                created_at=to_micros(parsed.created_at),
                updated_at=to_micros(parsed.updated_at),
            )
            for message in parsed.messages:
                self._insert_message(
                    conn,
                    chat_id,
                    role=message.role,
                    text=message.text,
                    analysis=message.analysis,
                    effort=message.effort,
                    stats=message.stats,
                    complete=message.complete,
                    position=message.position,
                    column=message.column,
                    created_at=to_micros(message.created_at),
                )
            return self._load_chat(conn, chat_id)


class HistorySearcher:
    """Searches the history on a connection of its own, for one worker thread at a time; searches can be cancelled.

    The store's connection is shared with the GUI thread under a lock, so a search there would hold up saving a
    message. This connection reads the last committed state (WAL readers neither block the store nor wait for it),
    and a search on it checks its ``cancelled`` callable while SQLite works and between snippets.
    """

    def __init__(self, path: Path, *, fts: bool) -> None:
        self._path = path
        self._fts = fts
        self._conn: sqlite3.Connection | None = None  # opened by the first search, on the thread that searches
        self._cancelled: Callable[[], bool] = _never  # the running search's

    @property
    def path(self) -> Path:
        return self._path

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            with _translated_errors(self._path):
                conn = sqlite3.connect(
                    self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
                try:
                    conn.row_factory = sqlite3.Row
                    conn.execute("PRAGMA query_only = ON")  # this connection only ever reads
                    # The scanning function asks the running search whether to go on (see contains_all).
                    conn.create_function("history_contains", -1, self._contains, deterministic=True)
                except BaseException:
                    conn.close()
                    raise
            self._conn = conn
        return self._conn

    def _contains(self, text: str | bytes | None, *terms: str) -> bool:
        # An exception here makes SQLite fail the statement, which search() reports as cancelled.
        return contains_all(text, *terms, stop=self._cancelled)

    def search(
        self,
        query: str,
        *,
        limit: int = 50,
        start: str = "[",
        end: str = "]",
        cancelled: Callable[[], bool] | None = None,
    ) -> list[SearchHit]:
        """As ChatStore.search. Raises SearchCancelledError soon after ``cancelled()`` turns true."""
        terms = query_terms(query)
        if not terms:
            return []
        check = cancelled or _never
        conn = self._connection()
        self._cancelled = check
        # A non-zero return makes SQLite abort the running statement with "interrupted".
        conn.set_progress_handler(lambda: 1 if check() else 0, _PROGRESS_STEPS)
        try:
            with _translated_errors(self._path):
                conn.execute("BEGIN DEFERRED")  # one snapshot for the several statements of a search
                try:
                    return _find(conn, self._fts, terms, limit, start, end, check)
                finally:
                    _end_read_quietly(conn)
        except HistoryError as exc:
            if check() and not isinstance(exc, SearchCancelledError):
                raise SearchCancelledError("search cancelled", self._path) from exc
            raise
        finally:
            conn.set_progress_handler(None, 0)
            self._cancelled = _never

    def close(self) -> None:
        """Close the connection (idempotent); call it from the thread that searches, or when none is running."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with _translated_errors(self._path):
                conn.close()


def _never() -> bool:
    return False


@contextmanager
def _translated_errors(path: Path) -> Iterator[None]:
    """SQLite failures and damaged rows become HistoryError naming ``path``; other exceptions pass unchanged."""
    try:
        yield
    except CorruptDatabaseError as exc:
        if exc.path is not None:
            raise
        raise CorruptDatabaseError(exc.reason, path) from exc
    except sqlite3.IntegrityError as exc:
        raise HistoryError(f"rejected by the database: {exc}", path) from exc
    except sqlite3.Error as exc:
        raise HistoryError(f"database error: {exc}", path) from exc


def _end_read_quietly(conn: sqlite3.Connection) -> None:
    """End a read snapshot after a failure; a read has nothing to undo, so a failing ROLLBACK is only logged."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        logger.exception("chat history: ending a failed read failed")


def _find(
    conn: sqlite3.Connection,
    fts: bool,
    terms: list[str],
    limit: int,
    start: str,
    end: str,
    cancelled: Callable[[], bool],
) -> list[SearchHit]:
    """The hits of a search, inside a read snapshot on ``conn``."""
    title_ids, best_message = (_match_fts if fts else _match_scan)(conn, terms)
    chat_ids = title_ids | set(best_message)
    if not chat_ids:
        return []
    marks = ", ".join("?" for _ in chat_ids)
    rows = conn.execute(
        f"SELECT {_SUMMARY_COLUMNS} FROM chats WHERE id IN ({marks}) ORDER BY updated_at DESC, id DESC LIMIT ?",
        (*chat_ids, limit),
    ).fetchall()
    hits = []
    for row in rows:
        if cancelled():
            raise SearchCancelledError("search cancelled")
        summary = _summary(row)
        title_match = summary.id in title_ids
        message_id = best_message.get(summary.id)
        snippet = None
        if message_id is not None:
            snippet = _message_snippet(conn, message_id, terms, start, end, word_start=fts)
        if not snippet:
            snippet = make_snippet(summary.title, terms, start, end, word_start=fts) or summary.title
        hits.append(SearchHit(summary, snippet, title_match, message_id))
    return hits


def _match_fts(conn: sqlite3.Connection, terms: list[str]) -> tuple[set[int], dict[int, int]]:
    """Chats whose title matches, and each chat's best-ranked matching message (no FTS snippet(): see search.py)."""
    match = fts_query(terms)
    title_ids = {
        int(r[0])
        for r in conn.execute(
            "SELECT c.id FROM chats_fts JOIN chats c ON c.id = chats_fts.rowid "
            "WHERE chats_fts MATCH ? AND c.deleted_at IS NULL",
            (match,),
        )
    }
    best: dict[int, int] = {}
    rows = conn.execute(
        "SELECT m.chat_id, m.id FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
        "JOIN chats c ON c.id = m.chat_id WHERE messages_fts MATCH ? AND c.deleted_at IS NULL ORDER BY rank LIMIT ?",
        (match, _SEARCH_ROW_CAP),
    )
    for chat_id, message_id in rows:
        best.setdefault(int(chat_id), int(message_id))  # best-ranked rows come first
    return title_ids, best


def _match_scan(conn: sqlite3.Connection, terms: list[str]) -> tuple[set[int], dict[int, int]]:
    """As _match_fts, by scanning: each chat's first matching message in reading order."""
    marks = ", ".join("?" for _ in terms)
    title_ids = {
        int(r[0])
        for r in conn.execute(
            f"SELECT id FROM chats WHERE deleted_at IS NULL AND history_contains(title, {marks})", terms
        )
    }
    best: dict[int, int] = {}
    # As a BLOB the text reaches Python as bytes, which contains_all decodes a chunk at a time (see search.py).
    rows = conn.execute(
        "SELECT m.chat_id, m.id FROM messages m JOIN chats c ON c.id = m.chat_id WHERE c.deleted_at IS NULL "
        f"AND history_contains(CAST(m.text || char(10) || m.analysis AS BLOB), {marks}) "
        'ORDER BY m.chat_id, m.position, m."column" LIMIT ?',
        (*terms, _SEARCH_ROW_CAP),
    )
    for chat_id, message_id in rows:
        best.setdefault(int(chat_id), int(message_id))
    return title_ids, best


def _message_snippet(
    conn: sqlite3.Connection, message_id: int, terms: list[str], start: str, end: str, *, word_start: bool
) -> str | None:
    """A snippet from the start of a message's answer, else of its reasoning; only that start is read by Python.

    A match further in is located by SQLite's instr() over the ASCII-lowercased text, a linear scan in C that
    releases the GIL, and the snippet is cut around it.
    """
    row = conn.execute(
        "SELECT substr(text, 1, ?), substr(analysis, 1, ?) FROM messages WHERE id = ?",
        (_SNIPPET_FETCH_CHARS, _SNIPPET_FETCH_CHARS, message_id),
    ).fetchone()
    if row is None:
        return None
    text, analysis = str(row[0]), str(row[1])
    snippet = make_snippet(text, terms, start, end, word_start=word_start) or make_snippet(
        analysis, terms, start, end, word_start=word_start
    )
    if snippet is not None:
        return snippet
    for column in ("text", "analysis"):
        found = [
            int(
                conn.execute(
                    f"SELECT instr(lower({column}), lower(?)) FROM messages WHERE id = ?", (term, message_id)
                ).fetchone()[0]
            )
            for term in terms
        ]
        first = min((position for position in found if position > 0), default=0)
        if first:
            lo = max(1, first - _SNIPPET_CONTEXT_CHARS)
            (excerpt,) = conn.execute(
                f"SELECT substr({column}, ?, ?) FROM messages WHERE id = ?",
                (lo, 4 * _SNIPPET_CONTEXT_CHARS, message_id),
            ).fetchone()
            around = make_snippet(str(excerpt), terms, start, end, word_start=word_start)
            if around is not None:
                return "…" + around.removeprefix("…")
    return shorten(text or analysis)
