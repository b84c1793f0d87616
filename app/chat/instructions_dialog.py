"""The per-chat instructions editor: free text the model receives as harmony's developer message.

With the settings, it also keeps the user's instruction presets (a Presets row above the editor: choose one to fill
the editor, save the editor's text under a name, delete one) and the default instructions new chats start with (a
checkbox under the editor). The stored form is app/chat/instruction_presets.py's; the keys are app/settings.py's.
"""

from __future__ import annotations

import logging
from typing import Final

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.chat.instruction_presets import InstructionPresets, default_from_stored, preset_name
from gpt_oss_desktop.app.settings import DEFAULT_INSTRUCTIONS_KEY, INSTRUCTION_PRESETS_KEY

logger = logging.getLogger(__name__)

# Harmony's system message is fixed by the format (identity, dates, reasoning effort, channels); instructions from the
# user belong in the developer message, which is what this text becomes.
_EXPLANATION = (
    "Instructions for this chat, e.g. a persona, a language or an answer format. "
    "They are sent with every message of this chat as the developer message."
)
DEFAULT_CHECKBOX_TEXT: Final = "Start new chats with these instructions"


# -- the stored presets and default (QSettings) ---------------------------------------------------------------------


def stored_presets(settings: QSettings) -> InstructionPresets:
    return InstructionPresets.from_stored(settings.value(INSTRUCTION_PRESETS_KEY))


def store_presets(settings: QSettings, presets: InstructionPresets) -> None:
    if presets.texts:
        settings.setValue(INSTRUCTION_PRESETS_KEY, presets.to_json())
    else:
        settings.remove(INSTRUCTION_PRESETS_KEY)
    settings.sync()  # at once: presets are the user's writing, kept even if the app is killed before it quits


def default_instructions(settings: QSettings) -> str:
    """The instructions new chats start with; ``""`` for none."""
    return default_from_stored(settings.value(DEFAULT_INSTRUCTIONS_KEY))


def set_default_instructions(settings: QSettings, text: str) -> None:
    """Make ``text`` the instructions new chats start with; blank text: new chats start without."""
    if text.strip():
        settings.setValue(DEFAULT_INSTRUCTIONS_KEY, text.strip())
    else:
        settings.remove(DEFAULT_INSTRUCTIONS_KEY)
    settings.sync()


# -- the dialog -----------------------------------------------------------------------------------------------------


