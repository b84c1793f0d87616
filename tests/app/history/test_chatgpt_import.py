"""ChatGPT's data export into a real SQLite history. The files are built here in the layout of ChatGPT's export
(``conversations.json``: a tree of messages per conversation, the branch last shown marked by ``current_node``), since
a real export holds someone's chats: a stand-in for the format, not a claim about every export ever written."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.history.chat_import import import_chat_files
from gpt_oss_desktop.app.history.chatgpt_import import IMAGE_NOTE

T0 = 1_700_000_000.0


def node(node_id: str, parent: str | None, children: list[str], message: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": node_id, "parent": parent, "children": children, "message": message}


def message(role: str, content: dict[str, Any], at: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"m{at}",
        "author": {"role": role, "name": None, "metadata": {}},
        "create_time": at,
        "content": content,
        "status": "finished_successfully",
        "metadata": extra.pop("metadata", {}),
        "recipient": extra.pop("recipient", "all"),
        **extra,
    }


def text(*parts: Any) -> dict[str, Any]:
    return {"content_type": "text", "parts": list(parts)}


def conversation(title: str, nodes: list[dict[str, Any]], current: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "create_time": T0,
        "update_time": T0 + 600,
        "mapping": {n["id"]: n for n in nodes},
        "current_node": current,
        "default_model_slug": "gpt-4o",
        "id": f"conv-{title}",
        **extra,
    }


def with_branches() -> dict[str, Any]:
    """A question, an answer regenerated once (the second shown), a question with an image, a hidden system message,
    a tool call and its result, a reasoning model's thoughts, and the answer."""
    hidden = {"is_visually_hidden_from_conversation": True}
    nodes = [
        node("root", None, ["sys"], None),
        node("sys", "root", ["q1"], message("system", text(""), None, metadata=hidden)),
        node("q1", "sys", ["a1-old", "a1"], message("user", text("Is 91 prime?"), T0 + 1)),
        node("a1-old", "q1", [], message("assistant", text("Yes."), T0 + 2)),
        node("a1", "q1", ["q2"], message("assistant", text("No: 91 = 7 × 13."), T0 + 3)),
        node(
            "q2",
            "a1",
            ["call"],
            message(
                "user",
                {
                    "content_type": "multimodal_text",
                    "parts": [
                        {"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"},
                        "What is this?",
                    ],
                },
                T0 + 4,
            ),
        ),
        node(
            "call",
            "q2",
            ["result"],
            message("assistant", {"content_type": "code", "text": "look()"}, T0 + 5, recipient="python"),
        ),
        node(
            "result", "call", ["think"], message("tool", {"content_type": "execution_output", "text": "a cat"}, T0 + 6)
        ),
        node(
            "think",
            "result",
            ["a2"],
            message(
                "assistant",
                {"content_type": "thoughts", "thoughts": [{"summary": "Look", "content": "It is a cat."}]},
                T0 + 7,
            ),
        ),
        node("a2", "think", [], message("assistant", text("A cat."), T0 + 8)),
    ]
    return conversation("Primes and a cat", nodes, "a2")


def test_the_branch_shown_last_comes_in_as_questions_and_answers(tmp_path: Path) -> None:
    export = tmp_path / "conversations.json"
    export.write_text(json.dumps([with_branches()]), encoding="utf-8")
    with ChatStore(tmp_path / "history.sqlite3") as store:
        report = import_chat_files(store, [export])
        assert report.problems == () and len(report.chats) == 1
        chat = store.get_chat(report.chats[0].id)
        thread = chat.thread()
    assert chat.title == "Primes and a cat" and chat.model == "ChatGPT (gpt-4o)"
    assert [(m.role, m.text, m.analysis) for m in thread] == [
        ("user", "Is 91 prime?", ""),
        ("assistant", "No: 91 = 7 × 13.", ""),  # the regenerated answer that was shown, not the first
        ("user", f"{IMAGE_NOTE}\n\nWhat is this?", ""),
        ("assistant", "A cat.", "It is a cat."),  # the code call and its output are left out; the thoughts kept
    ]
    assert thread[0].created_at.timestamp() == T0 + 1 and thread[3].created_at.timestamp() == T0 + 8
    assert chat.created_at.timestamp() == T0 and chat.updated_at.timestamp() == T0 + 600


def test_a_zip_imports_and_bad_conversations_are_named_while_the_others_come_in(tmp_path: Path) -> None:
    unanswered = conversation(
        "Unanswered", [node("r", None, ["q"], None), node("q", "r", [], message("user", text("Hello?"), T0))], "q"
    )
    empty = conversation("Empty", [node("r", None, [], None)], "r")
    broken = conversation("Broken", [node("r", None, ["q"], None), node("q", "r", [], {"author": 5})], "q")
    no_current = with_branches() | {"title": "No current node", "current_node": None}
    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("chat.html", "<html></html>")
        zipped.writestr("conversations.json", json.dumps([unanswered, empty, broken, no_current]))
    not_export = tmp_path / "other.zip"
    with zipfile.ZipFile(not_export, "w") as zipped:
        zipped.writestr("notes.txt", "hi")
    with ChatStore(tmp_path / "history.sqlite3") as store:
        report = import_chat_files(store, [archive, not_export])
        titles = [chat.title for chat in report.chats]
        assert titles == ["Unanswered", "No current node"]
        (question,) = store.get_chat(report.chats[0].id).thread()
        assert question.text == "Hello?"  # a question left without an answer is kept
        latest = store.get_chat(report.chats[1].id).thread()
        assert latest[1].text == "No: 91 = 7 × 13."  # without a current node, the latest branch
    reasons = [str(problem) for problem in report.problems]
    assert reasons == [
        "chatgpt-export.zip: “Empty”: it has no questions or answers to import",
        "chatgpt-export.zip: “Broken”: it has no questions or answers to import",
        "other.zip: a zip without conversations.json (not a ChatGPT data export)",
    ]
