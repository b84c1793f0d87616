"""Tools with a remote server, in the real window (offscreen): the app's tools go to the server as OpenAI function
tools and the same tool loop runs on its calls (cards, approval by policy, Stop, the saved record), against the app's
own server (engine/server over the ScriptedModel test double, which calls a function) and against a provider
stand-in that streams its calls in pieces as OpenAI does. A server that refuses tools says so, and Retry answers
without them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from gpt_oss_desktop.app.backends.remote_presets import PresetId
from gpt_oss_desktop.app.backends.saved_connection import SavedConnection, server_ref
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.tool_calls import CallState
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.models.saved_servers import SavedServers
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.engine.events import FinishReason
from gpt_oss_desktop.engine.harmony import PYTHON_TOOL
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply, harmony_tool_call
from gpt_oss_desktop.engine.tools.base import ToolPolicy, ToolStatus
from gpt_oss_desktop.engine.tools.python_sandbox import PythonSandbox
from gpt_oss_desktop.engine.tools.python_tool import PythonTool
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.chat.test_tool_cards import cards
from tests.app.conftest import load, next_emission, until
from tests.app.models.conftest import remote_window
from tests.helpers.provider_server import ANSWER
from tests.helpers.web_site import Site, site

__all__ = ["site"]  # the fixture

CONVERT = '{"value": 5, "from_unit": "km", "to_unit": "mi"}'
CONVERTED = '{"value": 3.106856, "unit": "mi"}'  # what the built-in convert_units answers


def app_tools(policy: ToolPolicy, *, python: bool = False) -> AppTools:
    settings = ToolSettings().with_policy("functions.convert_units", policy).with_policy(PYTHON_TOOL, policy)
    # The python tool runs its code for real, in the sandbox's process fallback (bubblewrap is not needed here).
    sandboxed = PythonTool(PythonSandbox(force_fallback=True)) if python else None
    return AppTools(settings, save=lambda _settings: None, python_tool=sandboxed)


def connected(make_window: Any, servers: SavedServers, base_url: str, model: str, **options: Any) -> Any:
    """A window with ``options`` (tools, store), connected to the server at ``base_url`` (saved as "box")."""
    servers.save(SavedConnection("box", PresetId.VLLM, base_url, model))
    return remote_window(make_window, servers, options.pop("store", None), **options)


async def ask_until_approval(window: Any) -> asyncio.Future[Any]:
    """Connect, ask for a conversion, and wait until its call's card asks to run it; the answer's Done to come."""
    await load(window, server_ref("box"))
    finished = asyncio.ensure_future(
        next_emission(window.generation_finished, lambda: window.send_message("5 km in miles?"))
    )
    await until(lambda: bool(cards(window)) and cards(window)[0].approval_row.isVisible())
    return finished


def test_the_tool_loop_runs_against_the_apps_own_server(
    run: Any, make_window: Any, servers: SavedServers, start_server: Any, data_dir: Path
) -> None:
    model = ScriptedModel.tool_loop(
        harmony_tool_call("Use the converter.", "functions.convert_units", CONVERT),
        harmony_reply("It returned 3.106856.", "5 km is **3.106856 mi**."),
    )
    server = start_server(model)
    with ChatStore(data_dir / "history.sqlite3") as store:
        window = connected(
            make_window, servers, server.base_url, "demo", store=store, tools=app_tools(ToolPolicy.ALWAYS)
        )

        async def body() -> Any:
            await load(window, server_ref("box"))
            return await next_emission(window.generation_finished, lambda: window.send_message("5 km in miles?"))

        done = run(body(), timeout=60)
        assert done.finish_reason is FinishReason.STOP and done.error is None
        (card,) = cards(window)
        assert card.call is not None and card.call.status is ToolStatus.OK and card.call.output == CONVERTED
        message = window._last_assistant()
        assert isinstance(message, AssistantMessage) and "3.106856 mi" in message.answer_text
        assert "1 tool call" in message.stats.text().replace("\u00a0", " ")
        # What the model read: the tools in its developer message; then the call, its result and the round's
        # reasoning (sent back inside the loop), all rendered by the server from the OpenAI messages.
        first, last = (get_encoding().decode(model.prompts[i]) for i in (0, -1))
        assert "namespace functions" in first and "type convert_units" in first and "type get_current_time" in first
        assert "functions.convert_units to=assistant" in last and CONVERTED in last
        assert "Use the converter." in last
        saved = store.get_chat(window.chat_id).thread()[-1]
        assert [call["recipient"] for call in saved.tool_calls] == ["functions.convert_units"]
        assert saved.tool_calls[0]["status"] == "ok" and saved.text == "5 km is **3.106856 mi**."


def test_a_call_streamed_in_pieces_asks_first_then_its_result_goes_back(
    run: Any, make_window: Any, servers: SavedServers, provider: Any, qtbot: Any
) -> None:
    server = provider(tool_call=("convert_units", CONVERT))
    window = connected(make_window, servers, server.base_url, server.state.model, tools=app_tools(ToolPolicy.ASK))

    async def body() -> Any:
        finished = await ask_until_approval(window)
        card = cards(window)[0]
        assert card.call is not None and card.call.state is CallState.WAITING
        assert card.call.arguments == CONVERT  # the pieces, whole
        qtbot.mouseClick(card.run_button, Qt.MouseButton.LeftButton)
        return await finished

    done = run(body(), timeout=60)
    assert done.finish_reason is FinishReason.STOP
    assert window.conversation.last.answer == f"The tool said {CONVERTED}."
    first, second = server.state.bodies
    assert {tool["function"]["name"] for tool in first["tools"]} == {"convert_units", "get_current_time"}
    assistant, result = second["messages"][-2:]
    (call,) = assistant["tool_calls"]
    assert call["function"] == {"name": "convert_units", "arguments": CONVERT}
    assert result == {"role": "tool", "tool_call_id": call["id"], "content": CONVERTED}
    assert assistant["reasoning"].startswith("step0")  # the round's reasoning went back (vLLM takes it)


def test_stop_while_a_call_waits_for_approval_ends_the_answer(
    run: Any, make_window: Any, servers: SavedServers, provider: Any
) -> None:
    server = provider(tool_call=("convert_units", CONVERT))
    window = connected(make_window, servers, server.base_url, server.state.model, tools=app_tools(ToolPolicy.ASK))

    async def body() -> Any:
        finished = await ask_until_approval(window)
        window.stop_action.trigger()
        return await finished

    done = run(body(), timeout=60)
    assert done.finish_reason is FinishReason.CANCELLED
    (card,) = cards(window)
    assert card.call is not None and card.call.status is ToolStatus.CANCELLED
    assert len(server.state.bodies) == 1  # no second round went out


def test_python_goes_as_a_function_and_runs_in_the_sandbox(
    run: Any, make_window: Any, servers: SavedServers, provider: Any
) -> None:
    code = "print(6 * 7)"
    server = provider(tool_call=("python", json.dumps({"code": code})))
    tools = app_tools(ToolPolicy.ALWAYS, python=True)
    window = connected(make_window, servers, server.base_url, server.state.model, tools=tools)

    async def body() -> Any:
        await load(window, server_ref("box"))
        return await next_emission(window.generation_finished, lambda: window.send_message("6 times 7?"), 60)

    done = run(body(), timeout=90)
    assert done.finish_reason is FinishReason.STOP
    (card,) = cards(window)
    assert card.call is not None and card.call.name == "python" and card.call.arguments == code
    assert card.call.status is ToolStatus.OK and card.call.output.strip() == "42"
    first, second = server.state.bodies
    python = first["tools"][0]["function"]
    assert python["name"] == "python" and python["parameters"]["required"] == ["code"]
    (call,) = second["messages"][-2]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"code": code}
    assert window.conversation.last.answer.startswith("The tool said 42")


def test_a_server_that_refuses_tools_says_so_and_retry_answers_without_them(
    run: Any, make_window: Any, servers: SavedServers, provider: Any, data_dir: Path
) -> None:
    server = provider(reject_tools=True)
    with ChatStore(data_dir / "history.sqlite3") as store:
        window = connected(
            make_window, servers, server.base_url, server.state.model, store=store, tools=app_tools(ToolPolicy.ASK)
        )

        async def body() -> Any:
            await load(window, server_ref("box"))
            failed = await next_emission(window.generation_finished, lambda: window.send_message("17*23?"))
            assert failed is None  # the request could not run at all
            message = window._last_assistant()
            assert isinstance(message, AssistantMessage)
            assert not message.error.isHidden() and "does not accept tools" in message.error.text()
            assert "--enable-auto-tool-choice" in message.error.text()
            assert message.regenerate_button.isVisible() and message.regenerate_button.text() == "Retry"
            return await next_emission(window.generation_finished, message.regenerate_button.click)

        done = run(body(), timeout=60)
        assert done.finish_reason is FinishReason.STOP
        assert window.conversation.last.answer == "".join(ANSWER)
        assert [("tools" in sent) for sent in server.state.bodies] == [True, False]
        assert store.get_chat(window.chat_id).thread()[-1].text == "".join(ANSWER)


def test_a_remote_models_browser_call_runs_in_the_apps_browser(
    run: Any, make_window: Any, servers: SavedServers, provider: Any, site: Site
) -> None:
    page = site.html("/rain", "<title>Rain</title><p>It rains often.</p>")
    server = provider(tool_call=("browser_open", json.dumps({"id": page})))
    settings = ToolSettings(browser_enabled=True, browse_local_hosts=True, policies={"browser": ToolPolicy.ALWAYS})
    tools = AppTools(settings, save=lambda _settings: None)
    window = connected(make_window, servers, server.base_url, server.state.model, tools=tools)

    async def body() -> Any:
        await load(window, server_ref("box"))
        return await next_emission(window.generation_finished, lambda: window.send_message("Does it rain?"))

    done = run(body(), timeout=60)
    assert done.finish_reason is FinishReason.STOP
    (card,) = cards(window)
    assert card.call is not None and card.call.recipient == "browser.open" and card.call.status is ToolStatus.OK
    first, second = server.state.bodies
    assert {"browser_search", "browser_open", "browser_find"} <= {tool["function"]["name"] for tool in first["tools"]}
    assistant, result = second["messages"][-2:]
    (call,) = assistant["tool_calls"]
    assert call["function"]["name"] == "browser_open"
    assert result["tool_call_id"] == call["id"]
    assert result["content"].startswith(f"[0] Rain ({page})") and "L0: It rains often." in result["content"]
