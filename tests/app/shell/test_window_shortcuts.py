"""The chat-app keys: Ctrl+K puts the cursor in the sidebar's search (from the message box too, even where a text box
would take Ctrl+K for itself), Ctrl+1/2/3 pick low, medium and high effort."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMainWindow, QPlainTextEdit

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.app.shell.window_keys import WindowKeysFirst
from gpt_oss_desktop.engine.harmony import ReasoningEffort

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def active(qtbot: Any, window: QMainWindow) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)


def test_ctrl_k_from_the_message_box_selects_the_search_text(qtbot: Any, make_window: Any, store: ChatStore) -> None:
    window: MainWindow = make_window(LocalEngine(), store)
    active(qtbot, window)
    assert window.sidebar is not None
    window.sidebar.search.setText("older query")
    window.composer.prompt.setFocus()
    QTest.keyClicks(window.composer.prompt, "half a message")
    QTest.keyClick(window.composer.prompt, Qt.Key.Key_K, CTRL)
    qtbot.waitUntil(window.sidebar.search.hasFocus)
    assert window.sidebar.search.selectedText() == "older query"
    assert window.composer.prompt.toPlainText() == "half a message"
    (view,) = [a.menu() for a in window.menuBar().actions() if a.text() == "&View"]
    assert window.search_action in view.actions()  # type: ignore[union-attr]


def test_ctrl_k_opens_a_sidebar_dragged_shut(qtbot: Any, make_window: Any, store: ChatStore) -> None:
    window: MainWindow = make_window(LocalEngine(), store)
    active(qtbot, window)
    window._splitter.setSizes([0, 1000])
    qtbot.waitUntil(lambda: window._splitter.sizes()[0] == 0)
    window.search_action.trigger()
    assert window._splitter.sizes()[0] > 0
    assert window.sidebar is not None
    qtbot.waitUntil(window.sidebar.search.hasFocus)


def test_ctrl_k_without_a_history_says_so(make_window: Any) -> None:
    window: MainWindow = make_window(LocalEngine())
    window.search_action.trigger()
    assert window.statusBar().currentMessage().startswith("No chat history to search")


class ClaimsCtrlK(QPlainTextEdit):
    """A text box under Qt's X11 key scheme, where Ctrl+K is "delete to the end of the line" and the box claims it
    before the window's shortcuts (the offscreen platform's scheme has no Ctrl+K)."""

    def event(self, event: QEvent) -> bool:
        ctrl_k = isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_K and event.modifiers() == CTRL
        if event.type() == QEvent.Type.ShortcutOverride and ctrl_k:
            event.accept()
            return True
        return super().event(event)


def test_window_keys_first_keeps_ctrl_k_from_a_text_box_that_claims_it(qtbot: Any) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    box = ClaimsCtrlK(window)
    window.setCentralWidget(box)
    search = QAction("Search chats", window)
    search.setShortcut(QKeySequence("Ctrl+K"))
    window.addAction(search)
    hits: list[bool] = []
    search.triggered.connect(lambda: hits.append(True))
    window.show()
    active(qtbot, window)
    box.setFocus()
    QTest.keyClick(box, Qt.Key.Key_K, CTRL)
    assert hits == []  # the box took it: what the filter is for
    WindowKeysFirst((search,), window).watch(box)
    QTest.keyClick(box, Qt.Key.Key_K, CTRL)
    qtbot.waitUntil(lambda: len(hits) == 1)
    search.setEnabled(False)  # a disabled action leaves the key to the box again
    QTest.keyClick(box, Qt.Key.Key_K, CTRL)
    assert len(hits) == 1


def test_the_windows_text_boxes_leave_ctrl_k_to_search(make_window: Any) -> None:
    window: MainWindow = make_window(LocalEngine())
    (keys_first,) = window.findChildren(WindowKeysFirst)
    assert window.search_action in keys_first.actions and window.edit_last_action in keys_first.actions
    assert window.composer.prompt in keys_first.widgets and window.compare.prompt in keys_first.widgets


def test_ctrl_1_2_3_set_the_effort_and_the_menu_follows_the_composer(qtbot: Any, make_window: Any) -> None:
    window: MainWindow = make_window(LocalEngine())
    active(qtbot, window)
    window.composer.prompt.setFocus()
    for key, effort in zip((Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3), ReasoningEffort, strict=True):
        QTest.keyClick(window.composer.prompt, key, CTRL)
        qtbot.waitUntil(lambda e=effort: window.composer.current_effort() is e)
        assert window.effort_actions[effort].isChecked()
    assert window.composer.prompt.toPlainText() == ""  # the keys typed nothing
    window.composer.set_effort(ReasoningEffort.LOW)  # the selector beside the box: the menu follows
    assert window.effort_actions[ReasoningEffort.LOW].isChecked()
    assert not window.effort_actions[ReasoningEffort.HIGH].isChecked()
