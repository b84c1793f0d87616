"""The default instructions for new chats in the window: the first empty chat and New chat start with them, a saved
chat opens with its own, and they reach the model and the history like instructions set by hand. The window over
the real engine thread (ScriptedModel double), real harmony rendering, real SQLite history, real ini settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from gpt_oss_desktop.app.chat.instructions_dialog import (
    InstructionsDialog,
    default_instructions,
    set_default_instructions,
)
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.chat.modal_answers import answer_next
from tests.app.conftest import load, next_emission, scripted_engine

FRENCH = "Answer in French."


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def shows_instructions_set(window: Any) -> bool:
    """What the window shows for a chat with instructions: Chat ▸ Chat instructions… (set)."""
    return bool(window.instructions_action.text().endswith("(set)"))


def test_new_chats_start_with_the_default_and_saved_chats_keep_their_own(
    make_window: Any, settings: QSettings, store: ChatStore
) -> None:
    set_default_instructions(settings, FRENCH)
    reviewer = store.create_chat("Review", developer_instructions="You are a code reviewer.")
    plain = store.create_chat("Plain")
    window = make_window(scripted_engine()[0], store)
    # The window's first, empty chat is a new chat.
    assert window.instructions == FRENCH and shows_instructions_set(window)

    assert window.open_chat(reviewer.id) and window.instructions == "You are a code reviewer."
    assert window.open_chat(plain.id) and window.instructions == "" and not shows_instructions_set(window)
    assert store.get_chat(plain.id).developer_instructions == ""  # opening it did not give it the default

    window.new_chat()
    assert window.instructions == FRENCH and shows_instructions_set(window)

    # Without a default, new chats start without instructions, as before.
    set_default_instructions(settings, "")
    window.new_chat()
    assert window.instructions == "" and not shows_instructions_set(window)


def test_the_default_reaches_the_model_and_is_saved_with_the_new_chat(
    run: Any, make_window: Any, settings: QSettings, store: ChatStore
) -> None:
    backend, model = scripted_engine(harmony_reply("t", "Bonjour."))
    set_default_instructions(settings, FRENCH)
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        window.new_chat()
        await next_emission(window.generation_finished, lambda: window.send_message("hello"))
        prompt = get_encoding().decode(model.last_prompt)
        assert f"<|start|>developer<|message|># Instructions\n\n{FRENCH}<|end|>" in prompt
        assert store.get_chat(window.chat_id).developer_instructions == FRENCH

    run(body())


def test_the_window_dialog_makes_a_chats_instructions_the_default(make_window: Any, settings: QSettings) -> None:
    window = make_window(scripted_engine()[0])

    def answer(dialog: InstructionsDialog) -> None:
        assert dialog.default_box.isVisible()  # the window passes its settings
        dialog.editor.setPlainText(FRENCH)
        dialog.default_box.setChecked(True)
        dialog.accept()

    asked = answer_next(InstructionsDialog, answer)
    window.edit_instructions()
    assert asked == ["Chat instructions"]
    assert window.instructions == FRENCH and default_instructions(settings) == FRENCH
    window.new_chat()
    assert window.instructions == FRENCH
