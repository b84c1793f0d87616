"""Markdown and JSON export, and JSON re-import."""

from __future__ import annotations

import json

import pytest

from gpt_oss_desktop.app.history import REASONING_LABEL, Attachment, ChatStore, ImportFormatError

from .test_store import STATS


@pytest.fixture
def chat_id(store: ChatStore) -> int:
    chat = store.create_chat(
        "Primes",
        system_instructions="You are terse.",
        model="gpt-oss-20b",
        sampling={"temperature": 1.0, "top_p": 1.0},
    )
    store.add_message(chat.id, "user", "Is 91 prime?")
    store.add_message(
        chat.id, "assistant", "No: 91 = 7 × 13.", analysis="Try 7. </details> 7*13=91.", effort="high", stats=STATS
    )
    store.add_message(chat.id, "user", "And 97?")
    partial = store.add_message(chat.id, "assistant", "Yes", analysis="Check up to 9", effort="low", complete=False)
    assert not partial.complete
    return chat.id


def test_markdown_export(store: ChatStore, chat_id: int) -> None:
    text = store.export_markdown(chat_id)
    assert text.startswith("# Primes\n")
    assert "model `gpt-oss-20b`" in text
    assert "You are terse." in text
    assert text.count(f"<summary>{REASONING_LABEL}</summary>") == 2
    assert REASONING_LABEL == "Reasoning (not sent to model)"
    # Reasoning sits inside the block; a literal </details> in it cannot end the block early.
    assert text.count("</details>") == 2
    assert "Try 7. &lt;/details> 7*13=91." in text
    assert "`high effort`" in text and "`low effort`" in text
    assert "reasoning 1,843 tok · answer 212 tok · first token 0.41 s · thought 12.3 s" in text
    assert "38.5 tok/s · finish: stop" in text
    assert "interrupted" in text
    assert text.index("Is 91 prime?") < text.index("No: 91 = 7 × 13.") < text.index("And 97?")


def test_json_export_parses_and_round_trips(store: ChatStore, chat_id: int) -> None:
    exported = store.export_json(chat_id)
    document = json.loads(exported)
    assert document["format"] == "gpt-oss-desktop/chat"
    assert document["title"] == "Primes"
    assert [m["role"] for m in document["messages"]] == ["user", "assistant", "user", "assistant"]
    assert document["messages"][1]["stats"] == STATS
    assert document["messages"][1]["analysis"].startswith("Try 7.")

    imported = store.import_json(exported)
    original = store.get_chat(chat_id)
    assert imported.id != chat_id
    assert imported.without_ids() == original.without_ids()
    assert store.export_json(imported.id) == exported


def test_comparison_markdown(store: ChatStore) -> None:
    comparison = store.create_comparison("Is 91 prime?")
    for message, tokens in zip(comparison.messages[1:], (10, 200, 900), strict=True):
        stats = {"reasoning_tokens": tokens, "final_tokens": 5, "thinking_s": tokens / 100, "answer_s": 0.5}
        store.update_message(message.id, text="No", analysis=f"{tokens} tokens of thought", stats=stats, complete=True)
    text = store.export_markdown(comparison.id)
    assert "Effort comparison" in text
    assert "| low | 10 | 5 |" in text and "| high | 900 | 5 |" in text
    for effort in ("low", "medium", "high"):
        assert f"`{effort} effort`" in text
    assert text.count(REASONING_LABEL) == 3
    reimported = store.import_json(store.export_json(comparison.id))
    assert reimported.kind == "comparison"
    assert reimported.without_ids() == store.get_chat(comparison.id).without_ids()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a JSON document"),
        ("[]", "not a gpt-oss desktop chat export"),
        ('{"format": "gpt-oss-desktop/chat", "format_version": 99}', "newer"),
        ('{"format": "gpt-oss-desktop/chat", "format_version": 0}', "version 0 does not exist"),
        ('{"format": "gpt-oss-desktop/chat", "format_version": "2"}', "'format_version' has the wrong type"),
        ('{"format": "gpt-oss-desktop/chat", "format_version": 1}', "missing field"),
        ('{"format": "gpt-oss-desktop/chat", "format_version": 2}', "missing field"),
    ],
)
def test_import_rejects_bad_documents(store: ChatStore, text: str, message: str) -> None:
    with pytest.raises(ImportFormatError, match=message):
        store.import_json(text)
    assert store.list_chats() == []


def test_import_rejects_bad_message_without_partial_chat(store: ChatStore, chat_id: int) -> None:
    document = json.loads(store.export_json(chat_id))
    document["messages"][1]["effort"] = "extreme"
    with pytest.raises(ImportFormatError, match="effort"):
        store.import_json(json.dumps(document))
    document["messages"][1]["effort"] = "high"
    document["messages"][1]["position"] = 0
    document["messages"][1]["column"] = 0
    with pytest.raises(ImportFormatError, match="same position"):
        store.import_json(json.dumps(document))
    assert [s.id for s in store.list_chats()] == [chat_id]


def test_comparison_markdown_has_first_answer_time_totals_and_summary(store: ChatStore) -> None:
    comparison = store.create_comparison("Is 91 prime?")
    answers = [m for m in comparison.messages if m.role == "assistant"]
    for message, (tokens, text) in zip(answers, ((20, "No."), (60, "**no**"), (200, "Yes")), strict=True):
        stats = {
            "reasoning_tokens": tokens - 5,
            "final_tokens": 5,
            "completion_tokens": tokens,
            "ttft": 0.1,
            "first_answer_s": tokens / 100,
            "total_s": tokens / 50,
        }
        store.update_message(message.id, text=text, stats=stats, complete=True)
    text = store.export_markdown(comparison.id)
    assert "| low | 15 | 5 | 0.10 | 0.20 | 0.4 | – |" in text
    assert "| high | 195 | 5 | 0.10 | 2.00 | 4.0 | – |" in text
    assert "*low and medium agree; high differs · high took 10.0× the tokens and 10.0× the time of low*" in text


