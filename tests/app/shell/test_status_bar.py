"""The status bar's message elides with its whole text in a tooltip at 800 px, instead of being cut mid-word by
the model, device, memory and context labels at its right; QStatusBar's message API is unchanged."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel

from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.app.shell.status_bar import StatusBar
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, scripted_engine
from tests.app.label_fit import clipped_labels

LONG = "Could not open the chat: the history file /home/someone/.local/share/gpt-oss-desktop/history.sqlite3 is locked"


def test_a_long_message_elides_at_800_px_and_shows_whole_when_wide(run: Any, make_window: Any, qtbot: Any) -> None:
    backend, _ = scripted_engine(harmony_reply("t", "a"))
    window: MainWindow = make_window(backend)
    run(load(window))
    bar = window.statusBar()
    assert isinstance(bar, StatusBar)
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.width() == 800)
    bar.showMessage(LONG)
    label = bar.message
    qtbot.waitUntil(lambda: label.text().endswith("…"))
    assert bar.currentMessage() == LONG and label.toolTip() == LONG
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()
    assert LONG.startswith(label.text()[:-1].rstrip())
    assert not clipped_labels(bar)
    # The permanent labels keep their room, to the right of the message.
    model_label = window.status.model_label
    assert model_label.text() and model_label.x() >= label.x() + label.width()

    window.resize(2000, 800)
    qtbot.waitUntil(lambda: label.text() == LONG)
    assert label.toolTip() == ""
    bar.clearMessage()
    assert label.text() == "" and bar.currentMessage() == ""


def test_a_timed_message_goes_away_and_widgets_inserted_at_0_go_right_of_it(qtbot: Any) -> None:
    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.resize(600, 30)
    bar.show()
    indicator = QLabel("Preparing the CPU kernels", bar)
    assert bar.insertPermanentWidget(0, indicator) == 0
    qtbot.waitUntil(indicator.isVisible)
    assert indicator.x() >= bar.message.x() + bar.message.width()
    bar.showMessage("Saved", 50)
    assert bar.message.text() == "Saved"
    qtbot.waitUntil(lambda: bar.message.text() == "")
