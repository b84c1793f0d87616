"""Importing chats from files (no Qt here): the JSON this app exports (Chat ▸ Export chat as JSON…), one chat per file,
and ChatGPT's data export (app/history/chatgpt_import.py); each chat is added as a new chat, whole or not at all.

A file that is not such an export (another app's JSON, a Markdown export, a file too big or unreadable) is named with
the reason, and the others still import: a folder of exports with one bad file in it loses nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gpt_oss_desktop.app.history.chatgpt_import import (
    NotChatGPTExport,
    chat_export,
    conversation_title,
    export_text,
    is_chatgpt_export,
    read_zip,
)
from gpt_oss_desktop.app.history.errors import HistoryError
from gpt_oss_desktop.app.history.models import Chat
from gpt_oss_desktop.app.history.store import ChatStore

logger = logging.getLogger(__name__)

# ChatGPT's conversations.json of years of use runs to hundreds of megabytes; past this it is not loaded whole.
MAX_IMPORT_BYTES: Final = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportProblem:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The chats imported, in the order of the files, and the files that were not, each with why."""

    chats: tuple[Chat, ...] = ()
    problems: tuple[ImportProblem, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """One line for the status bar: how many chats came in, and the first file that did not (and how many)."""
        done = f"Imported {len(self.chats)} chat{'' if len(self.chats) == 1 else 's'}"
        if not self.problems:
            return done + "."
        first = str(self.problems[0])
        more = len(self.problems) - 1
        rest = f" (and {more} more file{'' if more == 1 else 's'} not imported)" if more else ""
        return f"{done}; not imported: {first}{rest}."


@dataclass(frozen=True, slots=True)
class PreparedFile:
    """One file read and converted, ready for the store: each chat as this app's export text, with the conversation's
    title when the file holds several (else ""); and what could not be."""

    path: Path
    documents: tuple[tuple[str, str], ...] = ()
    problems: tuple[ImportProblem, ...] = ()


def _decoded(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # an editor may have added a byte-order mark
    except UnicodeDecodeError:
        raise HistoryError("not a chat export of gpt-oss desktop or ChatGPT (not UTF-8 text)") from None


def prepare_file(path: Path) -> PreparedFile:
    """Read ``path`` and turn it into export texts: one of this app's JSON exports, or ChatGPT's data export
    (``conversations.json`` or its ``.zip``). Touches no store, so it can run on a worker thread (a ChatGPT history
    can be hundreds of megabytes)."""
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise HistoryError(
                f"{size / 2**20:.0f} MiB is too large to import (the most is {MAX_IMPORT_BYTES >> 20} MiB)"
            )
        data = path.read_bytes()
        if data.startswith(b"PK\x03\x04"):
            data = read_zip(data)
        text = _decoded(data)
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None  # the store's import says what is wrong with it
        if not is_chatgpt_export(document):
            return PreparedFile(path, (("", text),))
    except NotChatGPTExport as exc:
        return PreparedFile(path, problems=(ImportProblem(path, str(exc)),))
    except HistoryError as exc:
        return PreparedFile(path, problems=(ImportProblem(path, exc.reason),))
    except OSError as exc:
        return PreparedFile(path, problems=(ImportProblem(path, exc.strerror or str(exc)),))
    documents: list[tuple[str, str]] = []
    problems: list[ImportProblem] = []
    now = time.time()
    for conversation in document:
        title = conversation_title(conversation)
        try:
            documents.append((title, export_text(chat_export(conversation, now))))
        except NotChatGPTExport as exc:
            problems.append(ImportProblem(path, f"“{title}”: {exc}"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(
                ImportProblem(path, f"“{title}”: not in the layout of a ChatGPT export ({type(exc).__name__})")
            )
    return PreparedFile(path, tuple(documents), tuple(problems))


def import_prepared(store: ChatStore, files: Iterable[PreparedFile]) -> ImportReport:
    """Add the prepared chats to ``store``, each whole or not at all."""
    chats: list[Chat] = []
    problems: list[ImportProblem] = []
    for prepared in files:
        problems.extend(prepared.problems)
        for title, text in prepared.documents:
            try:
                chats.append(store.import_json(text))
            except HistoryError as exc:
                problems.append(ImportProblem(prepared.path, f"“{title}”: {exc.reason}" if title else exc.reason))
    for problem in problems:
        logger.info("not imported: %s", problem)  # file names and reasons only: no chat text reaches the log
    return ImportReport(tuple(chats), tuple(problems))


def import_chat_files(store: ChatStore, paths: Iterable[Path]) -> ImportReport:
    """Import each of ``paths`` (see :func:`prepare_file`); a file that fails is reported and the rest go on."""
    return import_prepared(store, [prepare_file(path) for path in paths])
