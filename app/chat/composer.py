"""The message composer: multi-line input, attached files (a button, or files dropped on it), effort selector,
sampling settings, Send and Stop, and an edit mode for taking back the last message."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEvent, QSettings, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeyEvent, QPalette, QShowEvent, QTextCursor
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

from gpt_oss_desktop.app.chat.attachment_controls import AttachmentControls, ContextRoomSource, local_files
from gpt_oss_desktop.app.chat.effort_hint import BASE_TOOLTIP, cost_hint, costs_tooltip
from gpt_oss_desktop.app.chat.sampling_menu import SamplingMenu
from gpt_oss_desktop.app.history.attachments import Attachment
from gpt_oss_desktop.app.history.effort_costs import EffortCost
from gpt_oss_desktop.app.settings import CTRL_ENTER_SENDS_KEY, EFFORT_KEY
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.sampling import SamplingParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Draft:
    """What the composer holds: its text and attached files and, while a message is being edited, what it held
    before the edit began (given back when the edit is cancelled or sent)."""

    text: str = ""
    editing: bool = False
    before_edit: str = ""
    attachments: tuple[Attachment, ...] = ()
    before_edit_attachments: tuple[Attachment, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.text and not self.attachments and not self.editing


class PromptEdit(QPlainTextEdit):
    """Multi-line input that grows with its text, from ``MIN_LINES`` to ``MAX_LINES`` lines (then it scrolls).

    Enter sends and Shift+Enter makes a new line; with ``ctrl_enter_sends`` set, Ctrl+Enter sends and Enter makes a
    new line. Ctrl+Enter always sends.

    With ``takes_files`` set, files dropped on it are not pasted as their addresses: they are handed on to be
    attached (``files_dropped``).

    Signals:
        submitted(): the send key was pressed.
        escape_pressed(): Esc was pressed while ``escape_cancels`` is set (else Esc goes on to the parents).
        files_dropped(list): the local files (Paths) of a drop.
    """

    MIN_LINES = 2
    MAX_LINES = 10

    submitted = Signal()
    escape_pressed = Signal()
    files_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Message")
        self.setTabChangesFocus(True)  # Tab moves on to the controls, so the window stays keyboard-usable
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.escape_cancels = False
        self.ctrl_enter_sends = False
        self.takes_files = False
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

    def new_line_key_text(self) -> str:
        return "Enter" if self.ctrl_enter_sends else "Shift+Enter"

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

    # Dragged files reach the text box (the composer's largest part) first; QPlainTextEdit would insert their URLs.

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.takes_files and local_files(event.mimeData()):
            event.acceptProposedAction()
            return
        super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self.takes_files and local_files(event.mimeData()):
            event.acceptProposedAction()
            return
        super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event.mimeData()) if self.takes_files else []
        if files:
            event.acceptProposedAction()
            self.files_dropped.emit(files)
            return
        super().dropEvent(event)

    def _sends(self, modifiers: Qt.KeyboardModifier) -> bool:
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            return True
        return not (self.ctrl_enter_sends or modifiers & Qt.KeyboardModifier.ShiftModifier)

    def _update_placeholder(self) -> None:
        self.setPlaceholderText(
            self.placeholder_format.format(send=self.send_key_text(), newline=self.new_line_key_text())
        )

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

    Attached files (:meth:`attach_files`: the Attach button's file dialog, or files dropped on the composer) are read
    on a worker thread and shown as chips above the prompt, each with its size and token count and a button that
    removes it. A file that cannot be attached (too big, not text, unreadable) is named in a one-line notice under
    the chips, and nothing else changes. A message may be files alone. When files are sent and ``context_room``
    says they do not fit what is left of the context, the notice says so first: a second Send sends anyway, unless
    they would not fit even an empty context. All of that is :class:`AttachmentControls`'s, shared with the effort
    comparison's prompt; ``attachment_bar``, ``notice``, ``reader`` and ``attach_button`` are its widgets.

    Edit mode (:meth:`begin_edit`): the prompt holds the last message to be edited and a bar above it says so, with
    a Cancel button; Esc in the prompt cancels too. Cancelling gives back what the prompt held before; so does
    :meth:`finish_edit` once the edited text was sent.

    Signals:
        send_requested(str, tuple): the user sent this text (already stripped) and these attached files (a tuple of
            Attachment); never both empty.
        stop_requested(): the user asked to stop the running answer.
        edit_cancelled(): the user cancelled editing the last message.
    """

    send_requested = Signal(str, tuple)
    stop_requested = Signal()
    edit_cancelled = Signal()

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._busy = False
        self._can_send = False
        self._before_edit: Draft | None = None  # None: not editing

        self.prompt = PromptEdit(self)
        self.prompt.submitted.connect(self.submit)
        self.prompt.escape_pressed.connect(self.cancel_edit)
        self.files = AttachmentControls(self, focus=self.prompt)
        self.prompt.takes_files = True
        self.prompt.files_dropped.connect(self.files.attach_files)
        self.files.take_drops(self)  # the frame and its controls; the text box hands its drops on itself
        self.attachment_bar = self.files.bar
        self.notice = self.files.notice
        self.reader = self.files.reader
        self.attach_button = self.files.button

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
        bar.addWidget(self.attach_button)
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
        layout.addWidget(self.attachment_bar)
        layout.addWidget(self.notice)
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
        files = self.files.attachments
        if (not text and not files) or self._busy or not self._can_send or not self.files.ready(text):
            return
        self.prompt.clear()
        self.attachment_bar.clear()
        self.files.hide_notice()
        self.send_requested.emit(text, files)

    # -- attached files -----------------------------------------------------------------------------------------

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        """The files attached to the message being written, in order."""
        return self.files.attachments

    @property
    def context_room(self) -> ContextRoomSource | None:
        """The context the next message goes into, asked when files are sent (None: never asked)."""
        return self.files.context_room

    @context_room.setter
    def context_room(self, source: ContextRoomSource | None) -> None:
        self.files.context_room = source

    def choose_files(self) -> None:
        """The Attach button: pick files in a dialog (several at once), then attach them."""
        self.files.choose_files()

    def attach_files(self, paths: Iterable[Path | str]) -> None:
        """Read ``paths`` (on a worker thread) and add each as a chip as it arrives; the ones that cannot be
        attached are named in the notice."""
        self.files.attach_files(paths)

    # -- edit mode and drafts -----------------------------------------------------------------------------------

    @property
    def editing(self) -> bool:
        """The prompt holds the last message, being edited."""
        return self._before_edit is not None

    def begin_edit(self, text: str, attachments: Sequence[Attachment] = ()) -> None:
        """Put ``text`` and its ``attachments`` (a message) in the composer to be edited; what it held is kept aside."""
        if self._before_edit is None:
            self._before_edit = self.draft()
        self._set_text(text)
        self._set_attachments(attachments)
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
        self._set_text(before.text)
        self._set_attachments(before.attachments)
        self._show_edit_bar()

    def draft(self) -> Draft:
        before = self._before_edit
        return Draft(
            self.prompt.toPlainText(),
            before is not None,
            before.text if before is not None else "",
            self.attachment_bar.attachments(),
            before.attachments if before is not None else (),
        )

    def set_draft(self, draft: Draft) -> None:
        """Replace the prompt's text, attached files and edit mode (a chat's draft, when the chat is shown again).
        Files still being read for the draft it replaces are dropped."""
        self._before_edit = (
            Draft(draft.before_edit, attachments=draft.before_edit_attachments) if draft.editing else None
        )
        self._set_text(draft.text)
        self._set_attachments(draft.attachments)
        self._show_edit_bar()

    def _set_text(self, text: str) -> None:
        self.prompt.setPlainText(text)
        self.prompt.moveCursor(QTextCursor.MoveOperation.End)

    def _set_attachments(self, attachments: Sequence[Attachment]) -> None:
        self.files.set_attachments(attachments)  # a file read for what it held before must not join what it holds now

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
