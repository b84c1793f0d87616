"""Help ▸ Keyboard shortcuts: every key the window answers to, read from the window when the dialog opens.

Nothing here is a list kept by hand, so it cannot go stale: the menus' actions (in menu-bar order), actions added to
the window outside any menu, widgets' own :class:`QShortcut` keys that say what they do (their ``whatsThis``; the
sidebar's F2 rename, for one), and the message box's send and new-line keys, which follow the Sampling menu's "Send
with Ctrl+Enter".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMainWindow,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.chat.composer import PromptEdit

logger = logging.getLogger(__name__)

TITLE = "Keyboard shortcuts"
MESSAGE_BOX = "Message box"
OTHER = "Window"


@dataclass(frozen=True)
class Shortcut:
    """One command and its keys, as the platform writes them (several joined by ", ")."""

    what: str
    keys: str


@dataclass(frozen=True)
class ShortcutGroup:
    title: str
    shortcuts: tuple[Shortcut, ...]


def without_mnemonic(text: str) -> str:
    """A menu text without its ``&`` mnemonic marks (``&&`` is a literal ``&``)."""
    return re.sub(r"&(.)", r"\1", text)


def keys_text(sequences: Iterable[QKeySequence]) -> str:
    return ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in sequences if not s.isEmpty())


def window_shortcuts(window: QMainWindow, prompt: PromptEdit | None = None) -> list[ShortcutGroup]:
    """Every shortcut of ``window`` now: its menus', ``prompt``'s keys, widgets' shortcuts, then other actions."""
    # Actions met already (a menu's action is usually the window's too), held so that their Python wrappers live on:
    # PySide gives a living wrapper back for the same action, and its id is never reused meanwhile.
    seen: dict[int, QAction] = {}
    groups = [*_menu_groups(window, seen)]
    if prompt is not None:
        groups.append(message_box_group(prompt))
    groups.extend(_widget_shortcut_groups(window))
    rest = _action_shortcuts(window.actions(), seen, prefix="")
    if rest:
        groups.append(ShortcutGroup(OTHER, tuple(rest)))
    return groups


def message_box_group(prompt: PromptEdit) -> ShortcutGroup:
    """The message box's keys, in the words of its placeholder (Sampling ▸ Send with Ctrl+Enter swaps them)."""
    return ShortcutGroup(
        MESSAGE_BOX,
        (
            Shortcut("Send the message (or the comparison)", prompt.send_key_text()),
            Shortcut("New line", prompt.new_line_key_text()),
            Shortcut("Cancel editing a message", QKeySequence("Esc").toString(QKeySequence.SequenceFormat.NativeText)),
        ),
    )


def _menu_groups(window: QMainWindow, seen: dict[int, QAction]) -> Iterable[ShortcutGroup]:
    for entry in window.menuBar().actions():
        menu = entry.menu()
        if not isinstance(menu, QMenu):
            continue
        shortcuts = _action_shortcuts(menu.actions(), seen, prefix="")
        if shortcuts:
            yield ShortcutGroup(without_mnemonic(entry.text()), tuple(shortcuts))


def _action_shortcuts(actions: Iterable[QAction], seen: dict[int, QAction], *, prefix: str) -> list[Shortcut]:
    """The actions with keys (submenus' too, their entries named "Submenu ▸ entry"), each once."""
    found: list[Shortcut] = []
    for action in actions:
        if id(action) in seen or action.isSeparator():
            continue
        seen[id(action)] = action
        submenu = action.menu()
        if isinstance(submenu, QMenu):
            inner = f"{prefix}{without_mnemonic(action.text())} ▸ "
            found.extend(_action_shortcuts(submenu.actions(), seen, prefix=inner))
            continue
        keys = keys_text(action.shortcuts())
        if keys:
            found.append(Shortcut(prefix + without_mnemonic(action.text()), keys))
    return found


def _widget_shortcut_groups(window: QMainWindow) -> Iterable[ShortcutGroup]:
    """Widgets' QShortcuts that say what they do, grouped under their widget's accessible name."""
    groups: dict[str, list[Shortcut]] = {}
    for shortcut in window.findChildren(QShortcut):
        keys = keys_text(shortcut.keys())
        if not (shortcut.whatsThis() and keys and shortcut.isEnabled()):
            continue
        owner = shortcut.parent()
        title = owner.accessibleName() if isinstance(owner, QWidget) and owner.accessibleName() else OTHER
        groups.setdefault(title, []).append(Shortcut(shortcut.whatsThis(), keys))
    for title, shortcuts in groups.items():
        yield ShortcutGroup(title, tuple(shortcuts))


class ShortcutsDialog(QDialog):
    """The list, one section per group; ``groups`` is what it shows."""

    def __init__(self, groups: list[ShortcutGroup], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.groups = groups
        self.setWindowTitle(TITLE)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Command", "Keys"])
        self.tree.setAccessibleName(TITLE)
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.tree.setUniformRowHeights(True)
        bold = QFont(self.tree.font())
        bold.setBold(True)
        for group in groups:
            header = QTreeWidgetItem(self.tree, [group.title])
            header.setFont(0, bold)
            header.setFirstColumnSpanned(True)
            for shortcut in group.shortcuts:
                QTreeWidgetItem(header, [shortcut.what, shortcut.keys])
        self.tree.expandAll()
        self.tree.resizeColumnToContents(0)
        note = QLabel("Sampling ▸ Send with Ctrl+Enter, beside the message box, swaps Enter and Ctrl+Enter.", self)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(560, 600)

    def rows(self) -> list[tuple[str, str, str]]:
        """(group, command, keys) for every row shown, top to bottom."""
        found: list[tuple[str, str, str]] = []
        for index in range(self.tree.topLevelItemCount()):
            header = self.tree.topLevelItem(index)
            assert header is not None
            for child_index in range(header.childCount()):
                row = header.child(child_index)
                assert row is not None
                found.append((header.text(0), row.text(0), row.text(1)))
        return found
