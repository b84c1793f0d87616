"""Help ▸ Keyboard shortcuts lists the window's keys as they are when it opens: the menus' actions (nothing listed
by hand), an action added to the window later, the sidebar's F2 rename, and the message box's send and new-line
keys, which follow Sampling ▸ Send with Ctrl+Enter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtTest import QTest

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.app.shell.shortcuts_dialog import MESSAGE_BOX, OTHER, ShortcutsDialog, without_mnemonic


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def native(text: str) -> str:
    return QKeySequence(text).toString(QKeySequence.SequenceFormat.NativeText)


def open_with_f1(qtbot: Any, window: MainWindow) -> ShortcutsDialog:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    before = set(map(id, window.findChildren(ShortcutsDialog)))
    QTest.keyClick(window.composer.prompt, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: any(id(d) not in before and d.isVisible() for d in window.findChildren(ShortcutsDialog)))
    (dialog,) = [d for d in window.findChildren(ShortcutsDialog) if id(d) not in before]
    return dialog


def keys_of(dialog: ShortcutsDialog, group: str, what: str) -> str:
    (keys,) = [keys for shown_group, shown_what, keys in dialog.rows() if (shown_group, shown_what) == (group, what)]
    return keys


def test_f1_lists_the_menus_shortcuts_read_from_their_actions(qtbot: Any, make_window: Any, store: ChatStore) -> None:
    window = make_window(LocalEngine(), store)
    dialog = open_with_f1(qtbot, window)
    assert keys_of(dialog, "Chat", "New chat") == QKeySequence(QKeySequence.StandardKey.New).toString(
        QKeySequence.SequenceFormat.NativeText
    )
    assert keys_of(dialog, "Chat", "Compare efforts") == native("Ctrl+Shift+E")
    assert keys_of(dialog, "Chat", "Send") == f"{native('Ctrl+Return')}, {native('Ctrl+Enter')}"
    assert keys_of(dialog, "Chat", "Medium effort") == native("Ctrl+2")
    assert keys_of(dialog, "View", "Search chats") == native("Ctrl+K")
    assert keys_of(dialog, "Chats", "Rename the selected chat") == native("F2")
    assert keys_of(dialog, MESSAGE_BOX, "New line") == "Shift+Enter"
    # Every action of the window with a key is there, under its text without the mnemonic.
    listed = {(what, keys) for _group, what, keys in dialog.rows()}
    for action in window.actions():
        if action.shortcuts():
            keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())
            assert (without_mnemonic(action.text()), keys) in listed


def test_an_action_added_later_and_the_send_key_setting_show_up_at_the_next_opening(
    qtbot: Any, make_window: Any
) -> None:
    window = make_window(LocalEngine())
    first = open_with_f1(qtbot, window)
    assert keys_of(first, MESSAGE_BOX, "Send the message (or the comparison)") == "Enter"
    zoom = QAction("&Zoom in", window)
    zoom.setShortcut(QKeySequence("Ctrl+="))
    window.addAction(zoom)
    window.composer.sampling.ctrl_enter_action.setChecked(True)
    second = open_with_f1(qtbot, window)
    assert keys_of(second, OTHER, "Zoom in") == native("Ctrl+=")
    assert keys_of(second, MESSAGE_BOX, "Send the message (or the comparison)") == "Ctrl+Enter"
    assert keys_of(second, MESSAGE_BOX, "New line") == "Enter"
    qtbot.waitUntil(lambda: not first.isVisible())  # one list at a time: the new one replaced it
    assert ("Window", "Zoom in", native("Ctrl+=")) not in first.rows()


def test_each_action_is_listed_once(make_window: Any, store: ChatStore) -> None:
    window = make_window(LocalEngine(), store)
    rows = window.help.show_shortcuts().rows()
    commands = [(group, what) for group, what, _keys in rows]
    assert len(commands) == len(set(commands))
    assert not any(group == OTHER for group, _what in commands)  # every window action is in a menu
