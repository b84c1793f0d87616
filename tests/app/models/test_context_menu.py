"""Model ▸ Context length: a saved choice the local engine applies from the next answer without reloading the model,
what a full context costs in memory, and the real window's menu (offscreen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PySide6.QtCore import QSettings

from gpt_oss_desktop.app.backends.chat_backend import ChatRequest, RequestError
from gpt_oss_desktop.app.backends.local_engine import DEFAULT_CONTEXT, LocalEngine, kv_bytes_per_token
from gpt_oss_desktop.app.models.context_menu import CHOICES, DEFAULT_CHOICE, choice_label, stored_context_length
from gpt_oss_desktop.app.settings import CONTEXT_LENGTH_KEY
from gpt_oss_desktop.engine.checkpoint import get_preset
from gpt_oss_desktop.engine.events import Done
from gpt_oss_desktop.engine.harmony import ChatMessage
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply
from tests.app.conftest import until


class _Model:
    def __init__(self, preset: str) -> None:
        self.config = get_preset(preset)
        self.dtype = torch.bfloat16


def test_what_a_token_of_context_costs() -> None:
    # 20b: 12 of its 24 layers attend to the whole context (the others keep a 128-token window), 8 KV heads of 64.
    assert kv_bytes_per_token(_Model("20b")) == 12 * 8 * 64 * 2 * 2
    assert kv_bytes_per_token(_Model("120b")) == 18 * 8 * 64 * 2 * 2
    assert kv_bytes_per_token(ScriptedModel([harmony_reply("t", "a")])) == 0  # no gpt-oss config: not known
    assert choice_label(32768, 24576) == "32K tokens · up to 0.8 GB"
    assert choice_label(16384) == "16K tokens (default)" and DEFAULT_CHOICE == DEFAULT_CONTEXT in CHOICES


def test_stored_choice_and_anything_else_is_the_default(tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert stored_context_length(settings) == DEFAULT_CHOICE
    for value, expected in (("65536", 65536), ("1234", DEFAULT_CHOICE), ("lots", DEFAULT_CHOICE), (131072, 131072)):
        settings.setValue(CONTEXT_LENGTH_KEY, value)
        assert stored_context_length(settings) == expected


def long_question(tokens: int) -> ChatRequest:
    return ChatRequest((ChatMessage.user("word " * tokens),), params=SamplingParams(temperature=0.0))


async def answer(engine: LocalEngine, request: ChatRequest) -> Done:
    done = None
    async for event in engine.stream(request):
        if isinstance(event, Done):
            done = event
    assert done is not None
    return done


def test_a_longer_context_applies_to_the_loaded_model_from_the_next_answer(run: Any) -> None:
    loads: list[str] = []

    def loader(ref: str, _progress: object) -> ScriptedModel:
        loads.append(ref)
        return ScriptedModel([harmony_reply("t", "a")])

    engine = LocalEngine(loader=loader, max_context=512)
    try:
        info = run(engine.load("scripted"))
        assert info.context_length == 512
        with pytest.raises(RequestError, match="the context holds 512"):
            run(answer(engine, long_question(900)))
        widened = run(engine.set_context_length(2048))
        assert widened is not None and widened.context_length == 2048 and engine.info == widened
        assert engine.context_length_setting == 2048 and loads == ["scripted"]  # no reload
        fits = run(answer(engine, long_question(900)))
        assert fits.error is None and fits.prompt_tokens > 900
        run(engine.unload())
        assert run(engine.set_context_length(1024)) is None  # nothing loaded: the next load uses it
        assert run(engine.load("again")).context_length == 1024
    finally:
        engine.close()


def test_the_menu_saves_the_choice_and_the_status_bar_follows(run: Any, make_window: Any, settings: QSettings) -> None:
    engine = LocalEngine(loader=lambda _r, _p: ScriptedModel([harmony_reply("t", "a")]), max_context=DEFAULT_CONTEXT)
    window = make_window(engine)
    setting = window.context_length_setting
    assert [a.text() for a in setting.menu.actions()] == [choice_label(n) for n in CHOICES]
    assert setting.actions[DEFAULT_CHOICE].isChecked()

    async def body() -> None:
        await window.load_model("scripted")
        task = setting.choose(65536)
        assert task is not None
        await task
        await until(lambda: "Chats can grow to 65,536 tokens" in window.statusBar().currentMessage())

    run(body())
    assert engine.context_length_setting == 65536 and setting.actions[65536].isChecked()
    assert engine.info is not None and engine.info.context_length == 8192  # the scripted model's own limit
    settings.sync()
    assert stored_context_length(QSettings(settings.fileName(), QSettings.Format.IniFormat)) == 65536


@pytest.mark.parametrize("length", [0, -5])
def test_a_length_must_be_positive(run: Any, length: int) -> None:
    engine = LocalEngine(loader=lambda _r, _p: ScriptedModel([harmony_reply("t", "a")]))
    try:
        with pytest.raises(ValueError, match="must be positive"):
            run(engine.set_context_length(length))
    finally:
        engine.close()
