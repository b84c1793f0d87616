"""Model ▸ Context length: how long a chat may grow with the local engine (8K to 128K tokens), a saved setting.

gpt-oss reads up to 131,072 tokens; the app allows 16,384 by default. A longer context is what a long PDF, a web page
or a long chat needs; it costs memory only as a chat fills it (the KV cache grows), and each entry says how much a
full one would take with the model loaded (three times that in an effort comparison, which runs three answers). A
change applies from the next answer: the model stays loaded. A remote server's context is its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from PySide6.QtCore import QObject, QSettings
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMainWindow, QMenu

from gpt_oss_desktop.app.backends.chat_backend import ChatBackend, ContextLengthBackend, ModelInfo
from gpt_oss_desktop.app.settings import CONTEXT_LENGTH_KEY

logger = logging.getLogger(__name__)

CHOICES: Final = (8192, 16384, 32768, 65536, 131072)
DEFAULT_CHOICE: Final = 16384  # app.backends.local_engine.DEFAULT_CONTEXT (a test keeps the two equal)
_NOTE_MS: Final = 8000


def stored_context_length(settings: QSettings) -> int:
    """The saved choice; the default for anything else (a hand-edited value that is not one of the choices)."""
    value = settings.value(CONTEXT_LENGTH_KEY)
    try:
        length = int(str(value))
    except ValueError:
        return DEFAULT_CHOICE
    return length if length in CHOICES else DEFAULT_CHOICE


def choice_label(length: int, kv_bytes_per_token: int = 0) -> str:
    """``32K tokens · up to 0.8 GB``: the size, and with a model loaded what a full chat's cache takes."""
    text = f"{length // 1024}K tokens"
    if length == DEFAULT_CHOICE:
        text += " (default)"
    if kv_bytes_per_token > 0:
        gigabytes = length * kv_bytes_per_token / 1e9
        text += f" · up to {gigabytes:.1f} GB" if gigabytes >= 0.1 else " · up to 0.1 GB"
    return text


class ContextLengthSetting(QObject):
    """The radio entries, kept in step with the settings and the local engine.

    Args:
        changed: called with the loaded local model's info once a new length applies to it (the status bar's).
    """

    def __init__(
        self,
        window: QMainWindow,
        backend: ChatBackend,
        settings: QSettings,
        menu: QMenu,
        changed: Callable[[ModelInfo], None] | None = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._backend = backend
        self._settings = settings
        self._changed = changed
        self._tasks: set[asyncio.Task[None]] = set()
        self.menu = menu.addMenu("Context &length")
        self.menu.setToolTipsVisible(True)
        self.menu.aboutToShow.connect(self._relabel)
        group = QActionGroup(self.menu)
        group.setExclusive(True)
        current = self.current
        self.actions: dict[int, QAction] = {}
        for length in CHOICES:
            action = QAction(choice_label(length), self.menu)
            action.setCheckable(True)
            action.setChecked(length == current)
            action.setToolTip("How long a chat may grow with a model on this computer; more takes more memory")
            action.triggered.connect(lambda _=False, n=length: self.choose(n))
            group.addAction(action)
            self.menu.addAction(action)
            self.actions[length] = action

    @property
    def current(self) -> int:
        if isinstance(self._backend, ContextLengthBackend) and self._backend.context_length_setting:
            return self._backend.context_length_setting
        return stored_context_length(self._settings)

    def choose(self, length: int) -> asyncio.Task[None] | None:
        """Save ``length`` and apply it to the local engine (from its next answer)."""
        self._settings.setValue(CONTEXT_LENGTH_KEY, length)
        self.actions[length].setChecked(True)
        if not isinstance(self._backend, ContextLengthBackend):
            return None
        task = asyncio.ensure_future(self._apply(length))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _apply(self, length: int) -> None:
        assert isinstance(self._backend, ContextLengthBackend)
        try:
            info = await self._backend.set_context_length(length)
        except Exception as exc:  # the engine shut down meanwhile: the choice is saved for the next start
            logger.warning("the context length could not be applied: %s", exc)
            return
        text = f"Chats can grow to {length:,} tokens from the next answer on"
        if info is not None and info.kv_bytes_per_token:
            text += f" (a full one takes {length * info.kv_bytes_per_token / 1e9:.1f} GB more memory)"
        self._window.statusBar().showMessage(text + ".", _NOTE_MS)
        if info is not None and self._changed is not None:
            self._changed(info)

    def _relabel(self) -> None:
        info = self._backend.info
        per_token = info.kv_bytes_per_token if info is not None else 0
        for length, action in self.actions.items():
            action.setText(choice_label(length, per_token))


def attach(
    window: QMainWindow,
    backend: ChatBackend,
    settings: QSettings,
    menu: QMenu,
    changed: Callable[[ModelInfo], None] | None = None,
) -> ContextLengthSetting:
    """Add Context length to ``menu`` (the Model menu). The engine starts with the saved length (app/main.py)."""
    return ContextLengthSetting(window, backend, settings, menu, changed)
