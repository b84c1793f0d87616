"""Files for the attachment tests, shared by the chat's composer and the comparison's prompt: real files written in
a test's folder, and a real drag of their file URLs (as a file manager sends it) dropped on a widget."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

NOTES = "# Capybaras\n\nThe capybara is the largest living rodent.\n\n```python\nprint('hi')\n```\n"
TABLE = "name,weight_kg\ncapybara,50\nbeaver,20\n"


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def drop(target: QWidget, paths: list[Path]) -> QDropEvent:
    """A real drag of ``paths`` entering ``target`` and dropped there. QApplication.sendEvent goes through Qt's own
    delivery, so a widget that takes no drops hands the drag on to the parent that does, as on screen."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    point = QPointF(target.rect().center())
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(point.toPoint(), Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the drag was not accepted"
    event = QDropEvent(point, Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(target, event)
    return event
