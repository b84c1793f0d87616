"""Attached files as chips: one line per file (name · size · tokens), removable in the composer, read-only under a
sent message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from gpt_oss_desktop.app.chat.attachments import describe, file_size
from gpt_oss_desktop.app.chat.flow_layout import FlowLayout
from gpt_oss_desktop.app.history.attachments import Attachment

# A long file name is elided in the middle past this width (the chip's tooltip holds it whole): chips stay compact
# and several fit on a row.
_NAME_WIDTH: Final = 220
_ICON_SIZE: Final = QSize(14, 14)


class AttachmentChip(QFrame):
    """One file: its name, size and token count, and (``removable``) a button that takes it off the message.

    Signals:
        remove_requested(): the user clicked the remove button.
    """

    remove_requested = Signal()

    def __init__(self, attachment: Attachment, *, removable: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.attachment = attachment
        self.setProperty("role", "attachment-chip")  # outlined, rounded (app/shell/theme.py)
        self.setAccessibleName(f"Attached file {attachment.name}")
        self.setToolTip(describe(attachment))
        self.icon = QToolButton(self)
        self.icon.setProperty("iconName", "file-text")
        self.icon.setAutoRaise(True)
        self.icon.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.icon.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)  # an icon, not a button
        self.icon.setProperty("role", "chip-icon")
        self.icon.setIconSize(_ICON_SIZE)
        self.label = QLabel(self)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setText(self._shown_text())
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4 if removable else 10, 2)
        layout.setSpacing(2)
        layout.addWidget(self.icon)
        layout.addWidget(self.label)
        self.remove_button: QToolButton | None = None
        if removable:
            button = QToolButton(self)
            button.setProperty("iconName", "x")
            button.setProperty("role", "chip-icon")
            button.setIconSize(_ICON_SIZE)
            button.setAutoRaise(True)
            button.setAccessibleName(f"Remove {attachment.name}")
            button.setToolTip("Remove this file from the message")
            button.clicked.connect(self.remove_requested)
            layout.addWidget(button)
            self.remove_button = button

    def _shown_text(self) -> str:
        # Elided by the label's own font (the theme's), so a long name never pushes the size and count out of view.
        name = self.label.fontMetrics().elidedText(self.attachment.name, Qt.TextElideMode.ElideMiddle, _NAME_WIDTH)
        figures = describe(self.attachment).removeprefix(self.attachment.name)
        return name + figures


class AttachmentBar(QWidget):
    """The files attached to the message being written, as removable chips in wrapping rows; hidden when empty.

    Signals:
        changed(): a file was added or removed, or the bar was cleared or refilled.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Attached files")
        self._flow = FlowLayout(self)
        self.chips: list[AttachmentChip] = []
        self.hide()

    def attachments(self) -> tuple[Attachment, ...]:
        return tuple(chip.attachment for chip in self.chips)

    def add(self, attachment: Attachment) -> AttachmentChip:
        chip = AttachmentChip(attachment, removable=True, parent=self)
        chip.remove_requested.connect(lambda: self.remove(chip))
        self._flow.addWidget(chip)
        chip.show()  # a child added to a parent already on screen stays hidden until shown
        self.chips.append(chip)
        self._refresh()
        return chip

    def remove(self, chip: AttachmentChip) -> None:
        if chip not in self.chips:
            return
        self.chips.remove(chip)
        self._flow.removeWidget(chip)
        chip.hide()
        chip.deleteLater()
        self._refresh()

    def set_attachments(self, attachments: Sequence[Attachment]) -> None:
        """Replace every chip (a draft given back, an edit begun)."""
        for chip in list(self.chips):
            self.chips.remove(chip)
            self._flow.removeWidget(chip)
            chip.hide()
            chip.deleteLater()
        for attachment in attachments:
            self.add(attachment)
        self._refresh()

    def clear(self) -> None:
        self.set_attachments(())

    def summary(self) -> str:
        """'2 files · 14.2 KiB' for the composer's accessible description."""
        size = sum(chip.attachment.size for chip in self.chips)
        return f"{len(self.chips)} file{'' if len(self.chips) == 1 else 's'} · {file_size(size)}"

    def _refresh(self) -> None:
        self.setVisible(bool(self.chips))
        self.setAccessibleDescription(self.summary() if self.chips else "")
        self.updateGeometry()
        self.changed.emit()
