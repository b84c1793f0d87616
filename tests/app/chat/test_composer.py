"""The composer on its own (real widgets, offscreen): the send key, the growing prompt, Send turning into Stop, and
the sampling popup's labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel

from gpt_oss_desktop.app.chat.composer import Composer, PromptEdit
from gpt_oss_desktop.app.settings import CTRL_ENTER_SENDS_KEY

SHIFT = Qt.KeyboardModifier.ShiftModifier
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def composer(qtbot: Any, settings: QSettings) -> Composer:
    widget = Composer(settings)
    qtbot.addWidget(widget)
    widget.resize(700, 200)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_can_send(True)
    return widget


def sent_texts(composer: Composer) -> list[str]:
    sent: list[str] = []
    composer.send_requested.connect(lambda text, _files: sent.append(text))
    return sent


def test_enter_sends_and_shift_enter_makes_a_new_line(composer: Composer) -> None:
    sent = sent_texts(composer)
    QTest.keyClicks(composer.prompt, "first line")
    QTest.keyClick(composer.prompt, Qt.Key.Key_Return, SHIFT)
    QTest.keyClicks(composer.prompt, "second line")
    assert sent == [] and composer.prompt.toPlainText() == "first line\nsecond line"
    QTest.keyClick(composer.prompt, Qt.Key.Key_Return)
    assert sent == ["first line\nsecond line"] and composer.prompt.toPlainText() == ""
    # The keypad's Enter sends too, and Ctrl+Enter always does.
    QTest.keyClicks(composer.prompt, "again")
    QTest.keyClick(composer.prompt, Qt.Key.Key_Enter)
    QTest.keyClicks(composer.prompt, "and again")
    QTest.keyClick(composer.prompt, Qt.Key.Key_Return, CTRL)
    assert sent == ["first line\nsecond line", "again", "and again"]


def test_the_ctrl_enter_setting_makes_enter_a_new_line_and_is_remembered(
    qtbot: Any, composer: Composer, settings: QSettings
) -> None:
    sent = sent_texts(composer)
    composer.sampling.ctrl_enter_action.trigger()  # the menu's checkable action
    assert composer.prompt.ctrl_enter_sends and "Ctrl+Enter to send" in composer.prompt.placeholderText()
    QTest.keyClicks(composer.prompt, "a")
    QTest.keyClick(composer.prompt, Qt.Key.Key_Return)
    QTest.keyClicks(composer.prompt, "b")
    assert sent == [] and composer.prompt.toPlainText() == "a\nb"
    QTest.keyClick(composer.prompt, Qt.Key.Key_Return, CTRL)
    assert sent == ["a\nb"]
    settings.sync()
    again = Composer(settings)
    qtbot.addWidget(again)
    assert again.prompt.ctrl_enter_sends and again.sampling.ctrl_enter_action.isChecked()
    assert str(settings.value(CTRL_ENTER_SENDS_KEY)).lower() == "true"


def test_nothing_is_sent_while_answering_or_without_a_model(composer: Composer) -> None:
    sent = sent_texts(composer)
    composer.set_busy(True)
    QTest.keyClicks(composer.prompt, "wait")
    QTest.keyClick(composer.prompt, Qt.Key.Key_Return)
    assert sent == [] and composer.prompt.toPlainText() == "wait"  # kept, not lost
    # Stop takes Send's place while answering.
    assert composer.stop_button.isVisible() and not composer.send_button.isVisible()
    composer.set_busy(False)
    composer.set_can_send(False)
    QTest.keyClick(composer.prompt, Qt.Key.Key_Return)
    assert sent == [] and composer.send_button.isVisible() and not composer.send_button.isEnabled()


def test_the_prompt_grows_with_its_text_up_to_a_limit(qtbot: Any, composer: Composer) -> None:
    prompt = composer.prompt
    start = prompt.height()
    assert prompt.visible_lines() == PromptEdit.MIN_LINES
    prompt.setPlainText("\n".join(f"line {n}" for n in range(5)))
    qtbot.waitUntil(lambda: prompt.height() > start)
    five = prompt.height()
    assert prompt.visible_lines() == 5
    prompt.setPlainText("\n".join(f"line {n}" for n in range(40)))
    qtbot.waitUntil(lambda: prompt.visible_lines() == PromptEdit.MAX_LINES)
    capped = prompt.height()
    assert capped > five
    assert prompt.verticalScrollBar().maximum() > 0  # the rest scrolls
    prompt.clear()
    qtbot.waitUntil(lambda: prompt.height() == start)
    # A long line that wraps counts as the lines it takes.
    prompt.setPlainText("word " * 200)
    qtbot.waitUntil(lambda: prompt.visible_lines() > PromptEdit.MIN_LINES)


def test_sampling_labels_are_not_clipped(qtbot: Any, composer: Composer) -> None:
    menu = composer.sampling
    menu.popup(composer.mapToGlobal(composer.rect().center()))
    qtbot.waitUntil(menu.isVisible)
    labels = [label for label in menu.findChildren(QLabel) if label.text()]
    assert {label.text().replace("&", "") for label in labels} >= {"Temperature", "Top p", "Max tokens"}
    for label in labels:
        text = label.text().replace("&", "")
        assert label.fontMetrics().horizontalAdvance(text) <= label.contentsRect().width(), text
    menu.hide()
