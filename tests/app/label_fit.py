"""Layout checks shared by the GUI tests: text that does not fit the widget showing it (clipped mid-word)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics, QTextDocument
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

from gpt_oss_desktop.app.chat.reasoning_panel import ElidingToolButton


def _plain(label: QLabel) -> str:
    text = label.text()
    if label.textFormat() == Qt.TextFormat.PlainText or not Qt.mightBeRichText(text):
        return text
    document = QTextDocument()
    document.setHtml(text)
    return document.toPlainText()


def _bold_metrics(widget: QWidget) -> QFontMetrics:
    # Rich text may be bold in parts; measuring all of it bold never under-estimates its width.
    font = QFont(widget.font())
    font.setBold(True)
    return QFontMetrics(font)


def cut_by_parent(widget: QWidget) -> bool:
    """Whether a parent cuts off part of ``widget``'s width (it sticks out of the column or window holding it).
    Only the width: a scroll area legitimately shows part of a tall widget."""
    visible = widget.visibleRegion().boundingRect()
    return not visible.isEmpty() and visible.width() < widget.width()


def clipped_labels(root: QWidget) -> list[str]:
    """Visible labels under ``root`` cut off by a parent, and non-wrapping ones whose text is wider than the room
    they have."""
    found = []
    for label in root.findChildren(QLabel):
        if not label.isVisible() or not label.text():
            continue
        if cut_by_parent(label):
            found.append(f"{label.text()!r}: cut off by its parent")
        if label.wordWrap():
            # Wrapped text needs the height its width gives it; less, and lines are cut off at the bottom.
            needed_height = label.heightForWidth(label.width())
            if needed_height > label.height():
                found.append(f"{label.text()!r}: wraps to {needed_height} px in {label.height()} px")
            continue
        if label.pixmap() is not None:
            continue
        text = _plain(label)
        metrics = label.fontMetrics() if text == label.text() else _bold_metrics(label)
        needed = max(metrics.horizontalAdvance(line) for line in text.splitlines() or [""])
        room = label.contentsRect().width() - 2 * label.margin()
        if needed > room:
            found.append(f"{text!r}: {needed} px in {room} px")
    return found


def clipped_buttons(root: QWidget) -> list[str]:
    """Visible buttons under ``root`` whose text is cut off without an ellipsis. An eliding header must show either
    its whole text or a shortened one ending in "…" with the whole text in its tooltip, and that must fit."""
    found = []
    for button in root.findChildren(QAbstractButton):
        if not button.isVisible() or not button.text():
            continue
        if cut_by_parent(button):
            found.append(f"{button.text()!r}: button cut off by its parent")
        if isinstance(button, ElidingToolButton):
            shown = QAbstractButton.text(button)
            whole = button.text()
            if shown != whole and not (shown.endswith("…") and button.toolTip() == whole):
                found.append(f"{whole!r} shown as {shown!r} without an ellipsis and tooltip")
            if button.fontMetrics().horizontalAdvance(shown) > button.width():
                found.append(f"{shown!r} wider than its button ({button.width()} px)")
        elif button.fontMetrics().horizontalAdvance(button.text().replace("&", "")) > button.width():
            found.append(f"{button.text()!r} wider than its button ({button.width()} px)")
    return found
