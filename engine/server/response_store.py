"""Stored responses of the Responses API (``store: true``) and their ``previous_response_id`` chains, in SQLite.

A client continues a conversation by naming the last response; the server rebuilds the conversation from the chain
of stored responses (each one's input items, then its output items). That must survive a server restart, so it lives
in a file (:func:`default_response_store_path`), not in memory.

File: one SQLite database, WAL (readers never wait for the writer), created 0600 in a folder created 0700 (the items
hold the user's prompts and the model's reasoning: :mod:`engine.private_files`). It is marked as ours with
``PRAGMA application_id`` and versioned with ``PRAGMA user_version``; a file of another program, of a newer schema or
not a database at all is refused and left untouched.

Threading: one connection guarded by a lock, so the server may call it from any thread (``asyncio.to_thread``);
each call is one statement or one transaction. Errors are typed: :class:`ResponseStoreError` (the file cannot be
used), :class:`CorruptResponseStoreError` (a damaged file or row), :class:`UnknownResponseError` (a chain link is
missing; catch it before its base class, it is the client's mistake, not the server's).
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gpt_oss_desktop.engine.paths import user_data_dir
from gpt_oss_desktop.engine.private_files import create_private_file, make_private_dir

logger = logging.getLogger(__name__)

# 1: the first; 2: each response's status and its other top-level fields (so GET returns what the POST did).
SCHEMA_VERSION: Final = 2
# "gRsp": marks the file as this store's (PRAGMA application_id), so another program's database is never altered.
APPLICATION_ID: Final = 0x67527370
BUSY_TIMEOUT_S: Final = 5.0
RESPONSE_ID_PREFIX: Final = "resp_"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY NOT NULL,
    -- No foreign key: a link may be missing (a response stored without store, or removed by hand), which
    -- chain() reports as UnknownResponseError rather than refusing the save.
    previous_response_id TEXT,
    created_at REAL NOT NULL,
    model TEXT NOT NULL,
    instructions TEXT,
    input_items TEXT NOT NULL,  -- JSON array of objects
    output_items TEXT NOT NULL,  -- JSON array of objects
    usage TEXT,  -- JSON object or NULL
    status TEXT,  -- "completed" / "incomplete" / ...; NULL in rows a schema-1 file kept
    fields TEXT  -- JSON object: the response's other top-level fields (tools, incomplete_details, ...), or NULL
)
"""
# Schema 1 -> 2: the two columns a schema-1 table lacks (its rows keep NULL there: their status was not recorded).
_ADDED_IN_2: Final = ("status TEXT", "fields TEXT")
_COLUMNS: Final = (
    "id, previous_response_id, created_at, model, instructions, input_items, output_items, usage, status, fields"
)
# Values a damaged page can hand back that the row decoder refuses.
_DECODE_ERRORS: Final = (ValueError, TypeError, KeyError, IndexError, OverflowError)


class ResponseStoreError(Exception):
    """The response store cannot do what was asked: the file cannot be opened or written, belongs to another
    program or a newer version, or the store is closed. ``path`` names the file."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path is not None else message)


class CorruptResponseStoreError(ResponseStoreError):
    """The file is not a readable SQLite database, or a row in it is damaged. The file is left as it is."""


class UnknownResponseError(ResponseStoreError, LookupError):
    """No stored response has ``response_id`` (the one asked for, or a link of its chain)."""

    def __init__(self, response_id: str, path: Path | None = None, *, asked: str | None = None) -> None:
        self.response_id = response_id
        link = "" if asked is None or asked == response_id else f" (a link in the chain of {asked!r})"
        super().__init__(f"no stored response with id {response_id!r}{link}", path)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One response as the Responses API returned it, with the input that produced it."""

    id: str  # "resp_…"
    previous_response_id: str | None
    created_at: float  # unix seconds
    model: str
    instructions: str | None
    input_items: tuple[dict[str, Any], ...]  # Responses-API input items as JSON objects, in order
    output_items: tuple[dict[str, Any], ...]  # output items (reasoning, message, function_call) as JSON objects
    usage: dict[str, Any] | None
    status: str | None = None  # None: stored by a version that did not record it
    fields: dict[str, Any] | None = None  # the response object's other top-level fields, as returned


def new_response_id() -> str:
    """A fresh, unguessable response id (``resp_`` and 48 hex digits)."""
    return RESPONSE_ID_PREFIX + secrets.token_hex(24)


