"""The per-chat instructions editor: free text the model receives as harmony's developer message."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

# Harmony's system message is fixed by the format (identity, dates, reasoning effort, channels); instructions from the
# user belong in the developer message, which is what this text becomes.
_EXPLANATION = (
    "Instructions for this chat, e.g. a persona, a language or an answer format. "
    "They are sent with every message of this chat as the developer message."
)


class InstructionsDialog(QDialog):
    """Edits one chat's instructions; ``text()`` is the result after ``exec()`` returns Accepted."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Chat instructions")
        self.resize(520, 320)
        explanation = QLabel(_EXPLANATION, self)
        explanation.setWordWrap(True)
        self.editor = QPlainTextEdit(self)
        self.editor.setPlainText(text)
        self.editor.setPlaceholderText("e.g. Answer in French, in at most three sentences.")
        self.editor.setAccessibleName("Chat instructions")
        self.editor.setTabChangesFocus(True)  # keep the dialog usable from the keyboard
        explanation.setBuddy(self.editor)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, parent=self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation)
        layout.addWidget(self.editor, 1)
        layout.addWidget(buttons)
        self.editor.setFocus()

    def text(self) -> str:
        return self.editor.toPlainText()


def ask_instructions(parent: QWidget, current: str) -> str | None:
    """Show the dialog modally; the new text, or None if cancelled."""
    dialog = InstructionsDialog(current, parent)
    try:
        return dialog.text() if dialog.exec() == QDialog.DialogCode.Accepted else None
    finally:
        dialog.deleteLater()
