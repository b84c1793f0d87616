"""MarkdownView with real widgets (pytest-qt, offscreen): streaming, throttling, copy links, palette."""

from __future__ import annotations

import sys
import threading
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication, QPalette
from pytestqt.qtbot import QtBot

from gpt_oss_desktop.app.chat.rendering import background, markdown_view, render_markdown
from gpt_oss_desktop.app.chat.rendering.incremental import IncrementalMarkdown
from gpt_oss_desktop.app.chat.rendering.markdown_view import MarkdownView
from tests.app.chat.rendering.corpus import FIXED, tokenize


def _view(qtbot: QtBot) -> MarkdownView:
    view = MarkdownView()
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    return view


def test_set_text_renders_at_once(qtbot: QtBot) -> None:
    view = _view(qtbot)
    view.set_text(FIXED)
    assert view.text() == FIXED
    assert not view.pending
    plain = view.toPlainText()
    assert "Plan" in plain and "def add(a: int, b: int) -> int:" in plain
    assert "<b>raw HTML</b>" in plain  # escaped source shows as text
    assert len(view.code_blocks()) == 2
    assert not view.openLinks()


def test_streaming_is_coalesced_and_ends_equal_to_full_render(qtbot: QtBot) -> None:
    view = _view(qtbot)
    pieces = tokenize(FIXED, seed=1)
    for piece in pieces:
        view.append_text(piece)
    # Nothing rendered synchronously: all deltas wait for one timer tick.
    assert view.render_count == 0 and view.pending
    qtbot.waitUntil(lambda: view.render_count >= 1 and not view.pending, timeout=2000)
    assert view.render_count == 1
    assert view.text() == FIXED

    reference = MarkdownView()
    qtbot.addWidget(reference)
    reference.setHtml(render_markdown(FIXED).html)
    assert view.toPlainText() == reference.toPlainText()


def test_text_appears_while_streaming(qtbot: QtBot) -> None:
    view = _view(qtbot)
    view.append_text("Hello **wor")
    qtbot.waitUntil(lambda: "Hello" in view.toPlainText(), timeout=2000)
    view.append_text("ld** and more")
    view.flush()
    assert view.toPlainText().strip() == "Hello world and more"
    assert not view.pending


def test_copy_link_copies_exact_code(qtbot: QtBot) -> None:
    view = _view(qtbot)
    view.set_text(FIXED)
    clipboard = QGuiApplication.clipboard()
    with qtbot.waitSignal(view.code_copied, timeout=1000) as blocker:
        view.anchorClicked.emit(QUrl("copy:1"))
    assert blocker.args == [1]
    assert clipboard.text() == "plain block"
    with qtbot.waitSignal(view.code_copied, timeout=1000):
        view.anchorClicked.emit(QUrl("copy:0"))
    assert clipboard.text() == 'def add(a: int, b: int) -> int:\n    """Add."""\n    return a + b'


def test_copy_link_in_document_is_clickable_anchor(qtbot: QtBot) -> None:
    view = _view(qtbot)
    view.set_text("```sh\necho hi\n```\n")
    document = view.document()
    anchors = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            if fmt.isAnchor():
                anchors.append((it.fragment().text(), fmt.anchorHref()))
            it += 1
        block = block.next()
    assert anchors == [("Copy", "copy:0")]


def test_bad_copy_index_and_foreign_links_are_ignored(qtbot: QtBot) -> None:
    view = _view(qtbot)
    view.set_text("no code")
    with qtbot.assertNotEmitted(view.code_copied):
        view.anchorClicked.emit(QUrl("copy:3"))
        view.anchorClicked.emit(QUrl("file:///etc/passwd"))
    assert view.text() == "no code"


def test_dark_palette_switches_code_style(qtbot: QtBot) -> None:
    view = _view(qtbot)
    view.set_text("```py\nx = 1\n```")
    assert "#272822" not in view.toHtml().lower()
    palette = view.palette()
    palette.setColor(QPalette.ColorRole.Base, palette.color(QPalette.ColorRole.Base).darker(900))
    view.setPalette(palette)
    qtbot.waitUntil(lambda: "#272822" in view.toHtml().lower(), timeout=2000)
    assert view.code_blocks() == ["x = 1"]