def default_response_store_path() -> Path:
    """``user_data_dir() / "server" / "responses.sqlite3"`` (not created here)."""
    return user_data_dir() / "server" / "responses.sqlite3"


class ResponseStore:
    """Stored responses in one SQLite file; see the module docstring for the file and the errors.

    Raises (from the constructor): :class:`CorruptResponseStoreError` if the file is not a SQLite database,
    :class:`ResponseStoreError` if it cannot be opened, belongs to another program or to a newer schema.
    """

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        conn = self._connect()
        try:
            self._check_file(conn)
            self._configure(conn)
            self._create_schema(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        logger.info("response store open at %s", self._path)

    @property
    def path(self) -> Path:
        return self._path

    # -- public API -----------------------------------------------------------------------------------------------

    def save(self, response: StoredResponse) -> None:
        """Store ``response`` in one transaction (replacing a stored response with the same id).

        Raises ValueError if its items or usage are not JSON (a caller's bug, found before anything is written).
        """
        if not response.id:
            raise ValueError("a stored response needs an id")
        row = (
            response.id,
            response.previous_response_id,
            float(response.created_at),
            response.model,
            response.instructions,
            _dumps(list(response.input_items), response.id, "input_items"),
            _dumps(list(response.output_items), response.id, "output_items"),
            None if response.usage is None else _dumps(response.usage, response.id, "usage"),
            response.status,
            None if response.fields is None else _dumps(response.fields, response.id, "fields"),
        )
        with self._transaction("BEGIN IMMEDIATE") as conn:
            conn.execute(
                f"INSERT INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET previous_response_id = excluded.previous_response_id, "
                "created_at = excluded.created_at, model = excluded.model, instructions = excluded.instructions, "
                "input_items = excluded.input_items, output_items = excluded.output_items, usage = excluded.usage, "
                "status = excluded.status, fields = excluded.fields",
                row,
            )

    def get(self, response_id: str) -> StoredResponse | None:
        """The stored response with this id, or None."""
        with self._transaction("BEGIN DEFERRED") as conn:
            return self._fetch(conn, response_id)

    def chain(self, response_id: str) -> list[StoredResponse]:
        """The conversation ending with ``response_id``: it and every response before it, oldest first.

        Read in one snapshot, so a concurrent save cannot tear it. Raises :class:`UnknownResponseError` naming the
        first id that is not stored (``response_id`` itself or a link), :class:`CorruptResponseStoreError` if the
        links loop.
        """
        chain: list[StoredResponse] = []
        seen: set[str] = set()
        with self._transaction("BEGIN DEFERRED") as conn:
            wanted: str | None = response_id
            while wanted is not None:
                if wanted in seen:
                    raise CorruptResponseStoreError(f"the chain of {response_id!r} loops at {wanted!r}", self._path)
                seen.add(wanted)
                found = self._fetch(conn, wanted)
                if found is None:
                    raise UnknownResponseError(wanted, self._path, asked=response_id)
                chain.append(found)
                wanted = found.previous_response_id
        chain.reverse()
        return chain

    def close(self) -> None:
        """Close the file (idempotent); SQLite checkpoints the WAL into it on the last close."""
        with self._lock:
            if self._conn is None:
                return
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise ResponseStoreError(f"closing failed: {exc}", self._path) from exc
            logger.info("response store closed: %s", self._path)

    def __enter__(self) -> ResponseStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- opening --------------------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._path.is_dir():
            raise ResponseStoreError("is a folder, not a response store file", self._path)
        try:
            if not self._path.parent.exists():
                make_private_dir(self._path.parent)  # 0700, and any missing parent too
            # 0600 before SQLite opens it; SQLite gives its -wal and -shm files the database file's mode.
            create_private_file(self._path)
            # isolation_level=None: no implicit BEGINs; every change is one explicit transaction.
            conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ResponseStoreError(f"cannot open the response store: {exc}", self._path) from exc
        return conn

    def _check_file(self, conn: sqlite3.Connection) -> None:
        """Refuse a file that is not ours before anything (even the switch to WAL) writes to it."""
        try:
            application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        except sqlite3.OperationalError as exc:  # locked, unreadable: the file may be fine
            raise ResponseStoreError(f"cannot read the response store: {exc}", self._path) from exc
        except sqlite3.DatabaseError as exc:
            raise CorruptResponseStoreError(
                f"not a readable SQLite database ({exc}); it was left as it is: move it away to start afresh",
                self._path,
            ) from exc
        if application_id != APPLICATION_ID and (application_id != 0 or tables):
            raise ResponseStoreError(
                f"a SQLite database of another program (application id {application_id:#x}, "
                f"tables: {', '.join(sorted(tables)[:5]) or 'none'}); not touched",
                self._path,
            )
        if version > SCHEMA_VERSION:
            raise ResponseStoreError(
                f"written by a newer version (schema {version}, this one reads up to {SCHEMA_VERSION}); not touched",
                self._path,
            )

    def _configure(self, conn: sqlite3.Connection) -> None:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.Error as exc:
            raise ResponseStoreError(f"cannot configure the response store: {exc}", self._path) from exc
        if str(mode).lower() != "wal":
            logger.warning("response store %s: journal mode is %s, not WAL", self._path, mode)

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        with self._translated():
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                conn.execute(_SCHEMA)
                if version == 1:
                    for column in _ADDED_IN_2:
                        conn.execute(f"ALTER TABLE responses ADD COLUMN {column}")
                    logger.info("response store %s: schema 1 -> %d", self._path, SCHEMA_VERSION)
                # PRAGMA values cannot be bound parameters; both are our own integer constants.
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                _rollback_quietly(conn)
                raise

    # -- plumbing -------------------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        """``begin`` … COMMIT under the lock; rolled back if anything inside raises. SQLite errors are typed."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise ResponseStoreError("the response store is closed", self._path)
            with self._translated():
                conn.execute(begin)
            try:
                with self._translated():
                    yield conn
                    conn.execute("COMMIT")
            except BaseException:
                _rollback_quietly(conn)
                raise

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except CorruptResponseStoreError as exc:
            if exc.path is not None:
                raise
            raise CorruptResponseStoreError(exc.reason, self._path) from exc
        except sqlite3.OperationalError as exc:  # locked, disk full, I/O: not the file's fault
            raise ResponseStoreError(f"database error: {exc}", self._path) from exc
        except sqlite3.IntegrityError as exc:
            raise ResponseStoreError(f"rejected by the database: {exc}", self._path) from exc
        except sqlite3.DatabaseError as exc:  # "database disk image is malformed", "file is not a database"
            raise CorruptResponseStoreError(f"the file is damaged: {exc}", self._path) from exc
        except sqlite3.Error as exc:
            raise ResponseStoreError(f"database error: {exc}", self._path) from exc

    def _fetch(self, conn: sqlite3.Connection, response_id: str) -> StoredResponse | None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM responses WHERE id = ?", (response_id,)).fetchone()
        return None if row is None else _from_row(row)


def _from_row(row: Sequence[Any]) -> StoredResponse:
    try:
        rid, previous, created_at, model, instructions, input_items, output_items, usage, status, fields = row
        if not isinstance(rid, str) or not isinstance(model, str):
            raise TypeError("id and model must be text")
        if previous is not None and not isinstance(previous, str):
            raise TypeError("previous_response_id must be text")
        if instructions is not None and not isinstance(instructions, str):
            raise TypeError("instructions must be text")
        if status is not None and not isinstance(status, str):
            raise TypeError("status must be text")
        return StoredResponse(
            id=rid,
            previous_response_id=previous,
            created_at=float(created_at),
            model=model,
            instructions=instructions,
            input_items=_items(input_items),
            output_items=_items(output_items),
            usage=None if usage is None else _object(json.loads(usage)),
            status=status,
            fields=None if fields is None else _object(json.loads(fields)),
        )
    except _DECODE_ERRORS as exc:  # json.JSONDecodeError is a ValueError
        name = row[0] if row and isinstance(row[0], str) else "?"
        raise CorruptResponseStoreError(f"a damaged row for response {name!r} ({type(exc).__name__}: {exc})") from exc


def _items(text: str) -> tuple[dict[str, Any], ...]:
    value = json.loads(text)
    if not isinstance(value, list):
        raise TypeError(f"items must be a JSON array, not {type(value).__name__}")
    return tuple(_object(item) for item in value)


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, not {type(value).__name__}")
    return value


def _dumps(value: list[dict[str, Any]] | Mapping[str, Any], response_id: str, field: str) -> str:
    if isinstance(value, list) and not all(isinstance(item, dict) for item in value):
        raise ValueError(f"response {response_id!r}: every one of its {field} must be a JSON object")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"response {response_id!r}: {field} is not JSON ({exc})") from exc


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    """End a failed transaction; the first error is the one that matters, so a failing ROLLBACK is only logged."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        logger.exception("response store: rollback failed")
