"""The Markdown of tool calls: each call under its answer, before the answer's text, with fences that the content
cannot break. Checked by parsing the export back with a CommonMark parser (markdown-it-py), not by eye."""

from __future__ import annotations

from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from gpt_oss_desktop.app.history import REASONING_LABEL, ChatStore
from gpt_oss_desktop.app.history.tool_call_export import (
    CALL_REASONING_LABEL,
    MAX_RESULT_CHARS,
    code_span,
    fenced,
    tool_call_block,
)

TRICKY = "```\nnot a fence end\n````markdown\n# heading?\n```` and `inline` ``double``\nünïcödé ✓ 🐍\n"


def code_blocks(markdown: str, info: str | None = None) -> list[Token]:
    tokens = MarkdownIt("commonmark").parse(markdown)
    return [t for t in tokens if t.type == "fence" and (info is None or t.info == info)]


def call(**fields: Any) -> dict[str, Any]:
    return {"recipient": "python", "arguments": "print(1)", "status": "ok", "output": "1\n", "seconds": 0.123} | fields


@pytest.mark.parametrize("text", [TRICKY, "", "`", "plain", "a\r\nb\rc", "````````" * 3, "ends with backticks ``"])
def test_fenced_content_comes_back_whole(text: str) -> None:
    (block,) = code_blocks("\n".join(["before", "", *fenced(text, "text"), "", "after"]))
    assert block.info == "text"
    # Line endings become \n and trailing newlines one; everything else is kept (an empty text is one empty line).
    assert block.content == text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") + "\n"


@pytest.mark.parametrize("text", ["python", "a`b", "`starts", "ends`", "``", "two\nlines"])
def test_code_span_holds_any_name(text: str) -> None:
    tokens = MarkdownIt("commonmark").parseInline(code_span(text))[0].children or []
    assert [t.type for t in tokens] == ["code_inline"]
    assert tokens[0].content == " ".join(text.split())


def test_title_line_says_tool_status_and_time() -> None:
    lines = tool_call_block(call())
    assert lines[0] == "**Tool call** · `python` · ok · 0.12 s"
    denied = tool_call_block(call(recipient="functions.get_current_time", status="denied", seconds=0.0))
    assert denied[0] == "**Tool call** · `functions.get_current_time` · denied"
    odd = tool_call_block({"recipient": "assistant<|channel|>analysis", "status": "*bold* <b>", "seconds": True})
    assert odd[0] == r"**Tool call** · `assistant<|channel|>analysis` · \*bold\* \<b\>"


def test_arguments_are_fenced_in_their_language() -> None:
    assert "```python" in tool_call_block(call())
    function = call(recipient="functions.convert_units", arguments='{"value": 3}', content_type=None)
    assert "```json" in tool_call_block(function)
    constrained = call(recipient="functions.f", arguments="{broken", content_type="<|constrain|>json")
    assert "```json" in tool_call_block(constrained)
    assert "```text" in tool_call_block(call(recipient="functions.f", arguments="{broken"))
    assert "*(no arguments)*" in tool_call_block(call(arguments=""))


def test_results_empty_missing_and_long() -> None:
    assert "*(empty result)*" in tool_call_block(call(output=""))
    assert "*(no result recorded)*" in tool_call_block({"recipient": "python", "arguments": "1"})
    long_output = "".join(f"line {i}\n" for i in range(2000))
    lines = tool_call_block(call(output=long_output))
    (block,) = code_blocks("\n".join(lines), "text")
    assert long_output.startswith(block.content) and len(block.content) <= MAX_RESULT_CHARS + 1
    assert block.content.endswith("\n") and block.content.splitlines()[-1].startswith("line ")  # cut at a line end
    assert f"of {len(long_output):,} characters; the JSON export has all of it" in "\n".join(lines)
    one_line = "x" * (MAX_RESULT_CHARS * 3)
    (block,) = code_blocks("\n".join(tool_call_block(call(output=one_line))), "text")
    assert block.content == "x" * MAX_RESULT_CHARS + "\n"


def test_per_call_reasoning_is_shown_once() -> None:
    shown = "\n".join(tool_call_block(call(reasoning="Use the tool </details> now.")))
    # Inside its own collapsed block, which a literal </details> cannot close early.
    assert shown.count("</details>") == 1 and f"<summary>{CALL_REASONING_LABEL}</summary>" in shown
    assert "Use the tool &lt;/details> now." in shown
    # Already in the answer's reasoning block: not repeated under the call.
    assert CALL_REASONING_LABEL not in "\n".join(tool_call_block(call(reasoning="Use it."), "First. Use it. Then."))


def test_markdown_export_shows_calls_between_reasoning_and_answer(store: ChatStore) -> None:
    chat = store.create_chat("Tools")
    store.add_message(chat.id, "user", "What does this print?")
    calls = [
        call(arguments="print('```')\n# ```` inside", output=TRICKY, reasoning="Run it to see."),
        call(recipient="functions.lookup", arguments='{"q": "ü"}', status="error", output="", seconds=2.5),
    ]
    store.add_message(
        chat.id, "assistant", "It prints three backticks.", analysis="Run it to see.", effort="low", tool_calls=calls
    )
    text = store.export_markdown(chat.id)
    assert text.index(REASONING_LABEL) < text.index("**Tool call** · `python` · ok · 0.12 s")
    assert text.index("`python` · ok") < text.index("`functions.lookup` · error · 2.50 s")
    assert text.index("`functions.lookup` · error") < text.index("*(empty result)*")
    assert text.index("*(empty result)*") < text.index("It prints three backticks.")
    assert CALL_REASONING_LABEL not in text  # the answer's reasoning already holds it
    blocks = code_blocks(text)
    assert [(b.info, b.content) for b in blocks] == [
        ("python", "print('```')\n# ```` inside\n"),
        ("text", TRICKY),
        ("json", '{"q": "ü"}\n'),
    ]
    # The answer after the calls is a paragraph of the document again, not swallowed by a fence.
    paragraphs = [t.content for t in MarkdownIt("commonmark").parse(text) if t.type == "inline"]
    assert "It prints three backticks." in paragraphs


def test_a_comparison_column_shows_its_own_calls(store: ChatStore) -> None:
    comparison = store.create_comparison("17 × 23?", efforts=("low", "high"))
    low, high = (m for m in comparison.messages if m.role == "assistant")
    store.update_message(low.id, text="391", complete=True, tool_calls=[call(output="391")])
    store.update_message(high.id, text="391", complete=True)
    text = store.export_markdown(comparison.id)
    assert text.count("**Tool call**") == 1
    assert text.index("### Column 1") < text.index("**Tool call**") < text.index("### Column 2")
