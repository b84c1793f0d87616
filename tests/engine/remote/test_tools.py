"""Tools through the remote client: the app's function tools (and the python tool as a function ``python`` taking
``{"code": ...}``) go out as OpenAI ``tools``; a call streamed in chunks, its arguments split across them, comes back
as the local engine's call message; the call and its result go back as ``tool_calls`` and a ``role: tool`` message
with the call's id; a server that refuses tools says so in a typed error."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gpt_oss_desktop.engine.events import ANALYSIS, COMMENTARY, FinishReason
from gpt_oss_desktop.engine.harmony import PYTHON_TOOL, ChatMessage, FunctionTool
from gpt_oss_desktop.engine.remote.client import RemoteClient
from gpt_oss_desktop.engine.remote.errors import RemoteError, ToolsRejected, tools_refused
from gpt_oss_desktop.engine.remote.request_body import openai_messages
from gpt_oss_desktop.engine.remote.tool_wire import (
    PYTHON_FUNCTION,
    offered_functions,
    python_code,
    streamed_recipient,
)
from gpt_oss_desktop.engine.tools.builtin_functions import BUILTIN_FUNCTIONS
from tests.engine.remote.conftest import QUESTION, Answer, StartProvider, answer, connect
from tests.helpers.provider_server import ARGUMENT_PIECE_CHARS, TOOLS_REFUSED, Flavor, ProviderServer

FUNCTIONS = tuple(tool.spec for tool in BUILTIN_FUNCTIONS if tool.spec is not None)
CONVERT = '{"value": 5, "from_unit": "km", "to_unit": "mi"}'


def ask(server: ProviderServer, messages: Any = QUESTION, **options: Any) -> Answer:
    async def run() -> Answer:
        client = RemoteClient(connect(server, send_reasoning_back=options.pop("send_reasoning_back", True)))
        try:
            return await answer(client, messages, **options)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_tools_go_out_as_openai_function_tools(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM)
    ask(server, tools=FUNCTIONS, python_tool=True)
    sent = server.state.bodies[-1]["tools"]
    assert [tool["type"] for tool in sent] == ["function"] * 3
    names = [tool["function"]["name"] for tool in sent]
    assert names == ["python", "get_current_time", "convert_units"]
    python = sent[0]["function"]
    assert python["parameters"]["required"] == ["code"] and "stateless" in python["description"]
    convert = next(tool["function"] for tool in sent if tool["function"]["name"] == "convert_units")
    assert convert["parameters"] == dict(FUNCTIONS[1].parameters or {})
    ask(server)  # no tools: no "tools" field at all (a server without tool support answers as before)
    assert "tools" not in server.state.bodies[-1]


def test_a_call_streamed_in_pieces_arrives_whole_as_the_local_engines_call(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, tool_call=("convert_units", CONVERT))
    got = ask(server, tools=FUNCTIONS)
    done = got.done
    assert done.finish_reason is FinishReason.STOP and done.error is None  # "tool_calls" ends a round like <|call|>
    call = done.messages[-1]
    assert call.recipient == "functions.convert_units" and call.channel == COMMENTARY
    assert call.content[0].text == CONVERT  # type: ignore[union-attr]
    assert call.content_type == "<|constrain|>json"
    assert [m.channel for m in done.messages[:-1]] == [ANALYSIS]  # the reasoning before it, for the next round
    pieces = [d for d in got.deltas if d.recipient is not None]
    assert len(pieces) == -(-len(CONVERT) // ARGUMENT_PIECE_CHARS) > 1  # one Delta per streamed piece
    assert {d.recipient for d in pieces} == {"functions.convert_units"}
    assert "".join(d.text for d in pieces) == CONVERT and got.text == ""
    assert done.other_tokens > 0  # the call's tokens count as neither reasoning nor answer


def test_one_call_per_round_even_when_a_server_sends_two(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, tool_call=("convert_units", CONVERT), parallel_calls=2)
    got = ask(server, tools=FUNCTIONS)
    assert server.state.bodies[-1]["parallel_tool_calls"] is False  # asked for one at a time
    calls = [m for m in got.done.messages if m.recipient is not None]
    assert len(calls) == 1 and calls[0].content[0].text == CONVERT  # type: ignore[union-attr]  # the first runs
    assert "".join(d.text for d in got.deltas if d.recipient is not None) == CONVERT  # one card's worth of text


def test_python_is_a_function_taking_code_and_comes_back_as_the_builtin_tools_call(provider: StartProvider) -> None:
    code = "import math\nprint(math.factorial(5))\n"
    server = provider(Flavor.VLLM, tool_call=("python", json.dumps({"code": code})))
    got = ask(server, tools=FUNCTIONS, python_tool=True)
    call = got.done.messages[-1]
    assert call.recipient == PYTHON_TOOL and call.channel == ANALYSIS and call.content_type == "code"
    assert call.content[0].text == code  # type: ignore[union-attr]
    assert {d.recipient for d in got.deltas if d.recipient is not None} == {PYTHON_TOOL}
    # Going back, the code is wrapped again, and the result answers that call by its id.
    wire = openai_messages(
        [
            *QUESTION,
            ChatMessage.analysis("Compute it."),
            ChatMessage.tool_call(PYTHON_TOOL, code, channel=ANALYSIS, content_type="code"),
            ChatMessage.tool_result(PYTHON_TOOL, "120\n", channel=ANALYSIS),
        ],
        None,
        send_reasoning_back=True,
    )
    assistant, result = wire[-2], wire[-1]
    (sent,) = assistant["tool_calls"]
    assert sent["function"] == {"name": "python", "arguments": json.dumps({"code": code})}
    assert result == {"role": "tool", "tool_call_id": sent["id"], "content": "120\n"}
    assert assistant["reasoning"] == "Compute it."


def test_the_python_alias_steps_aside_for_a_function_of_that_name() -> None:
    mcp_python = FunctionTool("python", "An MCP server's own python tool.", {"type": "object"})
    assert offered_functions((mcp_python,), python_tool=True) == (mcp_python,)
    assert offered_functions((), python_tool=True) == (PYTHON_FUNCTION,)
    assert offered_functions(FUNCTIONS, python_tool=False) == FUNCTIONS
    assert python_code('{"code": "print(1)"}') == "print(1)"
    assert python_code("print(1)") == "print(1)"  # not the object asked for: run as sent, the model reads any error
    assert python_code('{"program": "print(1)"}') == '{"program": "print(1)"}'


def test_the_browser_is_three_functions_whose_calls_come_back_as_the_browsers(provider: StartProvider) -> None:
    arguments = json.dumps({"id": 0, "cursor": 1})
    server = provider(Flavor.VLLM, tool_call=("browser_open", arguments))
    got = ask(server, tools=FUNCTIONS, python_tool=True, browser_tool=True)
    sent = server.state.bodies[-1]["tools"]
    names = [tool["function"]["name"] for tool in sent]
    assert names == ["python", "browser_search", "browser_open", "browser_find", "get_current_time", "convert_units"]
    search = sent[1]["function"]
    assert "【{cursor}†L{line_start}(-L{line_end})?】" in search["description"]  # how to cite, in harmony's words
    assert search["parameters"]["required"] == ["query"]
    call = got.done.messages[-1]
    assert call.recipient == "browser.open" and call.channel == ANALYSIS
    assert call.content[0].text == arguments  # type: ignore[union-attr]
    assert {d.recipient for d in got.deltas if d.recipient is not None} == {"browser.open"}
    assert {d.channel for d in got.deltas if d.recipient is not None} == {ANALYSIS}
    # Going back: the call under its function name, the result answering its id.
    wire = openai_messages(
        [
            *QUESTION,
            ChatMessage.tool_call("browser.open", arguments, channel=ANALYSIS),
            ChatMessage.tool_result("browser.open", "[2] Page (https://example.org/)", channel=ANALYSIS),
        ],
        None,
        send_reasoning_back=True,
    )
    (sent_call,) = wire[-2]["tool_calls"]
    assert sent_call["function"] == {"name": "browser_open", "arguments": arguments}
    assert wire[-1]["tool_call_id"] == sent_call["id"]
    # without the browser offered, a function of that name is just a function
    assert streamed_recipient("browser_open", python=True) == "functions.browser_open"
    mcp_search = FunctionTool("browser_search", "An MCP server's search.", {"type": "object"})
    assert offered_functions((mcp_search,), python_tool=False, browser_tool=True) == (mcp_search,)


@pytest.mark.parametrize(("send_back", "flavor"), [(True, Flavor.VLLM), (False, Flavor.GROQ)])
def test_the_next_round_sends_the_call_its_result_and_the_reasoning_where_accepted(
    provider: StartProvider, send_back: bool, flavor: Flavor
) -> None:
    server = provider(flavor, tool_call=("convert_units", CONVERT))
    loop = [
        *QUESTION,
        ChatMessage.analysis("Convert with the tool."),
        ChatMessage.tool_call("functions.convert_units", CONVERT),
        ChatMessage.tool_result("functions.convert_units", '{"value": 3.106856, "unit": "mi"}'),
    ]
    got = ask(server, loop, tools=FUNCTIONS, send_reasoning_back=send_back)
    assert got.done.finish_reason is FinishReason.STOP and got.done.messages[-1].recipient is None
    assert got.text == 'The tool said {"value": 3.106856, "unit": "mi"}.'
    messages = server.state.bodies[-1]["messages"]
    assistant = messages[-2]
    assert assistant["role"] == "assistant" and assistant["content"] is None
    (call,) = assistant["tool_calls"]
    assert call["type"] == "function" and call["function"] == {"name": "convert_units", "arguments": CONVERT}
    assert messages[-1]["role"] == "tool" and messages[-1]["tool_call_id"] == call["id"]
    assert ("reasoning" in assistant) is send_back  # Groq answers 400 to reasoning in the input


def test_a_server_that_refuses_tools_says_so_and_answers_without_them(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, reject_tools=True)
    with pytest.raises(ToolsRejected) as caught:
        ask(server, tools=FUNCTIONS, python_tool=True)
    message = str(caught.value)
    assert caught.value.status == 400 and "does not accept tools" in message and "--enable-auto-tool-choice" in message
    assert "Retry answers without tools" in message
    assert ask(server).done.finish_reason is FinishReason.STOP  # the same question without tools is answered


def test_only_refusals_that_name_tools_count_as_refusing_tools() -> None:
    assert tools_refused(RemoteError(f"HTTP 400: {TOOLS_REFUSED}", status=400))
    assert tools_refused(RemoteError("HTTP 400: gpt-oss:20b does not support tools", status=400))
    assert not tools_refused(RemoteError("HTTP 400: max_tokens is too large", status=400))
    assert not tools_refused(RemoteError("HTTP 401: bad key for tool access", status=401))
    assert not tools_refused(RemoteError("HTTP 500: tool parser crashed", status=500))  # retried as a 5xx instead