def _long_markdown(chars: int) -> str:
    block = "A paragraph with *emphasis*, `code` and a [link](https://example.org).\n\n- one\n- two\n\n"
    return block * (chars // len(block) + 1)


def test_a_long_text_renders_off_the_gui_thread_to_the_same_document(qtbot: QtBot, monkeypatch: Any) -> None:
    text = _long_markdown(markdown_view.BACKGROUND_RENDER_CHARS * 2)
    view = _view(qtbot)
    view.set_text(text)
    # Not parsed yet: the worker thread has it, the view says what is coming, and the whole text is already its text.
    assert view.pending and "Showing a long answer" in view.toPlainText()
    assert view.text() == text
    qtbot.waitUntil(lambda: not view.pending, timeout=10_000)

    monkeypatch.setattr(markdown_view, "BACKGROUND_RENDER_CHARS", len(text))
    reference = _view(qtbot)
    reference.set_text(text)  # rendered at once, on this thread
    assert not reference.pending
    assert view.toHtml() == reference.toHtml()
    assert view.hidden_chars == 0 and view.text() == text


def test_the_worker_hands_the_gil_over_often_while_it_parses(qtbot: QtBot, monkeypatch: Any) -> None:
    # The GUI thread needs the GIL for every Qt event that reaches a PySide widget: at Python's 5 ms switch interval a
    # 512 KB parse on the worker stalled the event loop for ~1 s (tests/app/history/test_history_ui.py measures that).
    seen: list[tuple[str, float]] = []
    original = IncrementalMarkdown.render

    def render(self: IncrementalMarkdown) -> Any:
        seen.append((threading.current_thread().name, sys.getswitchinterval()))
        return original(self)

    monkeypatch.setattr(IncrementalMarkdown, "render", render)
    before = sys.getswitchinterval()
    view = _view(qtbot)
    view.set_text(_long_markdown(markdown_view.BACKGROUND_RENDER_CHARS * 2))
    qtbot.waitUntil(lambda: not view.pending, timeout=10_000)
    on_worker = [interval for name, interval in seen if name == "markdown-render"]
    assert on_worker and max(on_worker) <= background.WORKER_SWITCH_INTERVAL_S < before
    assert sys.getswitchinterval() == before  # restored once the parse is done


def test_a_newer_text_wins_over_a_long_one_still_rendering(qtbot: QtBot) -> None:
    view = _view(qtbot)
    view.set_text(_long_markdown(markdown_view.BACKGROUND_RENDER_CHARS * 4))
    view.set_text("Short **answer**")
    assert not view.pending and view.toPlainText().strip() == "Short answer"
    # The worker runs requests in order: once another view's long text is shown, the superseded one is done too.
    other = _view(qtbot)
    other.set_text(_long_markdown(markdown_view.BACKGROUND_RENDER_CHARS * 2))
    qtbot.waitUntil(lambda: not other.pending, timeout=10_000)
    assert view.toPlainText().strip() == "Short answer" and view.text() == "Short **answer**"


def test_text_past_the_display_limit_is_kept_and_the_view_says_so(qtbot: QtBot, monkeypatch: Any) -> None:
    monkeypatch.setattr(markdown_view, "DISPLAY_LIMIT_CHARS", 4_000)
    monkeypatch.setattr(markdown_view, "BACKGROUND_RENDER_CHARS", 1_000)
    text = "First line.\n\n" + _long_markdown(20_000) + "The very end."
    view = _view(qtbot)
    view.set_text(text)
    qtbot.waitUntil(lambda: not view.pending, timeout=10_000)
    shown = view.toPlainText()
    assert shown.startswith("First line.") and "The very end." not in shown
    assert view.text() == text  # Copy and export read the whole text
    assert 0 < view.hidden_chars <= len(text) - 2_000
    assert f"of this {len(text) / 1000:.0f} KB answer are not shown here" in shown
    # More text (a stream that goes on) keeps the whole text and the same limit.
    view.append_text(" More.")
    qtbot.waitUntil(lambda: not view.pending, timeout=10_000)
    assert view.text() == text + " More." and view.hidden_chars > 0