def test_unfinished_comparison_has_no_summary(store: ChatStore) -> None:
    comparison = store.create_comparison("Is 91 prime?")
    first = next(m for m in comparison.messages if m.role == "assistant")
    store.update_message(first.id, text="No.", stats={"completion_tokens": 3, "total_s": 1.0}, complete=True)
    text = store.export_markdown(comparison.id)
    assert "agree" not in text and "differ" not in text
    assert text.count("*(interrupted: partial answer)*") == 2


# -- format versions --------------------------------------------------------------------------------------------------

# A version-1 export as an app from before tool calls and attached files wrote it (its layout aside).
VERSION_1 = """{
  "format": "gpt-oss-desktop/chat",
  "format_version": 1,
  "kind": "chat",
  "title": "Primes",
  "created_at": "2026-03-01T09:30:00+00:00",
  "updated_at": "2026-03-01T09:31:00+00:00",
  "model": "gpt-oss-20b",
  "system_instructions": "",
  "developer_instructions": "Be terse.",
  "sampling": {"temperature": 1.0, "top_p": 1.0},
  "meta": {},
  "messages": [
    {"position": 0, "column": 0, "role": "user", "text": "Is 91 prime?", "analysis": "", "effort": null,
     "stats": {}, "complete": true, "created_at": "2026-03-01T09:30:00+00:00"},
    {"position": 1, "column": 0, "role": "assistant", "text": "No: 7 × 13.", "analysis": "Try 7.",
     "effort": "low", "stats": {"final_tokens": 6}, "complete": true, "created_at": "2026-03-01T09:31:00+00:00"}
  ]
}
"""


def test_exports_are_format_version_2_with_tool_calls_and_files_on_messages(store: ChatStore) -> None:
    chat = store.create_chat("Weights")
    files = (Attachment("table.csv", "name,kg\ncapybara,50\n", 20, 9),)
    store.add_message(chat.id, "user", "Which is heavier?", attachments=files)
    call = {"recipient": "python", "arguments": "print(50 > 20)", "output": "True"}
    store.add_message(chat.id, "assistant", "The capybara.", effort="low", tool_calls=[call])
    exported = store.export_json(chat.id)
    document = json.loads(exported)
    assert document["format_version"] == 2
    question, answer = document["messages"]
    assert question["attachments"][0]["name"] == "table.csv" and answer["tool_calls"][0]["recipient"] == "python"
    imported = store.import_json(exported)
    assert imported.without_ids() == store.get_chat(chat.id).without_ids()


def test_a_version_1_export_is_still_imported(store: ChatStore) -> None:
    imported = store.import_json(VERSION_1)
    question, answer = imported.messages
    assert (imported.title, imported.developer_instructions) == ("Primes", "Be terse.")
    assert (question.text, question.attachments) == ("Is 91 prime?", ())
    assert (answer.text, answer.effort, answer.tool_calls, answer.stats) == (
        "No: 7 × 13.",
        "low",
        (),
        {"final_tokens": 6},
    )
    # Exported again it is a version-2 file of the same chat.
    again = json.loads(store.export_json(imported.id))
    assert again["format_version"] == 2 and again["messages"] == json.loads(VERSION_1)["messages"]


def test_a_version_1_export_written_after_files_existed_keeps_them(store: ChatStore) -> None:
    # Between attached files arriving and the version saying so, this app wrote them into version-1 files.
    document = json.loads(VERSION_1)
    document["messages"][0]["attachments"] = [{"name": "notes.md", "text": "91 = 7 × 13\n", "size": 13, "tokens": 7}]
    imported = store.import_json(json.dumps(document))
    assert imported.messages[0].attachments == (Attachment("notes.md", "91 = 7 × 13\n", 13, 7),)


def test_an_export_from_a_newer_app_is_refused_with_a_clear_error(store: ChatStore) -> None:
    document = json.loads(VERSION_1)
    document["format_version"] = 3
    with pytest.raises(ImportFormatError) as info:
        store.import_json(json.dumps(document))
    assert str(info.value).startswith("this export was written by a newer version of gpt-oss desktop")
    assert "export format version 3" in str(info.value) and "update the app" in str(info.value)
    assert store.list_chats() == []


def test_markdown_export_links_browser_citations_and_json_keeps_the_models_text(store: ChatStore) -> None:
    chat = store.create_chat("Rain")
    store.add_message(chat.id, "user", "Does it rain a lot?")
    output = "[1] Rain (https://www.example.org/rain)\n**viewing lines [0 - 0] of 0**\n\nL0: Often."
    call = {"recipient": "browser.open", "arguments": '{"id": 0}', "channel": "analysis", "status": "ok"}
    answer = "Often【1†L0】, not always【7†L1】."
    store.add_message(chat.id, "assistant", answer, tool_calls=[{**call, "output": output}])
    text = store.export_markdown(chat.id)
    assert "Often [[example.org]](https://www.example.org/rain), not always【7†L1】." in text
    assert json.loads(store.export_json(chat.id))["messages"][1]["text"] == answer
