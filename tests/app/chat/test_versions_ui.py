"""Versions in the window: Regenerate keeps the earlier answers (‹ 1/3 ›), any earlier question can be edited and the
chat branches from it, and stepping through versions shows each one as it was. The window runs over the real engine
thread (ScriptedModel double for fixed token streams) and a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.app.chat.chat_view import AssistantMessage, UserBubble
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, next_emission, scripted_engine


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def bubbles(window: MainWindow) -> list[UserBubble]:
    return [w for w in window.chat.messages() if isinstance(w, UserBubble)]


def answers(window: MainWindow) -> list[AssistantMessage]:
    return [w for w in window.chat.messages() if isinstance(w, AssistantMessage)]


def shown(window: MainWindow) -> list[str]:
    return [w.label.text() if isinstance(w, UserBubble) else w.answer_text for w in window.chat.messages()]


def test_regenerate_keeps_every_answer_as_a_version(run: Any, make_window: Any, store: ChatStore) -> None:
    backend, _ = scripted_engine(harmony_reply("t", "first"), harmony_reply("t", "second"), harmony_reply("t", "third"))
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        await next_emission(window.generation_finished, lambda: window.send_message("question"))
        assert answers(window)[0].versions.isHidden()  # one version: no switcher
        # Each regenerate at another effort (the same prompt would replay the stream the prefill cache holds).
        for effort in (ReasoningEffort.HIGH, ReasoningEffort.LOW):
            await next_emission(window.generation_finished, lambda e=effort: window.regenerate(e))
        switcher = answers(window)[0].versions
        assert not switcher.isHidden() and switcher.label.text() == "3/3"
        assert shown(window) == ["question", "third"]
        switcher.previous_button.click()
        assert shown(window) == ["question", "second"]
        switcher = answers(window)[0].versions  # the thread was drawn again
        assert switcher.label.text() == "2/3" and switcher.next_button.isEnabled()
        switcher.previous_button.click()
        switcher = answers(window)[0].versions
        assert shown(window) == ["question", "first"] and switcher.label.text() == "1/3"
        assert not switcher.previous_button.isEnabled()
        # The saved chat reads as the screen does, and reopening it keeps the choice.
        assert window.chat_id is not None
        assert [m.text for m in store.get_chat(window.chat_id).messages] == ["question", "first"]
        chat_id = window.chat_id
        window.new_chat()
        assert window.open_chat(chat_id)
        assert shown(window) == ["question", "first"] and answers(window)[0].versions.label.text() == "1/3"

    run(body())


def test_editing_an_earlier_question_branches_and_the_old_branch_comes_back(
    run: Any, make_window: Any, store: ChatStore
) -> None:
    backend, model = scripted_engine(harmony_reply("t", "one"), harmony_reply("t", "two"), harmony_reply("t", "uno"))
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        await next_emission(window.generation_finished, lambda: window.send_message("first question"))
        await next_emission(window.generation_finished, lambda: window.send_message("second question"))
        bubbles(window)[0].edit_button.click()
        assert window.composer.editing and window.composer.prompt.toPlainText() == "first question"
        # Nothing changes until the edit is sent.
        assert shown(window) == ["first question", "one", "second question", "two"]
        window.composer.prompt.setPlainText("primera pregunta")
        await next_emission(window.generation_finished, window.composer.submit)
        assert shown(window) == ["primera pregunta", "uno"]
        assert len(model.last_prompt) > 0
        switcher = bubbles(window)[0].versions
        assert switcher.label.text() == "2/2"
        switcher.previous_button.click()
        assert shown(window) == ["first question", "one", "second question", "two"]
        assert bubbles(window)[0].versions.label.text() == "1/2"
        # The conversation continues from what is shown: the next question follows "two".
        assert [turn.user for turn in window.conversation.turns] == ["first question", "second question"]
        bubbles(window)[0].versions.next_button.click()
        assert shown(window) == ["primera pregunta", "uno"]

    run(body())
