"""The sampling menu's thinking budget in the window: remembered, sent to the local engine, the answer's stats line
saying the thinking was cut; "No limit" sends none, and a connected server is asked without one."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QSettings

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.stats import AnswerStats, readable, stats_line
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.events import Done, FinishReason
from gpt_oss_desktop.engine.scripted_model import ScriptedModel
from gpt_oss_desktop.engine.vocab import CHANNEL, END, MESSAGE, RETURN, START, get_encoding
from tests.app.conftest import load, next_emission

THOUGHT = get_encoding().encode(" ".join(["I should weigh every option again."] * 5))
ANSWER = "Take the train."


def _reply(thought: list[int]) -> list[int]:
    enc = get_encoding()
    return [
        CHANNEL, *enc.encode("analysis"), MESSAGE, *thought, END,
        START, *enc.encode("assistant"), CHANNEL, *enc.encode("final"), MESSAGE, *enc.encode(ANSWER), RETURN,
    ]  # fmt: skip


def _thinker_engine() -> LocalEngine:
    """A model (test double) that would think THOUGHT through, and answers after any part of it if it must."""
    model = ScriptedModel.preferring(_reply(THOUGHT), *(_reply(THOUGHT[:n]) for n in range(len(THOUGHT))))
    return LocalEngine(loader=lambda _ref, _progress: model, max_context=4096)


def _last_answer(window: MainWindow) -> AssistantMessage:
    return [w for w in window.chat.messages() if isinstance(w, AssistantMessage)][-1]


def test_a_thinking_budget_cuts_the_reasoning_and_says_so(run: Any, make_window: Any) -> None:
    window = make_window(_thinker_engine())
    window.composer.sampling.temperature.setValue(0.0)

    async def body() -> None:
        await load(window)
        done: Done = await next_emission(window.generation_finished, lambda: window.send_message("Train or car?"))
        free = _last_answer(window)
        assert free.reasoning.text() == get_encoding().decode(THOUGHT)
        assert "thinking cut" not in readable(free.stats.text())

        window.composer.sampling.thinking_budget.setValue(9)
        done = await next_emission(window.generation_finished, lambda: window.send_message("Train or car?"))
        cut = _last_answer(window)
        assert done.finish_reason is FinishReason.STOP and done.reasoning_cut
        assert cut.reasoning.text() == get_encoding().decode(THOUGHT[:9])
        assert cut.answer.text() == ANSWER
        assert "thinking cut at the budget" in readable(cut.stats.text())

    run(body())


def test_the_budget_is_remembered_and_no_limit_sends_none(make_window: Any, settings: QSettings) -> None:
    first = make_window(_thinker_engine())
    menu = first.composer.sampling
    assert menu.thinking_budget.value() == 0 and menu.thinking_budget.text() == "No limit"
    assert first.composer.sampling_params().reasoning_budget is None
    menu.thinking_budget.setValue(1024)
    second = make_window(_thinker_engine())
    assert second.composer.sampling_params().reasoning_budget == 1024
    assert second.composer.sampling.thinking_budget.text() == "1,024 tokens"
    second.composer.sampling.reset()
    assert second.composer.sampling_params().reasoning_budget is None


def test_the_compare_view_runs_without_the_budget(make_window: Any) -> None:
    window = make_window(_thinker_engine())
    window.composer.sampling.thinking_budget.setValue(300)
    assert window.composer.sampling_params().reasoning_budget == 300
    assert window.compare._sampling().reasoning_budget is None


def test_a_cut_is_kept_with_the_saved_answer() -> None:
    stats = AnswerStats(5, 3, 0.1, 1.0, 0.5, 9.0, FinishReason.STOP, reasoning_cut=True)
    again = AnswerStats.from_record(stats.to_record())
    assert again == stats and "thinking cut at the budget" in readable(stats_line(again))
    plain = dataclasses.replace(stats, reasoning_cut=False)
    assert "reasoning_cut" not in plain.to_record()
