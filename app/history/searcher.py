"""HistorySearcher: searching the history on a connection of its own, cancellable, for a worker thread; and the
search itself (FTS5 or scanning match, one hit per chat, bounded snippets), shared with ChatStore.search."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from .errors import CorruptDatabaseError, HistoryError, SearchCancelledError
from .models import SearchHit
from .rows import SUMMARY_COLUMNS, summary_from_row
from .schema import tool_calls_text_sql
from .search import SNIPPET_SCAN_CHARS, contains_all, fts_query, make_snippet, query_terms, shorten

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S: Final = 5.0
# Cap on message rows a search reads; a sidebar shows a few dozen chats at most and the best-ranked rows come first.
_SEARCH_ROW_CAP: Final = 2000
# A cancellable search checks whether it was cancelled every this many SQLite VM steps (well under a millisecond).
_PROGRESS_STEPS: Final = 1000
# Characters of a message a snippet is made from: the part it scans plus the context after a match at its very end.
_SNIPPET_FETCH_CHARS: Final = SNIPPET_SCAN_CHARS + 200
# Characters of context fetched before a match found past the first SNIPPET_SCAN_CHARS (and thrice that in all).
_SNIPPET_CONTEXT_CHARS: Final = 60
# What search looks at in a message, as SQL over its row, in the order a snippet prefers them: the answer (or
# question), the reasoning, the text of its tool calls (names, arguments, results), then the names of its attached
# files (the index holds the same four).
_MESSAGE_PARTS: Final = ("text", "analysis", tool_calls_text_sql("messages.tool_calls_json"), "attachment_names")
_SCANNED_TEXT: Final = " || char(10) || ".join(
    ("m.text", "m.analysis", tool_calls_text_sql("m.tool_calls_json"), "m.attachment_names")
)


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
        self._cancelled: Callable[[], bool] = never  # the running search's

    @property
    def path(self) -> Path:
        return self._path

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            with translated_errors(self._path):
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
        check = cancelled or never
        conn = self._connection()
        self._cancelled = check
        # A non-zero return makes SQLite abort the running statement with "interrupted".
        conn.set_progress_handler(lambda: 1 if check() else 0, _PROGRESS_STEPS)
        try:
            with translated_errors(self._path):
                conn.execute("BEGIN DEFERRED")  # one snapshot for the several statements of a search
                try:
                    return find_hits(conn, self._fts, terms, limit, start, end, check)
                finally:
                    end_read_quietly(conn)
        except HistoryError as exc:
            if check() and not isinstance(exc, SearchCancelledError):
                raise SearchCancelledError("search cancelled", self._path) from exc
            raise
        finally:
            conn.set_progress_handler(None, 0)
            self._cancelled = never

    def close(self) -> None:
        """Close the connection (idempotent); call it from the thread that searches, or when none is running."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with translated_errors(self._path):
                conn.close()


def never() -> bool:
    return False


@contextmanager
def translated_errors(path: Path) -> Iterator[None]:
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


def end_read_quietly(conn: sqlite3.Connection) -> None:
    """End a read snapshot after a failure; a read has nothing to undo, so a failing ROLLBACK is only logged."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        logger.exception("chat history: ending a failed read failed")


def find_hits(
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
        f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE id IN ({marks}) ORDER BY updated_at DESC, id DESC LIMIT ?",
        (*chat_ids, limit),
    ).fetchall()
    hits = []
    for row in rows:
        if cancelled():
            raise SearchCancelledError("search cancelled")
        summary = summary_from_row(row)
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
        f"AND history_contains(CAST({_SCANNED_TEXT} AS BLOB), {marks}) "
        'ORDER BY m.chat_id, m.position, m."column" LIMIT ?',
        (*terms, _SEARCH_ROW_CAP),
    )
    for chat_id, message_id in rows:
        best.setdefault(int(chat_id), int(message_id))
    return title_ids, best


def _message_snippet(
    conn: sqlite3.Connection, message_id: int, terms: list[str], start: str, end: str, *, word_start: bool
) -> str | None:
    """A snippet from the start of a message's answer, else of its reasoning, else of its tool calls, else of its
    attached files' names; only those starts are read by Python.

    A match further in is located by SQLite's instr() over the ASCII-lowercased text, a linear scan in C that
    releases the GIL, and the snippet is cut around it.
    """
    starts = ", ".join(f"substr({part}, 1, ?)" for part in _MESSAGE_PARTS)
    row = conn.execute(
        f"SELECT {starts} FROM messages WHERE id = ?", (*[_SNIPPET_FETCH_CHARS] * len(_MESSAGE_PARTS), message_id)
    ).fetchone()
    if row is None:
        return None
    beginnings = [str(value) for value in row]
    for beginning in beginnings:
        snippet = make_snippet(beginning, terms, start, end, word_start=word_start)
        if snippet is not None:
            return snippet
    for part in _MESSAGE_PARTS:
        found = [
            int(
                conn.execute(
                    f"SELECT instr(lower({part}), lower(?)) FROM messages WHERE id = ?", (term, message_id)
                ).fetchone()[0]
            )
            for term in terms
        ]
        first = min((position for position in found if position > 0), default=0)
        if first:
            lo = max(1, first - _SNIPPET_CONTEXT_CHARS)
            (excerpt,) = conn.execute(
                f"SELECT substr({part}, ?, ?) FROM messages WHERE id = ?",
                (lo, 4 * _SNIPPET_CONTEXT_CHARS, message_id),
            ).fetchone()
            around = make_snippet(str(excerpt), terms, start, end, word_start=word_start)
            if around is not None:
                return "…" + around.removeprefix("…")
    return shorten(next((beginning for beginning in beginnings if beginning), ""))
