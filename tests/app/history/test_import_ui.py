"""Chat ▸ Import chats… in the real window (offscreen) over real SQLite stores: the picked files' chats are listed in
the sidebar and the last one opens; what did not come in is named in the status bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog

from gpt_oss_desktop.app.chat.chat_view import AssistantMessage, UserBubble
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import scripted_engine, until
from tests.app.history.test_chatgpt_import import with_branches
from tests.app.history.test_store import STATS


def pick(monkeypatch: pytest.MonkeyPatch, paths: list[Path]) -> list[str]:
    """The file dialog answers with ``paths``; returns where it was asked to open."""
    asked: list[str] = []

    def answer(_parent: object, _caption: str, folder: str, _filter: str) -> tuple[list[str], str]:
        asked.append(folder)
        return [str(path) for path in paths], ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", answer)
    return asked


def test_imported_chats_are_listed_and_the_last_one_opens(
    run: Any, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ChatStore(tmp_path / "elsewhere.sqlite3") as other:
        chat = other.create_chat("Tides")
        other.add_message(chat.id, "user", "Why are there tides?")
        other.add_message(chat.id, "assistant", "The Moon's pull.", analysis="Gravity.", effort="low", stats=STATS)
        ours = tmp_path / "Tides.json"
        ours.write_text(other.export_json(chat.id), encoding="utf-8")
    chatgpt = tmp_path / "conversations.json"
    chatgpt.write_text(json.dumps([with_branches()]), encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with ChatStore(tmp_path / "history.sqlite3") as store:
        window = make_window(scripted_engine(harmony_reply("t", "a"))[0], store)
        pick(monkeypatch, [ours, broken, chatgpt])

        async def body() -> None:
            window.import_chats_action.trigger()
            await until(lambda: "Imported" in window.statusBar().currentMessage())

        run(body())
        assert window.statusBar().currentMessage().startswith("Imported 2 chats; not imported: broken.json: not a JSON")
        assert sorted(c.title for c in store.list_chats()) == ["Primes and a cat", "Tides"]
        assert window.chat_id is not None and window.sidebar is not None
        assert sorted(window.sidebar.chat_ids()) == sorted(c.id for c in store.list_chats())  # listed
        opened = store.get_chat(window.chat_id)
        assert opened.title == "Primes and a cat"  # the last file's chat is open, its turns on screen
        bubbles = window.chat.findChildren(UserBubble)
        answers = window.chat.findChildren(AssistantMessage)
        assert len(bubbles) == 2 and answers[-1].answer_text == "A cat."


def test_without_a_history_it_says_so(run: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window(scripted_engine(harmony_reply("t", "a"))[0], None)
    asked = pick(monkeypatch, [])
    window.import_chats_action.trigger()
    assert asked == [] and window.statusBar().currentMessage() == "There is no chat history to import into."
