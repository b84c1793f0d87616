"""The message composer: multi-line input, effort selector, sampling settings, Send and Stop."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.sampling_menu import SamplingMenu
from gpt_oss_desktop.app.settings import EFFORT_KEY
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.sampling import SamplingParams


class PromptEdit(QPlainTextEdit):
    """Multi-line input; Ctrl+Enter submits (plain Enter makes a new line).

    Signals:
        submitted(): Ctrl+Enter was pressed.
    """

    submitted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Message gpt-oss…  (Ctrl+Enter to send)")
        self.setAccessibleName("Message")
        self.setTabChangesFocus(True)  # Tab moves on to the controls, so the window stays keyboard-usable
        lines = 4
        self.setFixedHeight(self.fontMetrics().lineSpacing() * lines + 16)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and (
            event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.submitted.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class Composer(QFrame):
    """Input row. The effort choice is remembered in ``settings``.

    Signals:
        send_requested(str): the user sent this text (already stripped, never empty).
        stop_requested(): the user asked to stop the running answer.
    """

    send_requested = Signal(str)
    stop_requested = Signal()

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._busy = False
        self._can_send = False

        self.prompt = PromptEdit(self)
        self.prompt.submitted.connect(self.submit)

        self.effort = QComboBox(self)
        for level in ReasoningEffort:
            self.effort.addItem(f"{level.value.capitalize()} effort", level)
        self.effort.setAccessibleName("Reasoning effort")
        self.effort.setToolTip("How long the model reasons before answering")
        self.set_effort(_stored_effort(settings))
        self.effort.currentIndexChanged.connect(self._on_effort_changed)

        self.sampling = SamplingMenu(settings, self)
        self.settings_button = QToolButton(self)
        self.settings_button.setText("Sampling")
        self.settings_button.setAccessibleName("Sampling settings")
        self.settings_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.settings_button.setMenu(self.sampling)

        self.send_button = QPushButton("Send", self)
        self.send_button.setAccessibleName("Send message")
        self.send_button.setToolTip("Send (Ctrl+Enter)")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.submit)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setAccessibleName("Stop generating")
        self.stop_button.setToolTip("Stop (Esc)")
        self.stop_button.clicked.connect(self.stop_requested)
        self.stop_button.hide()

        side = QVBoxLayout()
        side.setSpacing(4)
        side.addWidget(self.effort)
        side.addWidget(self.settings_button)
        side.addStretch(1)
        side.addWidget(self.send_button)
        side.addWidget(self.stop_button)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 10)
        layout.addWidget(self.prompt, 1)
        layout.addLayout(side)
        self._update_buttons()

    def current_effort(self) -> ReasoningEffort:
        return ReasoningEffort(self.effort.currentData())

    def set_effort(self, effort: ReasoningEffort) -> None:
        self.effort.setCurrentIndex(self.effort.findData(effort))

    def sampling_params(self) -> SamplingParams:
        return self.sampling.params()

    def set_busy(self, busy: bool) -> None:
        """While an answer streams, Send turns into Stop."""
        self._busy = busy
        self._update_buttons()

    def set_can_send(self, can_send: bool) -> None:
        """Sending needs a loaded model."""
        self._can_send = can_send
        self._update_buttons()

    def submit(self) -> None:
        text = self.prompt.toPlainText().strip()
        if not text or self._busy or not self._can_send:
            return
        self.prompt.clear()
        self.send_requested.emit(text)

    def _update_buttons(self) -> None:
        self.send_button.setVisible(not self._busy)
        self.send_button.setEnabled(self._can_send)
        self.stop_button.setVisible(self._busy)

    def _on_effort_changed(self, _index: int) -> None:
        self._settings.setValue(EFFORT_KEY, self.current_effort().value)


def _stored_effort(settings: QSettings) -> ReasoningEffort:
    value = settings.value(EFFORT_KEY, ReasoningEffort.MEDIUM.value)
    try:
        return ReasoningEffort(str(value))
    except ValueError:  # a hand-edited or outdated settings file: fall back rather than refuse to start
        return ReasoningEffort.MEDIUM
