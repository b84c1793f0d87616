"""Model ▸ 8-bit attention weights: the opt-in ``q8`` load mode (engine.weights_mode) as a checkable, saved setting.

Checked, local models load with their attention qkv/out and unembedding weights quantised to 8 bits (kernels/q8.py):
smaller and faster on the CPU, slightly less exact. It takes effect at the next load; a model already loaded keeps
its weights, and the status bar says so when the choice changes under it. The status bar's device label shows
"· 8-bit weights" while such a model is loaded (app/shell/status_bar.py).
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QObject, QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu

from gpt_oss_desktop.app.backends.chat_backend import ChatBackend, WeightsBackend
from gpt_oss_desktop.app.settings import Q8_WEIGHTS_KEY, stored_bool

ACTION_TEXT: Final = "8-bit attention weights (smaller, slightly less exact)"
_NOTE_MS: Final = 8000


def stored_q8(settings: QSettings) -> bool:
    """The saved choice (an ini file stores booleans as text)."""
    return stored_bool(settings, Q8_WEIGHTS_KEY, False)


class WeightsSetting(QObject):
    """The checkable action, kept in step with the settings and the backend's next-load mode."""

    def __init__(self, window: QMainWindow, backend: ChatBackend, settings: QSettings, menu: QMenu) -> None:
        super().__init__(window)
        self._window = window
        self._backend = backend
        self._settings = settings
        self.action = QAction(ACTION_TEXT, menu)
        self.action.setCheckable(True)
        self.action.setToolTip("Takes effect when a model is next loaded")
        self.action.setChecked(stored_q8(settings))
        self._apply(self.action.isChecked())
        self.action.toggled.connect(self._toggled)
        menu.addSeparator()
        menu.addAction(self.action)

    def _apply(self, on: bool) -> None:
        if isinstance(self._backend, WeightsBackend):
            self._backend.set_weights_mode("q8" if on else "bf16")

    def _toggled(self, on: bool) -> None:
        self._settings.setValue(Q8_WEIGHTS_KEY, on)
        self._apply(on)
        info = self._backend.info
        if info is not None and (info.weights == "q8") != on:
            what = "on" if on else "off"
            self._window.statusBar().showMessage(
                f"8-bit attention weights {what} from the next model load; {info.name} keeps its weights until then",
                _NOTE_MS,
            )


def attach(window: QMainWindow, backend: ChatBackend, settings: QSettings, menu: QMenu) -> WeightsSetting:
    """Add the setting to ``menu`` (the Model menu) and apply the saved choice to ``backend``."""
    return WeightsSetting(window, backend, settings, menu)
