"""The message composer: multi-line input, effort selector, sampling settings, Send and Stop, and an edit mode for
taking back the last message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QSettings, Qt, Signal
from PySide6.QtGui import QKeyEvent, QPalette, QShowEvent, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.chat.effort_hint import BASE_TOOLTIP, cost_hint, costs_tooltip
from gpt_oss_desktop.app.chat.sampling_menu import SamplingMenu
from gpt_oss_desktop.app.history.effort_costs import EffortCost
from gpt_oss_desktop.app.settings import CTRL_ENTER_SENDS_KEY, EFFORT_KEY
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.sampling import SamplingParams


@dataclass(frozen=True, slots=True)
class Draft:
    """What the composer holds: its text and, while the last message is being edited, what it held before the edit
    began (given back when the edit is cancelled or sent)."""

    text: str = ""
    editing: bool = False
    before_edit: str = ""

    @property
    def empty(self) -> bool:
        return not self.text and not self.editing


class PromptEdit(QPlainTextEdit):
    """Multi-line input that grows with its text, from ``MIN_LINES`` to ``MAX_LINES`` lines (then it scrolls).

    Enter sends and Shift+Enter makes a new line; with ``ctrl_enter_sends`` set, Ctrl+Enter sends and Enter makes a
    new line. Ctrl+Enter always sends.

    Signals:
        submitted(): the send key was pressed.
        escape_pressed(): Esc was pressed while ``escape_cancels`` is set (else Esc goes on to the parents).
    """

    MIN_LINES = 2
    MAX_LINES = 10

    submitted = Signal()
    escape_pressed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Message")
        self.setTabChangesFocus(True)  # Tab moves on to the controls, so the window stays keyboard-usable
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.escape_cancels = False
        self.ctrl_enter_sends = False
        # The placeholder names the keys of the current send-key setting: {send} and {newline} are filled in.
        self.placeholder_format = "Message gpt-oss…  ({send} to send, {newline} for a new line)"
        self._update_placeholder()
        # Wrapped lines count too: the document's layout reports its size in lines (QPlainTextDocumentLayout).
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self._fit_height()

    def set_ctrl_enter_sends(self, on: bool) -> None:
        self.ctrl_enter_sends = on
        self._update_placeholder()

    def set_placeholder_format(self, text: str) -> None:
        """The placeholder, with ``{send}`` and ``{newline}`` standing for the keys that send and add a line."""
        self.placeholder_format = text
        self._update_placeholder()

    def send_key_text(self) -> str:
        return "Ctrl+Enter" if self.ctrl_enter_sends else "Enter"

    def visible_lines(self) -> int:
        """How many lines of text the box shows without scrolling, right now."""
        lines = int(self.document().documentLayout().documentSize().height())
        return max(self.MIN_LINES, min(self.MAX_LINES, lines))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.escape_cancels:
            self.escape_pressed.emit()
            event.accept()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._sends(event.modifiers()):
            self.submitted.emit()
            event.accept()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            # Shift+Enter (or Enter in Ctrl+Enter mode): a plain new line, whatever the modifier.
            self.insertPlainText("\n")
            event.accept()
            return
        super().keyPressEvent(event)

    def _sends(self, modifiers: Qt.KeyboardModifier) -> bool:
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            return True
        return not (self.ctrl_enter_sends or modifiers & Qt.KeyboardModifier.ShiftModifier)

    def _update_placeholder(self) -> None:
        newline = "Enter" if self.ctrl_enter_sends else "Shift+Enter"
        self.setPlaceholderText(self.placeholder_format.format(send=self.send_key_text(), newline=newline))

    # The stylesheet's padding (app/shell/theme.py) arrives when the box is polished, just before it is first shown,
    # and changes with the theme or the font: fit the height again then.
    def showEvent(self, event: QShowEvent) -> None:
        self._fit_height()
        super().showEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            self._fit_height()

    def _fit_height(self, *_args: object) -> None:
        margins = self.contentsMargins()
        frame = 2 * self.frameWidth() + margins.top() + margins.bottom()
        document_margin = 2 * int(self.document().documentMargin())
        height = self.visible_lines() * self.fontMetrics().lineSpacing() + frame + document_margin
        if height != self.height():
            self.setFixedHeight(height)


class Composer(QFrame):
    """Input row. The effort choice is remembered in ``settings``.

    Edit mode (:meth:`begin_edit`): the prompt holds the last message to be edited and a bar above it says so, with
    a Cancel button; Esc in the prompt cancels too. Cancelling gives back what the prompt held before; so does
    :meth:`finish_edit` once the edited text was sent.

    Signals:
        send_requested(str): the user sent this text (already stripped, never empty).
        stop_requested(): the user asked to stop the running answer.
        edit_cancelled(): the user cancelled editing the last message.
    """

    send_requested = Signal(str)
    stop_requested = Signal()
    edit_cancelled = Signal()

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._busy = False
        self._can_send = False
        self._before_edit: str | None = None  # None: not editing

        self.prompt = PromptEdit(self)
        self.prompt.submitted.connect(self.submit)
        self.prompt.escape_pressed.connect(self.cancel_edit)

        self.edit_label = QLabel("Editing your last message (Esc cancels): sending replaces it and its answer", self)
        self.edit_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.edit_label.setWordWrap(True)
        self.cancel_edit_button = QToolButton(self)
        self.cancel_edit_button.setText("Cancel")
        self.cancel_edit_button.setAccessibleName("Cancel editing")
        self.cancel_edit_button.setToolTip("Keep the message as it was (Esc)")
        self.cancel_edit_button.clicked.connect(self.cancel_edit)
        edit_row = QHBoxLayout()
        edit_row.setContentsMargins(0, 0, 0, 0)
        edit_row.addWidget(self.edit_label, 1)
        edit_row.addWidget(self.cancel_edit_button)
        self.edit_bar = QWidget(self)
        self.edit_bar.setLayout(edit_row)
        self.edit_bar.setAccessibleName("Editing the last message")
        self.edit_bar.hide()

        self.effort = QComboBox(self)
        for level in ReasoningEffort:
            self.effort.addItem(f"{level.value.capitalize()} effort", level)
        self.effort.setAccessibleName("Reasoning effort")
        self.effort.setToolTip(BASE_TOOLTIP)
        self.set_effort(_stored_effort(settings))
        self.effort.currentIndexChanged.connect(self._on_effort_changed)
        # What the chosen effort has cost on this computer (app/chat/effort_hint.py); hidden until known.
        self.effort_cost = QLabel(self)
        self.effort_cost.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.effort_cost.setAccessibleName("Thinking time of this effort here")
        self.effort_cost.hide()
        self._effort_costs: Mapping[str, EffortCost] = {}

        self.sampling = SamplingMenu(settings, self)
        self.settings_button = QToolButton(self)
        self.settings_button.setText("Sampling")
        self.settings_button.setAccessibleName("Sampling settings")
        self.settings_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.settings_button.setProperty("role", "control")  # outlined, its chevron given room (app/shell/theme.py)
        self.settings_button.setMenu(self.sampling)

        self.send_button = QPushButton("Send", self)
        self.send_button.setAccessibleName("Send message")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.submit)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setAccessibleName("Stop generating")
        self.stop_button.setToolTip("Stop (Esc)")
        self.stop_button.clicked.connect(self.stop_requested)
        self.stop_button.hide()

        # The prompt on top, the controls in one compact bar under it: effort and sampling on the left, Send (or
        # Stop, in the same place) on the right.
        bar = QHBoxLayout()
        bar.setSpacing(6)
        bar.addWidget(self.effort)
        bar.addWidget(self.settings_button)
        bar.addWidget(self.effort_cost)
        bar.addStretch(1)
        bar.addWidget(self.send_button)
        bar.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 10)
        layout.setSpacing(6)
        layout.addWidget(self.edit_bar)
        layout.addWidget(self.prompt)
        layout.addLayout(bar)
        self.set_ctrl_enter_sends(_stored_bool(settings, CTRL_ENTER_SENDS_KEY))
        self.sampling.ctrl_enter_action.toggled.connect(self.set_ctrl_enter_sends)
        self._update_buttons()

    def set_ctrl_enter_sends(self, on: bool) -> None:
        """Ctrl+Enter sends and Enter makes a new line (on), or Enter sends (off, the default); remembered."""
        self._settings.setValue(CTRL_ENTER_SENDS_KEY, on)
        self.prompt.set_ctrl_enter_sends(on)
        self.send_button.setToolTip(f"Send ({self.prompt.send_key_text()})")
        if self.sampling.ctrl_enter_action.isChecked() != on:
            self.sampling.ctrl_enter_action.setChecked(on)

    def current_effort(self) -> ReasoningEffort:
        return ReasoningEffort(self.effort.currentData())

    def set_effort(self, effort: ReasoningEffort) -> None:
        self.effort.setCurrentIndex(self.effort.findData(effort))

    def sampling_params(self) -> SamplingParams:
        return self.sampling.params()

    def show_effort_costs(self, model: str, costs: Mapping[str, EffortCost]) -> None:
        """What each effort has cost ``model`` here: the chosen one's beside the selector, all in its tooltip."""
        self._effort_costs = costs
        self.effort.setToolTip(costs_tooltip(model, costs))
        self._show_effort_cost()

    def _show_effort_cost(self) -> None:
        hint = cost_hint(self._effort_costs.get(self.current_effort().value))
        self.effort_cost.setText(hint)
        self.effort_cost.setVisible(bool(hint))

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

    # -- edit mode and drafts -----------------------------------------------------------------------------------

    @property
    def editing(self) -> bool:
        """The prompt holds the last message, being edited."""
        return self._before_edit is not None

    def begin_edit(self, text: str) -> None:
        """Put ``text`` (the last message) in the prompt to be edited; what the prompt held is kept aside."""
        if self._before_edit is None:
            self._before_edit = self.prompt.toPlainText()
        self._set_text(text)
        self._show_edit_bar()

    def cancel_edit(self) -> None:
        """Stop editing and give the prompt back what it held before (no-op when not editing)."""
        if self._before_edit is None:
            return
        self.finish_edit()
        self.edit_cancelled.emit()

    def finish_edit(self) -> None:
        """The edit is over (sent or cancelled): the prompt gets back what it held before the edit began."""
        if self._before_edit is None:
            return
        before, self._before_edit = self._before_edit, None
        self._set_text(before)
        self._show_edit_bar()

    def draft(self) -> Draft:
        before = self._before_edit
        return Draft(self.prompt.toPlainText(), before is not None, before or "")

    def set_draft(self, draft: Draft) -> None:
        """Replace the prompt's text and edit mode (a chat's draft, when the chat is shown again)."""
        self._before_edit = draft.before_edit if draft.editing else None
        self._set_text(draft.text)
        self._show_edit_bar()

    def _set_text(self, text: str) -> None:
        self.prompt.setPlainText(text)
        self.prompt.moveCursor(QTextCursor.MoveOperation.End)

    def _show_edit_bar(self) -> None:
        self.edit_bar.setVisible(self.editing)
        self.prompt.escape_cancels = self.editing

    def _update_buttons(self) -> None:
        self.send_button.setVisible(not self._busy)
        self.send_button.setEnabled(self._can_send)
        self.stop_button.setVisible(self._busy)

    def _on_effort_changed(self, _index: int) -> None:
        self._settings.setValue(EFFORT_KEY, self.current_effort().value)
        self._show_effort_cost()


def _stored_effort(settings: QSettings) -> ReasoningEffort:
    value = settings.value(EFFORT_KEY, ReasoningEffort.MEDIUM.value)
    try:
        return ReasoningEffort(str(value))
    except ValueError:  # a hand-edited or outdated settings file: fall back rather than refuse to start
        return ReasoningEffort.MEDIUM


def _stored_bool(settings: QSettings, key: str) -> bool:
    # QSettings' ini format gives back "true"/"false" strings; the native formats give bools.
    value = settings.value(key, False)
    return value is True or str(value).lower() == "true"
