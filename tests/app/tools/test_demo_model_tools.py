"""The whole tool loop offline, as a newcomer sees it: the shipped demo model in the window (offscreen) asks to run
a one-line Python program, the card waits for approval, the program runs in the real sandbox, and the model answers
(with what it printed: reliable for small numbers; for a product of several tokens an expected failure)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt

from gpt_oss_desktop.app.backends.chat_backend import DEMO_MODEL
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.tool_call_card import ToolCallCard
from gpt_oss_desktop.app.settings import TEMPERATURE_KEY
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.engine.tools.base import ToolStatus
from gpt_oss_desktop.engine.tools.python_sandbox import PythonSandbox
from gpt_oss_desktop.engine.tools.python_tool import PythonTool
from tests.app.conftest import load, next_emission, until


def answers(window: Any) -> list[AssistantMessage]:
    return [message for message in window.chat.messages() if isinstance(message, AssistantMessage)]


def ask_and_run(
    make_window: Any, run: Any, qtbot: Any, settings: QSettings, question: str = "What is 347 * 29?"
) -> tuple[ToolCallCard, str]:
    """Ask the demo an arithmetic question with the app's default tools, press Run on its card; the card and the
    answer's text."""
    settings.setValue(TEMPERATURE_KEY, 0.0)  # greedy: the same tokens every run
    tools = AppTools(ToolSettings(), save=lambda _s: None, python_tool=PythonTool(PythonSandbox()))
    window = make_window(LocalEngine(), tools=tools)
    run(load(window, DEMO_MODEL), 120)

    async def body() -> ToolCallCard:
        finished = asyncio.ensure_future(
            next_emission(window.generation_finished, lambda: window.send_message(question), timeout=120)
        )
        await until(lambda: bool(answers(window)) and bool(answers(window)[-1].tool_cards), timeout=60)
        card = answers(window)[-1].tool_cards[0]
        await until(lambda: card.approval_row.isVisible(), timeout=60)  # python asks first (the default)
        assert card.call is not None and card.call.is_python
        assert "print(" in card.arguments.toPlainText()
        qtbot.mouseClick(card.run_button, Qt.MouseButton.LeftButton)
        await finished
        return card

    card = run(body(), 180)
    return card, answers(window)[-1].answer_text


def test_the_demo_model_calls_python_and_the_card_asks_then_runs_it(
    make_window: Any, run: Any, qtbot: Any, settings: QSettings
) -> None:
    card, answer = ask_and_run(make_window, run, qtbot, settings)
    assert card.call is not None and card.call.status is ToolStatus.OK, card.call
    assert card.call.output.strip().lstrip("-").isdigit()  # the program ran in the sandbox and printed a number
    assert card.status.text().startswith("done") and answer  # and the model went on to an answer


def test_the_demo_models_answer_uses_what_python_printed(
    make_window: Any, run: Any, qtbot: Any, settings: QSettings
) -> None:
    card, answer = ask_and_run(make_window, run, qtbot, settings, "What is 17 + 25?")
    assert card.call is not None and card.call.output == "42\n"  # the sandbox ran the model's program
    assert answer == "17 + 25 = 42."  # and the answer copies the printed value


@pytest.mark.xfail(
    reason="the demo model does not yet copy a result of several tokens reliably (large-number arithmetic with "
    "python 7.3 %, README: Demo model quality); it answered '257 × 29 = 10050.' after python printed 10063",
    strict=True,
)
def test_the_demo_models_answer_uses_what_python_printed_for_a_large_product(
    make_window: Any, run: Any, qtbot: Any, settings: QSettings
) -> None:
    card, answer = ask_and_run(make_window, run, qtbot, settings)
    assert card.call is not None and card.call.output.strip() in answer
