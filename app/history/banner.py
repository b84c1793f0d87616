"""The banner shown when the chat history file cannot be opened: chats are not being saved, and two ways out.

The broken file is never changed or deleted: "Start a new history" renames it (with its -wal/-shm companions)
to a dated name beside it, and opens a fresh history in its place.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Final

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gpt_oss_desktop.app.history import ChatStore, HistoryError

logger = logging.getLogger(__name__)

# SQLite keeps these beside a database; a write-ahead log left next to a new file would be replayed into it.
_COMPANIONS: Final = ("-wal", "-shm", "-journal")


def aside_path(path: Path, now: datetime | None = None) -> Path:
    """A free name beside ``path`` to keep a broken history under: history.broken-20250805-120000.sqlite3."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = f"{path.stem}.broken-{stamp}"
    candidate = path.with_name(base + path.suffix)
    number = 2
    while any(Path(f"{candidate}{suffix}").exists() for suffix in ("", *_COMPANIONS)):
        candidate = path.with_name(f"{base}-{number}{path.suffix}")
        number += 1
    return candidate


def move_aside(path: Path, aside: Path) -> None:
    """Rename ``path`` and its SQLite companions to ``aside`` (+ the same suffixes). Nothing is ever overwritten.

    Raises:
        OSError: a rename failed (files renamed before it stay renamed; nothing is lost either way).
    """
    for suffix in ("", *_COMPANIONS):
        source, target = Path(f"{path}{suffix}"), Path(f"{aside}{suffix}")
        if not os.path.lexists(source):
            continue
        if os.path.lexists(target):
            raise FileExistsError(f"{target} already exists")
        source.rename(target)
        logger.info("kept %s as %s", source, target)


class HistoryBanner(QFrame):
    """Across the top of the window while the history cannot be opened.

    Signals:
        store_opened(ChatStore): the ChatStore of a new history, after "Start a new history"; chats save to it.
    """

    store_opened = Signal(ChatStore)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._path: Path | None = None
        self._aside: Path | None = None
        self.setObjectName("historyBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#historyBanner { border: 1px solid palette(highlight); border-radius: 6px; }")
        self.setAccessibleName("Chat history problem")
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # the reason quotes the OS and SQLite, not markup
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.location = QLabel(self)
        self.location.setWordWrap(True)
        self.location.setTextFormat(Qt.TextFormat.PlainText)
        self.location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_folder_button = QPushButton("Open data folder", self)
        self.open_folder_button.clicked.connect(self.open_data_folder)
        self.new_history_button = QPushButton("Start a new history", self)
        self.new_history_button.clicked.connect(self.start_new_history)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_folder_button)
        buttons.addWidget(self.new_history_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.location)
        layout.addLayout(buttons)
        self.hide()

    def show_unavailable(self, path: Path, error: HistoryError) -> None:
        """Say that chats are not being saved because ``path`` could not be opened, and why."""
        self._path = path
        self._aside = aside_path(path)
        self.message.setText(f"Chats are not being saved: {error.reason}")
        self.location.setText(f"History file: {path}")
        self.new_history_button.setText(f"Start a new history (the old file is kept as {self._aside.name})")
        self.new_history_button.setEnabled(True)
        self.show()

    def open_data_folder(self) -> None:
        """Show the folder that holds the history in the desktop's file manager."""
        if self._path is None:
            return
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._path.parent))):
            self.location.setText(f"Could not open the folder; the history file is {self._path}")

    def start_new_history(self) -> ChatStore | None:
        """Keep the broken file under the name the button promised, and open a fresh history in its place."""
        if self._path is None or self._aside is None:
            return None
        path, aside = self._path, self._aside
        if any(os.path.lexists(f"{aside}{suffix}") for suffix in ("", *_COMPANIONS)):
            aside = aside_path(path)  # taken since the banner appeared: never overwrite, pick another name
        try:
            move_aside(path, aside)
        except OSError as exc:
            logger.error("could not move %s aside: %s", path, exc)
            self.message.setText(f"Chats are not being saved: the old file could not be moved aside ({exc})")
            return None
        try:
            store = ChatStore(path)
        except HistoryError as exc:
            logger.error("a new chat history could not be opened either: %s", exc)
            self.show_unavailable(path, exc)
            return None
        logger.info("started a new chat history at %s; the old one is kept as %s", path, aside)
        self.hide()
        self.store_opened.emit(store)
        return store
