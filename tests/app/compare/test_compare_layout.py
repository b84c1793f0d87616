"""The compare view's layout: idle columns before anything is asked, margins, headers that elide instead of being
clipped, and three columns that turn into tabs when the window is too narrow for them (and back)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

from gpt_oss_desktop.app.compare.compare_view import MAX_WIDTH, MIN_COLUMN_WIDTH, CompareView
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, next_emission, scripted_engine
from tests.app.label_fit import clipped_buttons, clipped_labels

LOW = harmony_reply("91 = 7 x 13.", "No. 91 = 7 × 13, so it is not prime.")
MEDIUM = harmony_reply("Check small primes: 91 / 7 = 13.", "**No**: 91 = 7 × 13.")
HIGH = harmony_reply("Try 2, 3, 5: no. Try 7: 7 x 13 = 91. " * 3, "No, it is not prime: 91 = 7 × 13.")
EDGE = 8  # nothing may come closer than this to the window's right edge


def visible_texts(root: QWidget) -> list[str]:
    labels = [w.text() for w in root.findChildren(QLabel) if w.isVisible()]
    return labels + [w.text() for w in root.findChildren(QAbstractButton) if w.isVisible()]


def right_edge(widget: QWidget, window: QWidget) -> int:
    return widget.mapTo(window, QPoint(widget.width(), 0)).x()


def compare_window(make_window: Any, run: Any) -> MainWindow:
    backend, _ = scripted_engine(LOW, MEDIUM, HIGH)
    window: MainWindow = make_window(backend)
    window.composer.sampling.temperature.setValue(0.0)  # the double's one-hot logits need no sampling
    run(load(window))
    window.set_compare_mode(True)
    return window


def run_comparison(window: MainWindow, run: Any) -> None:
    view = window.compare
    run(next_emission(view.finished, lambda: view.start("Is 91 prime?")))


def test_idle_columns_say_what_each_effort_does_and_nothing_about_thinking(
    run: Any, make_window: Any, qtbot: Any
) -> None:
    window = compare_window(make_window, run)
    window.resize(1280, 800)
    view = window.compare
    qtbot.waitUntil(lambda: all(c.isVisible() for c in view.columns))
    for column in view.columns:
        assert column.idle and column.idle_note.isVisible() and not column.reasoning.isVisible()
        assert column.effort.value in column.idle_note.text().lower()
    texts = visible_texts(view)
    assert not [t for t in texts if "think" in t.lower()], texts  # no "Thinking…" before anything is asked
    assert "side by side" in view.summary.text()

    run_comparison(window, run)
    assert not any(c.idle for c in view.columns)
    assert all(c.reasoning.isVisible() and c.reasoning.header.text().startswith("Thought for ") for c in view.columns)
    view.clear()
    assert all(c.idle and not c.reasoning.isVisible() for c in view.columns)


def test_columns_become_tabs_when_narrow_and_back_when_wide(run: Any, make_window: Any, qtbot: Any) -> None:
    window = compare_window(make_window, run)
    view: CompareView = window.compare
    run_comparison(window, run)
    answers = [c.answer_text for c in view.columns]

    window.resize(1280, 800)
    qtbot.waitUntil(lambda: not view.tabbed and all(c.isVisible() for c in view.columns))
    xs = [c.mapTo(window, QPoint(0, 0)).x() for c in view.columns]
    assert xs == sorted(xs) and len(set(xs)) == 3  # side by side, low to high
    assert min(c.width() for c in view.columns) >= MIN_COLUMN_WIDTH

    window.resize(800, 600)
    qtbot.waitUntil(lambda: view.tabbed and view.tabs.isVisible())
    assert [view.tabs.tabText(i) for i in range(view.tabs.count())] == ["Low", "Medium", "High"]
    assert [view.tabs.widget(i) for i in range(3)] == view.columns
    view.tabs.setCurrentIndex(2)
    qtbot.waitUntil(lambda: view.columns[2].isVisible() and not view.columns[0].isVisible())

    window.resize(1280, 800)
    qtbot.waitUntil(lambda: not view.tabbed and all(c.isVisible() for c in view.columns))
    assert [c.answer_text for c in view.columns] == answers  # the same columns, moved, not redrawn


def test_margins_and_no_clipped_text_at_800x600_and_wider(run: Any, make_window: Any, qtbot: Any) -> None:
    window = compare_window(make_window, run)
    view = window.compare
    for size in ((800, 600), (1000, 785), (1280, 800)):
        window.resize(*size)
        qtbot.waitUntil(lambda: view.tabbed == (view.width() < 3 * MIN_COLUMN_WIDTH + 40))
        # The Compare button and the last column keep a margin from the window's right edge.
        qtbot.waitUntil(lambda: right_edge(view.run_button, window) <= window.width() - EDGE)
        shown = view.tabs if view.tabbed else view.columns[-1]
        assert right_edge(shown, window) <= window.width() - EDGE
        qtbot.waitUntil(lambda: not clipped_labels(view))
    run_comparison(window, run)
    for size in ((800, 600), (1000, 785), (1280, 800), (900, 700)):
        window.resize(*size)
        qtbot.waitUntil(lambda: not clipped_labels(view) and not clipped_buttons(view))
        headers = [c.reasoning.header for c in view.columns if c.reasoning.isVisible()]
        assert headers and all(h.text().startswith("Thought for ") for h in headers)


def test_the_prompt_names_the_send_key_of_the_setting(run: Any, make_window: Any, qtbot: Any) -> None:
    window = compare_window(make_window, run)
    view = window.compare
    # The default: Enter compares, Shift+Enter adds a line (as in the chat's composer).
    assert "(Enter to compare)" in view.prompt.placeholderText() and "Ctrl" not in view.prompt.placeholderText()
    assert not view.prompt.ctrl_enter_sends and view.run_button.toolTip().endswith("(Enter)")
    window.composer.sampling.ctrl_enter_action.trigger()  # the setting, in the composer's Sampling menu
    assert view.prompt.ctrl_enter_sends and "(Ctrl+Enter to compare)" in view.prompt.placeholderText()
    assert view.run_button.toolTip().endswith("(Ctrl+Enter)")
    window.composer.sampling.ctrl_enter_action.trigger()
    assert "(Enter to compare)" in view.prompt.placeholderText()


def test_a_wide_window_centres_the_view_at_its_widest(run: Any, make_window: Any, qtbot: Any) -> None:
    window = compare_window(make_window, run)
    view = window.compare
    run_comparison(window, run)
    window.resize(2560, 1440)
    qtbot.waitUntil(lambda: window.width() == 2560 and view.content.width() == MAX_WIDTH)
    assert view.width() > MAX_WIDTH + 100  # room to spare, shared by both sides
    middle = view.mapTo(window, view.rect().center()).x()
    qtbot.waitUntil(lambda: abs(view.content.mapTo(window, view.content.rect().center()).x() - middle) <= 2)
    assert not view.tabbed and all(MIN_COLUMN_WIDTH <= c.width() <= MAX_WIDTH // 3 for c in view.columns)
    assert view.prompt.width() < MAX_WIDTH and not clipped_labels(view) and not clipped_buttons(view)
