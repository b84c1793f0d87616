"""ChatStore: the SQLite-backed chat history (stdlib sqlite3, WAL, foreign keys, explicit transactions).

Threading: one connection guarded by a re-entrant lock, so the store may be called from the GUI thread and from
worker threads alike; a transaction holds the lock until it ends. Other processes (or other ChatStore instances)
may read the same file while this one writes: WAL gives readers the last committed state without blocking.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from gpt_oss_desktop.engine.private_files import create_private_file

from . import schema, versions
from .attachments import Attachment, attachment_names, attachments_dumps, clean_attachments
from .errors import (
    ChatNotFoundError,
    CorruptDatabaseError,
    ForeignDatabaseError,
    HistoryError,
    SchemaTooNewError,
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
    clean_tool_calls,
    to_micros,
    utc_now,
)
from .rows import (
    CHAT_COLUMNS,
    MESSAGE_COLUMNS,
    SUMMARY_COLUMNS,
    chat_from_row,
    json_dumps,
    message_from_row,
    summary_from_row,
    tool_calls_dumps,
)
from .search import contains_all, query_terms
from .searcher import BUSY_TIMEOUT_S, HistorySearcher, end_read_quietly, find_hits, never, translated_errors

logger = logging.getLogger(__name__)

DEFAULT_TITLE: Final = "New chat"
_MAX_TITLE_FROM_PROMPT: Final = 60


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
            if self._fts:
                self._fts = self._ensure_index(conn)
            else:
                with self.transaction():
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

    def _ensure_index(self, conn: sqlite3.Connection) -> bool:
        """Bring the search index up to date (schema.ensure_fts); whether search can use it.

        A rebuild reads every message, so one damaged page makes it fail (say, on the first start of a version whose
        index has another shape): the file still opens, with the index left as it was and search scanning instead,
        rather than the whole history lost to that one page.
        """
        try:
            # A transaction of its own, not a savepoint in a larger one: after SQLite has met a damaged page, the
            # transaction can only be rolled back (its COMMIT fails as "malformed", even with nothing written).
            with self.transaction():
                schema.ensure_fts(conn)
        except HistoryError as exc:
            logger.warning("chat history: cannot build the search index (%s); search scans the messages instead", exc)
            return False
        return True

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
        with translated_errors(self._path):
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
                end_read_quietly(conn)
                raise
            # COMMIT can fail too (it reported a damaged page as a raw sqlite3.DatabaseError before).
            try:
                with self._errors():
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except HistoryError:
                end_read_quietly(conn)
                raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self.transaction(), self._errors():
            yield self._connection()

    def _now(self) -> int:
        return to_micros(self._clock())

    def now(self) -> datetime:
        """The current time by the store's clock (injected in tests), which the sidebar's date groups go by."""
        return self._clock()

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
        row = conn.execute(f"SELECT {CHAT_COLUMNS} FROM chats WHERE id = ?", (chat_id,)).fetchone()
        if row is None:
            raise ChatNotFoundError(f"no chat with id {chat_id}", self._path)
        return row

    @staticmethod
    def _update_row(conn: sqlite3.Connection, table: str, row_id: int, changes: Mapping[str, Any]) -> bool:
        """Set ``changes`` (column -> value) on one row of ``table``; nothing to set, no write. Returns whether it
        wrote. Column names come from this class's own keyword arguments, never from a caller's data."""
        if not changes:
            return False
        assignments = ", ".join(f'"{column}" = ?' for column in changes)
        conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", (*changes.values(), row_id))
        return True

    def _touch(self, conn: sqlite3.Connection, chat_id: int) -> None:
        """Mark a chat active now: only its messages' writes do, so only they move it up the sidebar (opening a
        chat re-saves its instructions, and renaming it must not reorder the list either)."""
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
                json_dumps(clean_json_dict(sampling, "sampling")),
                json_dumps(clean_json_dict(meta, "meta")),
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
            return summary_from_row(self._require_chat(conn, chat_id))

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
        """Change per-chat settings; arguments left as None keep their stored value. Settings are not activity:
        the chat keeps its place in the list."""
        changes = _given(
            system_instructions=system_instructions,
            developer_instructions=developer_instructions,
            model=model,
            sampling_json=None if sampling is None else json_dumps(clean_json_dict(sampling, "sampling")),
            meta_json=None if meta is None else json_dumps(clean_json_dict(meta, "meta")),
        )
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            self._update_row(conn, "chats", chat_id, changes)
            return self._load_chat(conn, chat_id)

    def pin_chat(self, chat_id: int, pinned: bool) -> ChatSummary:
        """Pin a chat to the top of the list (or unpin it). Like a rename, this is not activity."""
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            conn.execute("UPDATE chats SET pinned = ? WHERE id = ?", (int(pinned), chat_id))
            return summary_from_row(self._require_chat(conn, chat_id))

    def list_chats(
        self, *, kind: ChatKind | None = None, include_deleted: bool = False, limit: int | None = None
    ) -> list[ChatSummary]:
        """Chats, pinned ones first, then most recently active first (ties broken by newest id), without
        soft-deleted ones by default. Activity is a message written (see ChatSummary.updated_at)."""
        where: list[str] = []
        params: list[Any] = []
        if not include_deleted:
            where.append("deleted_at IS NULL")
        if kind is not None:
            where.append("kind = ?")
            params.append(check_kind(kind))
        sql = f"SELECT {SUMMARY_COLUMNS} FROM chats"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY pinned DESC, updated_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read() as conn:
            return [summary_from_row(row) for row in conn.execute(sql, params)]

    def _load_chat(self, conn: sqlite3.Connection, chat_id: int) -> Chat:
        row = self._require_chat(conn, chat_id)
        messages = conn.execute(
            f'SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? ORDER BY position, "column"', (chat_id,)
        ).fetchall()
        return chat_from_row(row, [message_from_row(m) for m in messages])

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
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        attachments: Sequence[Attachment] | None = None,
    ) -> int:
        checked_role = check_role(role)
        checked_effort = check_effort(effort)
        if checked_effort is not None and checked_role != "assistant":
            raise ValueError("only assistant messages carry a reasoning effort")
        calls = clean_tool_calls(tool_calls)
        if calls and checked_role != "assistant":
            raise ValueError("only assistant messages carry tool calls")
        files = clean_attachments(attachments)
        if files and checked_role != "user":
            raise ValueError("only user messages carry attached files")
        if column < 0 or (position is not None and position < 0):
            raise ValueError("position and column must not be negative")
        if position is None:
            row = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE chat_id = ?", (chat_id,))
            position = int(row.fetchone()[0])
        cursor = conn.execute(
            'INSERT INTO messages (chat_id, position, "column", role, text, analysis, effort, stats_json, complete, '
            "created_at, tool_calls_json, attachments_json, attachment_names) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                position,
                column,
                checked_role,
                text,
                analysis,
                checked_effort,
                json_dumps(clean_json_dict(stats, "stats")),
                int(complete),
                self._now() if created_at is None else created_at,
                tool_calls_dumps(calls),
                attachments_dumps(files),
                attachment_names(files),
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _load_message(self, conn: sqlite3.Connection, message_id: int) -> Message:
        row = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise ChatNotFoundError(f"no message with id {message_id}", self._path)
        return message_from_row(row)

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
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        attachments: Sequence[Attachment] | None = None,
    ) -> Message:
        """Append a message (``position`` None = after the last one) and mark the chat as recently active.

        For a streaming answer, add it with ``complete=False`` when generation starts, save progress with
        update_message(..., complete=False) every few seconds, and finish with complete=True and the stats.
        ``tool_calls`` (assistant messages only) are the calls made so far, in call order: a list of JSON objects,
        each with a string "recipient" (see models.StoredToolCall); other keys are kept as given. ``attachments``
        (user messages only) are the files attached to it, in order.
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
                tool_calls=tool_calls,
                attachments=attachments,
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
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
    ) -> Message:
        """Replace fields of a message; None keeps the stored value.

        Used both for the final save of a streamed answer and for partial saves while it streams: each call is
        one transaction, so after a crash the message holds the last saved prefix with complete=False.
        ``tool_calls`` replaces the whole list (as in add_message), so pass every call of the answer so far.
        """
        calls = None if tool_calls is None else clean_tool_calls(tool_calls)
        changes = _given(
            text=text,
            analysis=analysis,
            stats_json=None if stats is None else json_dumps(clean_json_dict(stats, "stats")),
            complete=None if complete is None else int(complete),
            tool_calls_json=None if calls is None else tool_calls_dumps(calls),
        )
        with self._write() as conn:
            current = self._load_message(conn, message_id)
            if calls and current.role != "assistant":
                raise ValueError("only assistant messages carry tool calls")
            if effort is not None:
                if current.role != "assistant":
                    raise ValueError("only assistant messages carry a reasoning effort")
                changes["effort"] = check_effort(effort)
            if self._update_row(conn, "messages", message_id, changes):
                self._touch(conn, current.chat_id)
            return self._load_message(conn, message_id)

    # --- versions -------------------------------------------------------------------------------------------------

    def new_version_from(
        self,
        chat_id: int,
        position: int,
        *,
        role: str | None = None,
        text: str = "",
        attachments: Sequence[Attachment] = (),
    ) -> Message | None:
        """Start a new version of the chat at ``position``: the messages there and after become an earlier version
        (see versions.py), and with ``role`` a new message is written there (an edited question, with its
        ``attachments``); else the position is left for the answer being regenerated. One transaction: after a crash
        the chat holds the old thread or the new one, and nothing is ever lost. The new message, or None without
        ``role``.
        """
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            if role is not None:
                check_role(role)  # before anything moves: a rejected message changes nothing
                if clean_attachments(attachments) and role != "user":
                    raise ValueError("only user messages carry attached files")
            versions.archive_from(conn, chat_id, position)
            self._touch(conn, chat_id)
            if role is None:
                return None
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
                attachments=attachments,
            )
            return self._load_message(conn, message_id)

    def versions(self, chat_id: int) -> dict[int, versions.Versions]:
        """The positions of the chat's thread that have earlier (or later) versions, with which one is shown."""
        with self._read() as conn:
            self._require_chat(conn, chat_id)
            return versions.versions_of(conn, chat_id)

    def show_version(self, chat_id: int, position: int, index: int) -> Chat:
        """Make version ``index`` (0-based) at ``position`` the chat's thread, keeping the one shown until now as a
        version; the chat as it now reads. IndexError for a version that does not exist."""
        with self._write() as conn:
            self._require_chat(conn, chat_id)
            versions.show_version(conn, chat_id, position, index)
            return self._load_chat(conn, chat_id)

    def version_messages(self, chat_id: int, position: int, index: int) -> list[Message]:
        """The messages of one version from ``position`` on, without showing it (archived ones have id 0)."""
        with self._read() as conn:
            self._require_chat(conn, chat_id)
            return versions.archived_messages(conn, chat_id, position, index)

    # --- comparisons ----------------------------------------------------------------------------------------------

    def create_comparison(
        self,
        prompt: str,
        efforts: Sequence[str] = EFFORTS,
        *,
        attachments: Sequence[Attachment] = (),
        context: Sequence[Message] = (),
        title: str | None = None,
        system_instructions: str = "",
        developer_instructions: str = "",
        model: str = "",
        sampling: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Chat:
        """A comparison entry: optional context turns, the prompt (with its attached files), then one empty answer
        per effort.

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
                attachments=attachments,
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

    def _copy_message(
        self, conn: sqlite3.Connection, chat_id: int, message: Message, position: int, column: int = 0
    ) -> None:
        """Write a copy of ``message`` (its text, reasoning, tool calls, attached files, stats and time) into
        ``chat_id`` at ``position``."""
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
            column=column,
            created_at=to_micros(message.created_at),
            tool_calls=message.tool_calls,
            attachments=message.attachments,
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

    def branch_chat(self, chat_id: int, through: int | None = None, *, title: str | None = None) -> Chat:
        """A new chat holding a copy of chat ``chat_id``'s messages up to position ``through`` (None: all of them, a
        duplicate), to go on from there another way while the original stays as it is. What is copied is what the
        chat shows now (the versions kept at each message stay with the original)."""
        with self._write() as conn:
            source = self._load_chat(conn, chat_id)
            if source.kind != "chat":
                raise ValueError("a comparison is continued from one of its columns, not branched")
            thread = [m for m in source.thread() if through is None or m.position <= through]
            if not thread:
                raise ValueError(f"chat {chat_id} has no messages up to position {through}")
            new_id = self._insert_chat(
                conn,
                title=title if title is not None else f"{source.title} (branch)",
                kind="chat",
                system_instructions=source.system_instructions,
                developer_instructions=source.developer_instructions,
                model=source.model,
                sampling=source.sampling,
                meta={"branched_from": {"chat_id": chat_id, "through": thread[-1].position}},
            )
            for position, message in enumerate(thread):
                self._copy_message(conn, new_id, message, position)
            return self._load_chat(conn, new_id)

    # --- search ---------------------------------------------------------------------------------------------------

    def search(self, query: str, *, limit: int = 50, start: str = "[", end: str = "]") -> list[SearchHit]:
        """Chats whose title or messages (answer, reasoning, the names, arguments and results of the tool calls
        made while answering, or the names of the files attached to a question) contain every word of ``query``.

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
            return find_hits(conn, self._fts, terms, limit, start, end, never)

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
                self._copy_message(conn, chat_id, message, message.position, message.column)
            return self._load_chat(conn, chat_id)


def _given(**values: object) -> dict[str, Any]:
    """The keyword arguments that are not None: the columns an update changes (None keeps the stored value)."""
    return {column: value for column, value in values.items() if value is not None}
