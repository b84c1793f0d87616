"""The sidebar's look and order: date groups, pinned chats, elided titles, search snippets, empty states."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QMainWindow, QSplitter, QWidget

from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.history.sidebar import EMPTY_TITLE, NO_MATCH_TEXT, HistorySidebar, comparison_icon
from gpt_oss_desktop.app.history.sidebar_items import (
    MARK_END,
    MARK_START,
    SNIPPET_ROLE,
    snippet_html,
    snippet_segments,
)

from .conftest import FakeClock


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3", clock=clock) as opened:
        yield opened


def make_bar(qtbot: Any, store: ChatStore, width: int = 800, height: int = 600) -> tuple[QMainWindow, HistorySidebar]:
    """The sidebar in a window of the given size, beside a pane, as the app lays it out."""
    window = QMainWindow()
    splitter = QSplitter(window)
    bar = HistorySidebar(store, splitter, tz=UTC)
    splitter.addWidget(bar)
    splitter.addWidget(QWidget(splitter))
    splitter.setSizes([240, width - 240])
    window.setCentralWidget(splitter)
    window.resize(width, height)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window, bar


def save(widget: QWidget, name: str) -> None:
    """PNGs for a person to look at, when GPTOSS_SIDEBAR_PNG names a folder."""
    folder = os.environ.get("GPTOSS_SIDEBAR_PNG")
    if folder:
        widget.grab().save(str(Path(folder) / f"{name}.png"))


def test_chats_are_grouped_by_day_with_pinned_on_top(qtbot: Any, store: ChatStore, clock: FakeClock) -> None:
    old = store.create_chat("Trip planning for the Alps")
    clock.advance(timedelta(days=40))
    week = store.create_chat("Sourdough starter")
    clock.advance(timedelta(days=4))
    yesterday = store.create_chat("Tax questions")
    clock.advance(timedelta(days=1))
    today = store.create_chat("Capybara facts")
    twin = store.create_chat("Capybara facts")  # same title: told apart by the time in the tooltip
    store.pin_chat(week.id, True)
    _, bar = make_bar(qtbot, store)
    assert bar.groups() == [
        ("Pinned", [week.id]),
        ("Today", [twin.id, today.id]),
        ("Yesterday", [yesterday.id]),
        ("August 2025", [old.id]),
    ]
    tip = bar.item_for(today.id).toolTip()
    assert tip.startswith("Capybara facts<br>Last message today at ")
    assert tip != bar.item_for(yesterday.id).toolTip()
    # Headers cannot be chosen: not selectable, not enabled.
    header = bar.list.item(0)
    assert header.text() == "Pinned" and not header.flags()
    save(bar.window(), "sidebar-groups")


def test_pin_from_the_menu_and_rename_keep_their_places(qtbot: Any, store: ChatStore, clock: FakeClock) -> None:
    a = store.create_chat("a")
    b = store.create_chat("b")
    store.add_message(b.id, "user", "hello")
    c = store.create_chat("c")
    _, bar = make_bar(qtbot, store)
    assert bar.chat_ids() == [c.id, b.id, a.id]
    assert bar.rename_chat(a.id, "a, renamed")
    assert bar.chat_ids() == [c.id, b.id, a.id]  # a rename is not activity
    menu = bar.chat_menu(bar.item_for(a.id))
    pin = next(action for action in menu.actions() if action.text() == "Pin")
    pin.trigger()
    assert bar.groups()[0] == ("Pinned", [a.id])
    assert store.get_chat(a.id).pinned
    unpin = next(action for action in bar.chat_menu(bar.item_for(a.id)).actions() if action.text() == "Unpin")
    unpin.trigger()
    assert bar.chat_ids() == [c.id, b.id, a.id] and "Pinned" not in bar.headers()


def test_a_long_title_elides_without_a_horizontal_scrollbar(qtbot: Any, store: ChatStore) -> None:
    title = "A very long question about " + "capybaras and their habits " * 11
    assert len(title) >= 300
    chat = store.create_chat(title)
    window, bar = make_bar(qtbot, store)
    item = bar.item_for(chat.id)
    assert item.text() == " ".join(title.split())  # the full title stays the row's text (rename, export)
    scroll = bar.list.horizontalScrollBar()
    assert not scroll.isVisible() and scroll.maximum() == 0
    assert bar.list.visualItemRect(item).width() <= bar.list.viewport().width()
    assert " ".join(title.split()) in item.toolTip()
    save(window, "sidebar-long-title")


def test_search_highlights_the_snippet_and_says_when_nothing_matches(qtbot: Any, store: ChatStore) -> None:
    chat = store.create_chat("Rodents")
    store.add_message(chat.id, "user", "Tell me about <b>capybaras</b> & their swimming, please.")
    store.create_chat("Bread")
    window, bar = make_bar(qtbot, store)
    found: list[str] = []
    bar.search_finished.connect(found.append)
    bar.search.setText("capybara")
    qtbot.waitUntil(lambda: found == ["capybara"], timeout=20_000)
    assert bar.chat_ids() == [chat.id] and bar.headers() == ["Today"]
    tip = bar.item_for(chat.id).toolTip()
    assert "&lt;b&gt;<b>capybara</b>s&lt;/b&gt; &amp; their" in tip  # escaped text, our own bold
    save(window, "sidebar-search")
    bar.search.setText("zebra <i>")
    qtbot.waitUntil(lambda: len(found) == 2, timeout=20_000)
    assert bar.chat_ids() == [] and bar.showing_placeholder and bar.placeholder.isVisible()
    assert bar.placeholder_title.text() == "No chats match \u201czebra <i>\u201d"
    assert bar.placeholder_text.text() == NO_MATCH_TEXT
    save(window, "sidebar-no-match")
    bar.search.clear()
    assert bar.chat_ids() != [] and not bar.showing_placeholder


def test_search_hits_are_grouped_by_date_with_their_snippets(qtbot: Any, store: ChatStore, clock: FakeClock) -> None:
    old = store.create_chat("Old notes")
    store.add_message(old.id, "user", "Where do capybaras live?")
    clock.advance(timedelta(days=40))
    pinned = store.create_chat("Capybara facts")
    store.pin_chat(pinned.id, True)
    clock.advance(timedelta(days=4))
    yesterday = store.create_chat("Rodents")
    store.add_message(yesterday.id, "user", "Is a capybara a rodent?")
    store.create_chat("Bread")  # no match
    clock.advance(timedelta(days=1))
    today = store.create_chat("Zoo trip")
    store.add_message(today.id, "user", "The capybara enclosure opens at ten.")
    window, bar = make_bar(qtbot, store)
    found: list[str] = []
    bar.search_finished.connect(found.append)
    bar.search.setText("capybara")
    qtbot.waitUntil(lambda: found == ["capybara"], timeout=20_000)
    assert bar.groups() == [
        ("Pinned", [pinned.id]),
        ("Today", [today.id]),
        ("Yesterday", [yesterday.id]),
        ("August 2025", [old.id]),
    ]
    for chat_id in (today.id, yesterday.id, old.id):  # each keeps its highlighted snippet
        snippet = bar.item_for(chat_id).data(SNIPPET_ROLE)
        assert f"{MARK_START}capybara" in snippet.lower() or f"{MARK_START}Capybara" in snippet, snippet
        assert "<b>" in bar.item_for(chat_id).toolTip().lower()
    # The headers cannot be chosen; the arrow keys and clicks land on chats only.
    assert all(
        not bar.list.item(row).flags() for row in range(bar.list.count()) if bar.list.item(row).text() in bar.headers()
    )
    save(window, "sidebar-search-groups")
    bar.search.clear()
    assert "Previous 7 days" not in bar.headers() and len(bar.chat_ids()) == 5


def test_first_start_shows_an_empty_state(qtbot: Any, store: ChatStore) -> None:
    window, bar = make_bar(qtbot, store)
    assert bar.showing_placeholder and bar.placeholder_title.isVisible()
    assert bar.placeholder_title.text() == EMPTY_TITLE
    assert "appear here" in bar.placeholder_text.text()
    save(window, "sidebar-empty")
    chat = store.create_chat("First")
    bar.refresh()
    assert not bar.showing_placeholder and bar.chat_ids() == [chat.id]


def test_snippet_segments() -> None:
    marked = f"…a {MARK_START}cap{MARK_END}ybara {MARK_START}swims"
    assert snippet_segments(marked) == [("…a ", False), ("cap", True), ("ybara ", False), ("swims", True)]
    assert snippet_html(f"<{MARK_START}x{MARK_END}>") == "&lt;<b>x</b>&gt;"
    assert snippet_segments("") == []


@pytest.mark.parametrize("scale", [1.0, 2.0, 3.0])
def test_the_comparison_icon_is_crisp_at_every_scale(qapp: Any, scale: float) -> None:
    pixmap = comparison_icon(QColor("#202124")).pixmap(QSize(16, 16), scale)
    assert (pixmap.width(), pixmap.devicePixelRatio()) == (round(16 * scale), scale)
    image = pixmap.toImage()
    alphas = {image.pixelColor(x, y).alpha() for x in range(image.width()) for y in range(image.height())}
    assert alphas == {0, 255}  # every pixel fully in or out: no edge blurred by scaling a 1x picture up
