"""The reasoning panel's header: elided with a tooltip when narrow (never cut mid-word), whole when there is room;
no claim of thinking when no reasoning arrived."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QAbstractButton

from gpt_oss_desktop.app.chat.reasoning_panel import ReasoningPanel
from tests.app.label_fit import clipped_buttons

LONG = "Thought for 2 min 05 s · 12,345 tokens"


def test_header_elides_with_a_tooltip_when_narrow_and_shows_all_when_wide(qtbot: Any) -> None:
    panel = ReasoningPanel()
    qtbot.addWidget(panel)
    panel.append("some reasoning")
    panel.show()
    panel.answer_started(125.0, 12345)
    header = panel.header
    assert header.text() == LONG

    panel.resize(140, 80)
    qtbot.waitUntil(lambda: QAbstractButton.text(header).endswith("…"))
    assert header.toolTip() == LONG and header.text() == LONG  # text() keeps the whole header
    assert not clipped_buttons(panel)

    panel.resize(600, 80)
    qtbot.waitUntil(lambda: QAbstractButton.text(header) == LONG)
    assert header.toolTip() == "" and not clipped_buttons(panel)


def test_an_open_panel_shows_no_empty_body_until_reasoning_arrives(qtbot: Any) -> None:
    panel = ReasoningPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert panel.expanded and panel.header.isVisible()
    assert not panel.body.isVisible()  # open, but nothing to show yet: only the header
    panel.append("")
    assert not panel.body.isVisible()
    panel.append("First thought.")
    qtbot.waitUntil(panel.body.isVisible)
    panel.set_expanded(False)
    assert not panel.body.isVisible()
    panel.set_expanded(True)
    assert panel.body.isVisible()

    closed = ReasoningPanel()  # closed by the user before any reasoning came: it stays closed
    qtbot.addWidget(closed)
    closed.show()
    closed.header.click()
    closed.append("A thought.")
    assert not closed.expanded and not closed.body.isVisible()


def test_no_reasoning_means_no_thinking_header(qtbot: Any) -> None:
    panel = ReasoningPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert panel.header.text() == "Thinking…"  # waiting for the first token
    panel.answer_started(1.5, 0)  # the answer began without any reasoning
    assert not panel.isVisible()
    assert "0 tokens" not in panel.header.text()
