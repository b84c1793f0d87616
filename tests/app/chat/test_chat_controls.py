"""Edit of the last message while busy, per-chat instructions, and cancelling a model load: the window over the real
engine thread (ScriptedModel double for fixed token streams), real harmony rendering, real SQLite history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from gpt_oss_desktop.app.backends.chat_backend import LoadError, LoadErrorKind
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import UserBubble
from gpt_oss_desktop.app.chat.instructions_dialog import InstructionsDialog
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.conftest import load, next_emission, scripted_engine, until


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def bubbles(window: Any) -> list[str]:
    return [w.label.text() for w in window.chat.messages() if isinstance(w, UserBubble)]


def test_edit_last_message_is_refused_while_answering_or_when_empty(run: Any, make_window: Any) -> None:
    backend, _ = scripted_engine(harmony_reply("x " * 300, "late"), token_seconds=0.01)
    window = make_window(backend)

    async def body() -> None:
        await load(window)
        assert not window.edit_last_message()  # nothing to edit yet
        window.send_message("hello")
        await until(lambda: window.busy)
        assert not window.edit_last_message() and not window.edit_last_action.isEnabled()
        await next_emission(window.generation_finished, window.stop)
        assert window.edit_last_action.isEnabled() and window.edit_last_message()
        # Taken into the composer, but kept on screen until the edit is sent (tests/app/chat/test_chat_flows.py).
        assert window.composer.prompt.toPlainText() == "hello" and bubbles(window) == ["hello"]

    run(body())


def test_instructions_reach_the_model_as_the_developer_message_and_persist(
    run: Any, make_window: Any, store: ChatStore
) -> None:
    backend, model = scripted_engine(harmony_reply("t", "Bonjour."), harmony_reply("t", "Salut."))
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        window.set_instructions("Answer in French.")
        await next_emission(window.generation_finished, lambda: window.send_message("hello"))
        prompt = get_encoding().decode(model.last_prompt)
        assert "<|start|>developer<|message|># Instructions\n\nAnswer in French.<|end|>" in prompt
        chat_id = window.chat_id
        assert store.get_chat(chat_id).developer_instructions == "Answer in French."
        # A new chat starts without them; reopening the saved chat brings them back.
        window.new_chat()
        assert window.instructions == ""
        assert window.open_chat(chat_id) and window.instructions == "Answer in French."
        window.set_instructions("")
        assert store.get_chat(chat_id).developer_instructions == ""
        await next_emission(window.generation_finished, lambda: window.send_message("again"))
        assert "<|start|>developer" not in get_encoding().decode(model.last_prompt)

    run(body())


def test_instructions_dialog_edits_the_text(qtbot: Any) -> None:
    dialog = InstructionsDialog("old")
    qtbot.addWidget(dialog)
    assert dialog.editor.accessibleName() == "Chat instructions"
    dialog.editor.clear()
    QTest.keyClicks(dialog.editor, "Be brief.")
    assert dialog.text() == "Be brief."


def test_a_model_load_can_be_cancelled_and_the_app_stays_usable(run: Any, make_window: Any) -> None:
    model = ScriptedModel([harmony_reply("t", "ok")])

    def slow_loader(ref: str, on_progress: Any) -> ScriptedModel:
        if ref == "scripted":
            return model
        for step in range(4000):  # ~20 s unless cancelled: the test must not pass by the load simply finishing
            on_progress(step / 4000, f"step {step}")
            time.sleep(0.005)
        return model

    backend = LocalEngine(loader=slow_loader, max_context=1024)
    window = make_window(backend)

    async def body() -> None:
        window.load_model("big")
        await until(lambda: window.status.progress.isVisible() and window.status.progress.value() > 5)
        assert window.status.cancel_button.isVisible() and window.stop_action.isEnabled()
        error: LoadError = await next_emission(
            window.load_failed, lambda: QTest.mouseClick(window.status.cancel_button, Qt.MouseButton.LeftButton)
        )
        assert error.kind is LoadErrorKind.CANCELLED
        assert backend.info is None and not window.banner.isVisible()
        assert not window.status.progress.isVisible() and not window.status.cancel_button.isVisible()
        assert "cancelled" in window.statusBar().currentMessage()
        await load(window)  # still usable
        await next_emission(window.generation_finished, lambda: window.send_message("hi"))

    run(body())


def test_closing_mid_answer_saves_the_partial_answer(
    run: Any, make_window: Any, store: ChatStore, qapp: QApplication
) -> None:
    backend, _ = scripted_engine(harmony_reply("thinking " * 5, "word " * 400), token_seconds=0.01)
    window = make_window(backend, store)
    # In the app, closing the last window ends the event loop; here the test's loop must outlive the window.
    qapp.setQuitOnLastWindowClosed(False)

    async def body() -> None:
        await load(window)
        window.send_message("write a lot")
        await until(lambda: window._current is not None and len(window._current.answer_text) > 20)
        chat_id = window.chat_id
        window.close()
        await until(lambda: not window.isVisible())
        answer = store.get_chat(chat_id).messages[-1]
        assert answer.role == "assistant" and answer.text.startswith("word word")
        assert len(answer.text) < len("word " * 400) and answer.analysis.startswith("thinking")

    try:
        run(body())
    finally:
        qapp.setQuitOnLastWindowClosed(True)
