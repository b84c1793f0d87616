"""Chat ▸ Import chats…: pick files (this app's JSON exports, ChatGPT's data export or its zip), read them on a worker
thread, add their chats to the history, list them in the sidebar, open the last one and say in the status bar what
came in and what did not (app/history/chat_import.py does the reading and the checking)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

from gpt_oss_desktop.app.history.chat_import import ImportReport, import_prepared, prepare_file
from gpt_oss_desktop.app.history.export_dialog import export_folder, remember_export_folder
from gpt_oss_desktop.app.history.store import ChatStore

logger = logging.getLogger(__name__)

NAME_FILTER: Final = "Chat exports (*.json *.zip);;All files (*)"
_NOTICE_MS: Final = 12000


@dataclass(frozen=True, slots=True)
class ImportTarget:
    """Where imported chats go and how the window shows them.

    Args:
        store: the history.
        open_chat: shows a chat by id (the last one imported).
        refresh: lists the new chats in the sidebar.
        notice: a line in the status bar, for so many milliseconds (0: until the next).
    """

    store: ChatStore
    open_chat: Callable[[int], object]
    refresh: Callable[[], None]
    notice: Callable[[str, int], None]


async def import_files(target: ImportTarget, paths: Sequence[Path]) -> ImportReport | None:
    """Import ``paths`` into ``target``'s history: each read and converted off the GUI thread, then added on it (the
    store's connection belongs to it). None when there is nothing to import."""
    if not paths:
        return None
    target.notice(f"Importing {len(paths)} file{'' if len(paths) == 1 else 's'}…", 0)
    try:
        prepared = [await asyncio.to_thread(prepare_file, path) for path in paths]
        report = import_prepared(target.store, prepared)
    except Exception as exc:  # a bug must not leave "Importing…" up for good; what came in before it stays
        logger.exception("importing chats failed")
        target.notice(f"The import stopped: {type(exc).__name__}. The log has the details.", _NOTICE_MS)
        return None
    target.refresh()
    if report.chats:
        target.open_chat(report.chats[-1].id)
    target.notice(report.summary(), _NOTICE_MS)
    return report


def ask_import_paths(parent: QWidget, settings: QSettings | None) -> list[Path]:
    """The files the user picks (none if they cancel), starting where exports go; the folder is remembered."""
    chosen, _ = QFileDialog.getOpenFileNames(parent, "Import chats", str(export_folder(settings)), NAME_FILTER)
    paths = [Path(name) for name in chosen]
    if paths:
        remember_export_folder(settings, paths[0])
    return paths


_RUNNING: set[asyncio.Task[ImportReport | None]] = set()  # held until they end (the loop keeps only weak references)


def start_import(target: ImportTarget, paths: Sequence[Path]) -> asyncio.Task[ImportReport | None]:
    """Run :func:`import_files` on the running loop (the window's)."""
    task = asyncio.ensure_future(import_files(target, paths))
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return task
