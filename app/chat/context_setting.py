"""Chat ▸ Fit long chats to the context: a checkable, saved setting (on by default).

On, a chat longer than the local model's context leaves out its oldest turns so the next answer still has room
(engine/context_fit.py); the stats line under that answer says how many turns were left out. Off, such a chat's next
answer fails with "longer than the context", as a model's hard limit would, and the user starts a new chat.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QObject, QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu

from gpt_oss_desktop.app.backends.chat_backend import ChatBackend, ContextFitBackend
from gpt_oss_desktop.app.settings import FIT_CONTEXT_KEY, stored_bool

ACTION_TEXT: Final = "Fit long chats to the context"
TOOLTIP: Final = (
    "When a chat is longer than the model's context, leave out its oldest turns so the model can still answer "
    "(the answer's stats say how many). Off: such a chat stops with an error. Local models only."
)


class ContextSetting(QObject):
    """The checkable action, kept in step with the settings and the backend."""

    def __init__(self, window: QMainWindow, backend: ChatBackend, settings: QSettings, menu: QMenu) -> None:
        super().__init__(window)
        self._backend = backend
        self._settings = settings
        self.action = QAction(ACTION_TEXT, menu)
        self.action.setCheckable(True)
        self.action.setToolTip(TOOLTIP)
        self.action.setChecked(stored_bool(settings, FIT_CONTEXT_KEY, True))
        self._apply(self.action.isChecked())
        self.action.toggled.connect(self._toggled)
        menu.addSeparator()
        menu.addAction(self.action)

    def _apply(self, on: bool) -> None:
        if isinstance(self._backend, ContextFitBackend):
            self._backend.set_fit_context(on)

    def _toggled(self, on: bool) -> None:
        self._settings.setValue(FIT_CONTEXT_KEY, on)
        self._apply(on)


def attach(window: QMainWindow, backend: ChatBackend, settings: QSettings, menu: QMenu) -> ContextSetting:
    """Add the setting to ``menu`` (the Chat menu) and apply the saved choice to ``backend``."""
    return ContextSetting(window, backend, settings, menu)
