"""The stats line under an answer wraps between figures, never inside one ("153.1 tok/" then "s"), as Qt lays it
out: at every width down to one figure a line, and in a real window at 800×600."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QFont, QTextLayout, QTextOption

from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.stats import AnswerStats, readable, stats_figures, stats_line
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.events import FinishReason
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, next_emission, scripted_engine

STATS = AnswerStats(1843, 96, 0.21, 12.34, 3.5, 153.1, FinishReason.STOP)


def laid_out_lines(text: str, font: QFont, width: int) -> list[str]:
    """The lines Qt's word wrap makes of ``text`` in ``width`` pixels (as a word-wrapping QLabel does)."""
    layout = QTextLayout(text, font)
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WordWrap)
    layout.setTextOption(option)
    layout.beginLayout()
    lines = []
    while (line := layout.createLine()).isValid():
        line.setLineWidth(width)
        lines.append(text[line.textStart() : line.textStart() + line.textLength()])
    layout.endLayout()
    return lines


def split_figures(lines: list[str], figures: list[str]) -> list[str]:
    """The figures not shown whole on one line."""
    shown = [readable(line) for line in lines]
    return [figure for figure in figures if not any(figure in line for line in shown)]


def test_every_width_keeps_each_figure_on_one_line(qapp: Any) -> None:
    figures = stats_figures(STATS)
    line = stats_line(STATS)
    font = QFont()
    widths = range(40, 900, 7)
    layouts = {width: laid_out_lines(line, font, width) for width in widths}
    assert {width: split_figures(lines, figures) for width, lines in layouts.items()} == {w: [] for w in widths}
    assert len(layouts[40]) == len(figures) and len(layouts[widths[-1]]) == 1  # it did wrap, down to one a line
    # The same text with plain spaces would break inside figures: the test can see the failure it guards against.
    plain = readable(line)
    assert any(split_figures(laid_out_lines(plain, font, width), figures) for width in widths)


def test_stats_under_an_answer_at_800x600(run: Any, make_window: Any, qtbot: Any) -> None:
    backend, _ = scripted_engine(harmony_reply("Some reasoning. " * 8, "An answer of a few words. " * 6))
    window: MainWindow = make_window(backend)
    window.composer.sampling.temperature.setValue(0.0)
    run(load(window))
    run(next_emission(window.generation_finished, lambda: window.send_message("hello")))
    message = next(w for w in window.chat.messages() if isinstance(w, AssistantMessage))
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.size().width() == 800 and message.stats.isVisible())
    label = message.stats
    figures = readable(label.text()).split(" · ")
    assert any(f.endswith("tok/s") for f in figures)
    # Narrowed to a third of the card too (a sidebar dragged wide), where it must wrap.
    for width in (label.contentsRect().width(), label.contentsRect().width() // 3):
        lines = laid_out_lines(label.text(), label.font(), width)
        assert not split_figures(lines, figures), lines
    assert len(laid_out_lines(label.text(), label.font(), label.contentsRect().width() // 3)) > 1
