"""Keys a window's actions keep even while a text box has the focus.

A text box claims the standard editing keys before the window's shortcuts see them (Qt asks the focused widget
first, with a ShortcutOverride event). Under Qt's X11 key scheme (Linux desktops) Ctrl+K is one of them, "delete to
the end of the line": without this, Ctrl+K would never reach Search chats from the message box, where the cursor
nearly always is. :class:`WindowKeysFirst` on a text box keeps it from claiming the keys of the actions it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QWidget

logger = logging.getLogger(__name__)


class WindowKeysFirst(QObject):
    """An event filter: the watched widgets leave the ``actions``' keys to the window (read at each key press, so a
    shortcut changed later is followed)."""

    def __init__(self, actions: Sequence[QAction], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.actions = tuple(actions)
        self.widgets: list[QWidget] = []

    def watch(self, *widgets: QWidget) -> None:
        for widget in widgets:
            widget.installEventFilter(self)
            self.widgets.append(widget)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(event, QKeyEvent):
            return False
        pressed = QKeySequence(event.keyCombination())
        # Filtered out unaccepted: the widget never claims the key, and Qt goes on to the window's shortcuts.
        return any(action.isEnabled() and pressed in action.shortcuts() for action in self.actions)