class InstructionsDialog(QDialog):
    """Edits one chat's instructions; ``text()`` is the result after ``exec()`` returns Accepted.

    With ``settings``, presets are saved and deleted at once (each asks first where it would lose something), and
    OK applies the "Start new chats with these instructions" checkbox: checked, the editor's text becomes the
    default; unchecked where it was checked, new chats start without. Cancel leaves the default as it was. Without
    settings (nothing to keep them in) the Presets row and the checkbox are hidden.
    """

    def __init__(self, text: str, parent: QWidget | None = None, *, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self.setWindowTitle("Chat instructions")
        self.resize(560, 360)
        explanation = QLabel(_EXPLANATION, self)
        explanation.setWordWrap(True)

        self.presets_label = QLabel("&Presets:", self)
        self.presets_combo = QComboBox(self)
        self.presets_combo.setAccessibleName("Instruction presets")
        self.presets_combo.setPlaceholderText("Choose a preset…")
        # A long preset name must not widen the dialog: the combo elides, its tooltip holds the instructions.
        self.presets_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.presets_combo.setMinimumContentsLength(16)
        self.presets_label.setBuddy(self.presets_combo)
        self.save_preset_button = QPushButton("&Save as preset…", self)
        self.save_preset_button.setToolTip("Keep these instructions under a name, to use them in other chats")
        self.delete_preset_button = QPushButton("&Delete preset", self)
        # Enter in the editor makes a new line; it must not press these (QDialog's default-button behaviour).
        for button in (self.save_preset_button, self.delete_preset_button):
            button.setAutoDefault(False)
        presets_row = QHBoxLayout()
        presets_row.addWidget(self.presets_label)
        presets_row.addWidget(self.presets_combo, 1)
        presets_row.addWidget(self.save_preset_button)
        presets_row.addWidget(self.delete_preset_button)

        self.editor = QPlainTextEdit(self)
        self.editor.setPlainText(text)
        self.editor.setPlaceholderText("e.g. Answer in French, in at most three sentences.")
        self.editor.setAccessibleName("Chat instructions")
        self.editor.setTabChangesFocus(True)  # keep the dialog usable from the keyboard
        explanation.setBuddy(self.editor)

        self.default_box = QCheckBox(DEFAULT_CHECKBOX_TEXT, self)
        self._default = default_instructions(settings) if settings is not None else ""
        # Checked when these are the default already, so unchecking is how the default is cleared.
        self._was_default = bool(self._default) and self._default == text.strip()
        self.default_box.setChecked(self._was_default)
        self.default_box.setToolTip(
            f"New chats now start with: {_first_words(self._default)}"
            if self._default
            else "New chats now start without instructions"
        )

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, parent=self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation)
        layout.addLayout(presets_row)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.default_box)
        layout.addWidget(buttons)

        for widget in (
            self.presets_label,
            self.presets_combo,
            self.save_preset_button,
            self.delete_preset_button,
            self.default_box,
        ):
            widget.setVisible(settings is not None)
        self.presets_combo.activated.connect(self._preset_chosen)
        self.presets_combo.currentIndexChanged.connect(self._update_buttons)
        self.save_preset_button.clicked.connect(self.save_preset)
        self.delete_preset_button.clicked.connect(self.delete_preset)
        self.editor.textChanged.connect(self._update_buttons)
        self._show_presets(None)
        self.editor.setFocus()

    def text(self) -> str:
        return self.editor.toPlainText()

    @property
    def presets(self) -> InstructionPresets:
        """The presets as stored now (none without settings)."""
        return stored_presets(self._settings) if self._settings is not None else InstructionPresets()

    def chosen_preset(self) -> str | None:
        """The preset the combo shows; None before one is chosen or saved."""
        name = self.presets_combo.currentData()
        return name if isinstance(name, str) else None

    def choose_preset(self, name: str) -> bool:
        """Fill the editor with the preset ``name`` as choosing it in the combo does; False if there is none."""
        index = self.presets_combo.findData(name)
        if index < 0:
            return False
        self.presets_combo.setCurrentIndex(index)
        self._preset_chosen(index)
        return True

    def save_preset(self) -> None:
        """Ask for a name and keep the editor's text under it; an existing name is replaced only if the user says so."""
        if self._settings is None or not self.text().strip():
            return
        answer, ok = QInputDialog.getText(self, "Save as preset", "Preset name:", text=self.chosen_preset() or "")
        name = preset_name(answer)
        if not ok or not name:
            return
        presets = self.presets
        existing = presets.text(name)
        if (
            existing is not None
            and existing != self.text().strip()
            and not self._ask("Replace preset", f"A preset named “{name}” exists. Replace its instructions with these?")
        ):
            return
        store_presets(self._settings, presets.with_preset(name, self.text()))
        logger.info("instruction preset %r saved", name)
        self._show_presets(name)

    def delete_preset(self) -> None:
        """Delete the chosen preset, after asking; the editor keeps its text."""
        name = self.chosen_preset()
        if self._settings is None or name is None:
            return
        if not self._ask("Delete preset", f"Delete the preset “{name}”? The instructions in this chat stay."):
            return
        store_presets(self._settings, self.presets.without(name))
        logger.info("instruction preset %r deleted", name)
        self._show_presets(None)

    def accept(self) -> None:
        if self._settings is not None:
            if self.default_box.isChecked():
                set_default_instructions(self._settings, self.text())
            elif self._was_default:
                set_default_instructions(self._settings, "")
        super().accept()

    def _ask(self, title: str, question: str) -> bool:
        return QMessageBox.question(self, title, question) == QMessageBox.StandardButton.Yes

    def _show_presets(self, current: str | None) -> None:
        """List the stored presets in the combo, showing ``current`` (None: the placeholder)."""
        presets = self.presets
        self.presets_combo.clear()
        for name in presets.names():
            self.presets_combo.addItem(name, name)
            self.presets_combo.setItemData(
                self.presets_combo.count() - 1, presets.text(name), Qt.ItemDataRole.ToolTipRole
            )
        self.presets_combo.setCurrentIndex(self.presets_combo.findData(current) if current is not None else -1)
        self.presets_combo.setEnabled(self.presets_combo.count() > 0)
        self._update_buttons()

    def _preset_chosen(self, index: int) -> None:
        text = self.presets.text(self.presets_combo.itemData(index))
        if text is None:  # deleted by another window since the list was read
            self._show_presets(None)
            return
        # Through the cursor, not setPlainText: Ctrl+Z brings back what the editor held before.
        cursor = self.editor.textCursor()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        self.editor.setTextCursor(cursor)
        self.editor.setFocus()

    def _update_buttons(self) -> None:
        self.save_preset_button.setEnabled(bool(self.text().strip()))
        self.delete_preset_button.setEnabled(self.chosen_preset() is not None)


def _first_words(text: str, limit: int = 120) -> str:
    """``text`` on one line, cut at ``limit`` characters: a plain-text tooltip does not wrap."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def ask_instructions(parent: QWidget, current: str, settings: QSettings | None = None) -> str | None:
    """Show the dialog modally; the new text, or None if cancelled. With ``settings``, it offers the saved presets
    and the default for new chats."""
    dialog = InstructionsDialog(current, parent, settings=settings)
    try:
        return dialog.text() if dialog.exec() == QDialog.DialogCode.Accepted else None
    finally:
        dialog.deleteLater()
