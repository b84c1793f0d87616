"""Tool calls in the window (offscreen, real widgets, the real engine thread over the ScriptedModel test double):
the card appears while the call is written, asks before running, shows the result, and the answer uses it; saved
chats show their calls again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.tool_call_card import ToolCallCard
from gpt_oss_desktop.app.chat.tool_calls import CallState
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.engine.events import Done
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply, harmony_tool_call
from gpt_oss_desktop.engine.tools.base import ToolPolicy, ToolStatus
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.conftest import load, next_emission, until

CALL = harmony_tool_call(
    "Use the converter.", "functions.convert_units", '{"value": 5, "from_unit": "km", "to_unit": "mi"}'
)
ANSWER = harmony_reply("It returned 3.106856.", "5 km is **3.106856 mi**.")


def tool_loop_engine() -> tuple[LocalEngine, ScriptedModel]:
    """The double replays the call, then the answer once the prompt ends with the tool's result."""
    model = ScriptedModel.tool_loop(CALL, ANSWER, token_seconds=0.002)
    return LocalEngine(loader=lambda _ref, _progress: model, max_context=4096), model


def tools(policy: ToolPolicy | None = None) -> tuple[AppTools, list[ToolSettings]]:
    saved: list[ToolSettings] = []
    settings = ToolSettings()
    if policy is not None:
        settings = settings.with_policy("functions.convert_units", policy)
    return AppTools(settings, save=saved.append), saved


def cards(window: Any) -> list[ToolCallCard]:
    """The cards of the answers in the chat on screen (not those of a chat just left, deleted later)."""
    answers = [message for message in window.chat.messages() if isinstance(message, AssistantMessage)]
    return [card for answer in answers for card in answer.tool_cards]


def test_asks_before_running_then_the_answer_uses_the_result(
    make_window: Any, run: Any, qtbot: Any, tmp_path: Path
) -> None:
    backend, _model = tool_loop_engine()
    app_tools, saved = tools(ToolPolicy.ASK)
    with ChatStore(tmp_path / "history.sqlite3") as store:
        window = make_window(backend, store, tools=app_tools)
        run(load(window))

        async def body() -> Done:
            finished = asyncio.ensure_future(
                next_emission(window.generation_finished, lambda: window.send_message("5 km in miles?"))
            )
            await until(lambda: bool(cards(window)) and cards(window)[0].approval_row.isVisible())
            card = cards(window)[0]
            assert card.call is not None and card.call.state is CallState.WAITING
            assert "waiting for your approval" in card.status.text()
            assert '"from_unit": "km"' in card.arguments.toPlainText()
            assert card.always_button.text() == "Always run convert_units"
            qtbot.mouseClick(card.always_button, Qt.MouseButton.LeftButton)
            return await finished

        done = run(body())
        assert done is not None
        card = cards(window)[0]
        assert card.call is not None and card.call.status is ToolStatus.OK
        assert card.status.text().startswith("done")
        assert not card.result.isVisible()
        qtbot.mouseClick(card.result_button, Qt.MouseButton.LeftButton)
        assert card.result.isVisible() and "3.106856" in card.result.toPlainText()
        message = window._current or window.chat.messages()[-1]
        assert "3.106856 mi" in message.answer_text
        assert "1 tool call" in message.stats.text().replace("\u00a0", " ")
        # "Always run" was remembered in the settings
        assert saved and saved[-1].policy("functions.convert_units") is ToolPolicy.ALWAYS
        chat_id = window.chat_id
        assert chat_id is not None

        # reopened from the history, the call is shown again, done, with its result
        window.new_chat()
        assert window.open_chat(chat_id)
        reopened = cards(window)
        assert len(reopened) == 1 and reopened[0].call is not None
        assert reopened[0].call.status is ToolStatus.OK and "3.106856" in reopened[0].result.toPlainText()


def test_dont_run_sends_the_refusal_and_the_card_says_so(make_window: Any, run: Any, qtbot: Any) -> None:
    backend, model = tool_loop_engine()
    app_tools, _saved = tools()
    app_tools.update(app_tools.settings.with_policy("functions.convert_units", ToolPolicy.ASK))
    window = make_window(backend, tools=app_tools)
    run(load(window))

    async def body() -> None:
        finished = asyncio.ensure_future(
            next_emission(window.generation_finished, lambda: window.send_message("5 km in miles?"))
        )
        await until(lambda: bool(cards(window)) and cards(window)[0].approval_row.isVisible())
        qtbot.mouseClick(cards(window)[0].deny_button, Qt.MouseButton.LeftButton)
        await finished

    run(body())
    card = cards(window)[0]
    assert card.status.text() == "not run · you declined"
    assert "the user declined this call" in get_encoding().decode(model.prompts[-1])
