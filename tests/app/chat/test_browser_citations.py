"""The browser's citations in an answer: links to the pages they cite, known from the calls' own results, in the
Markdown renderer and in a real answer card (offscreen)."""

from __future__ import annotations

from typing import Any

from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.rendering.incremental import IncrementalMarkdown
from gpt_oss_desktop.app.chat.rendering.markdown import render_markdown
from gpt_oss_desktop.app.chat.tool_calls import CallState, ToolCallRecord
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.tools.base import ToolStatus

PAGE = "https://example.org/a?x=1&y=2"
TEXT = "It rains **often**【3†L10-L12】 and `code【3†L1】` and 【4†L1】."


def test_citations_of_known_pages_become_links_and_others_stay() -> None:
    html = render_markdown(TEXT, citations={3: PAGE}).html
    link = '<a href="https://example.org/a?x=1&amp;y=2" title="https://example.org/a?x=1&amp;y=2">[example.org]</a>'
    assert f"<strong>often</strong> {link} and" in html
    assert "<code>code【3†L1】</code>" in html  # code is shown as written
    assert "【4†L1】" in html  # a cursor no result showed: as the model wrote it
    assert "【3†L10-L12】" not in html
    assert render_markdown(TEXT).html.count("【") == 3  # without citations, nothing changes
    # streamed in pieces, the result is the same as rendering the whole text
    streamed = IncrementalMarkdown(citations={3: PAGE})
    for piece in (TEXT[:20], TEXT[20:31], TEXT[31:]):
        streamed.append(piece)
    assert streamed.render().html == render_markdown(TEXT, citations={3: PAGE}).html


def test_an_answer_card_links_citations_once_the_browser_showed_the_page(qtbot: Any) -> None:
    message = AssistantMessage(ReasoningEffort.LOW)
    qtbot.addWidget(message)
    message.append_answer("Rain is common【1†L2】.")
    qtbot.waitUntil(lambda: "Rain is common【1†L2】." in message.answer.toPlainText())
    call = ToolCallRecord("browser.open", '{"id": "example.org/a"}', channel="analysis", state=CallState.DONE)
    call.status, call.output = ToolStatus.OK, f"[1] A page ({PAGE})\n**viewing lines [0 - 2] of 2**\n\nL0: x"
    message.show_tool_call(call)
    assert 'href="https://example.org/a?x=1&amp;y=2"' in message.answer.toHtml()
    assert "【1†L2】" not in message.answer.toPlainText()
    assert "[example.org]" in message.answer.toPlainText()
    # a search result card (no address) links nothing
    other = AssistantMessage(ReasoningEffort.LOW)
    qtbot.addWidget(other)
    search = ToolCallRecord("browser.search", '{"query": "q"}', channel="analysis", state=CallState.DONE)
    search.status, search.output = ToolStatus.OK, "[0] q\n**viewing lines [0 - 0] of 0**\n\nL0: # Search Results"
    other.show_tool_call(search)
    other.append_answer("See【0†L0】.")
    qtbot.waitUntil(lambda: "See【0†L0】." in other.answer.toPlainText())


def test_a_waiting_call_asks_its_own_question_and_a_long_address_gives_way(qtbot: Any) -> None:
    from gpt_oss_desktop.app.chat.tool_call_card import ToolCallCard

    card = ToolCallCard("browser.open")
    qtbot.addWidget(card)
    address = "https://example.org/" + "segment/" * 30
    call = ToolCallRecord(
        "browser.open", "{}", channel="analysis", state=CallState.WAITING, question=f"Open {address}?"
    )
    card.show_call(call)
    shown = card.question.text()
    assert len(shown) < 110 and shown.startswith("Open https://example.org/") and "…" in shown
    assert card.question.toolTip() == f"Open {address}?" and card.always_button.text() == "Always browse"
    card.show_call(ToolCallRecord("python", "print(1)", state=CallState.WAITING))
    assert card.question.text() == "Run this call?" and card.question.toolTip() == ""


def test_browser_cards_say_what_the_call_does() -> None:
    from gpt_oss_desktop.app.chat.tool_calls import call_title

    assert call_title("browser.search", '{"query": "perseid  peak"}') == "Web search · “perseid peak”"
    assert call_title("browser.open", '{"id": "https://example.org/a"}') == "Open page · example.org/a"
    assert call_title("browser.open", '{"id": 3, "cursor": 1}') == "Open link 3"
    assert call_title("browser.open", '{"id": "2"}') == "Open link 2"
    assert call_title("browser.open", '{"cursor": 1, "loc": 40}') == "Scroll a page"
    assert call_title("browser.find", '{"pattern": "' + "x" * 100 + '"}').endswith("x…”")
    assert call_title("browser.search", '{"query": "unfinish') == "Tool call · browser.search"  # still being written
    assert call_title("functions.get_current_time", "{}") == "Tool call · get_current_time"
