"""A function-call round trip through both APIs with the ``openai`` SDK: the model calls, the client runs the tool,
the result goes back, the model answers. The model is a scripted test double (engine/scripted_model.py) until the
demo model learns tools; everything else (harmony rendering and parsing, the batcher, the server) is real."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gpt_oss_desktop.engine.scripted_model import (
    ScriptedModel,
    harmony_reply,
    harmony_tool_call,
    model_written_tool_call,
)
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.engine.server.conftest import StartServer, client_for

ARGUMENTS = json.dumps({"city": "Oslo"})
WEATHER_CHAT = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_RESPONSES = {"type": "function", **WEATHER_CHAT["function"]}  # type: ignore[dict-item]


def weather_model() -> ScriptedModel:
    return ScriptedModel.tool_loop(
        harmony_tool_call("I should look the weather up.", "functions.get_weather", ARGUMENTS),
        harmony_reply("The tool says 3 degrees.", "It is 3 °C in Oslo."),
    )


def test_chat_completions_round_trip(start_server: StartServer) -> None:
    model = weather_model()
    client = client_for(start_server(model))
    question: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.chat.completions.create(model="demo", messages=question, tools=[WEATHER_CHAT])  # type: ignore[list-item]
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None  # the arguments never leak into the answer
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    reasoning = (choice.message.model_extra or {})["reasoning"]
    assert reasoning == "I should look the weather up."

    follow_up = [
        *question,
        {"role": "assistant", "content": None, "reasoning": reasoning, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 3})},
    ]
    second = client.chat.completions.create(model="demo", messages=follow_up, tools=[WEATHER_CHAT])  # type: ignore[arg-type, list-item]
    assert second.choices[0].message.content == "It is 3 °C in Oslo."
    assert second.choices[0].finish_reason == "stop"
    # What the model read: the tool's result, and the reasoning of the call kept inside the tool loop.
    prompt = get_encoding().decode(model.prompts[-1])
    assert "functions.get_weather to=assistant" in prompt and '{"temp_c": 3}' in prompt
    assert "I should look the weather up." in prompt
    assert "namespace functions" in prompt and "type get_weather" in prompt


def test_a_streamed_call_arrives_whole_with_finish_reason_tool_calls(start_server: StartServer) -> None:
    client = client_for(start_server(weather_model()))
    chunks = list(
        client.chat.completions.create(
            model="demo",
            messages=[{"role": "user", "content": "Weather in Oslo?"}],
            tools=[WEATHER_CHAT],  # type: ignore[list-item]
            stream=True,
        )
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1 and calls[0].index == 0 and calls[0].id
    assert calls[0].function is not None and calls[0].function.arguments == ARGUMENTS
    assert all(not (c.choices and c.choices[0].delta.content) for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_responses_round_trip_with_previous_response_id(start_server: StartServer) -> None:
    client = client_for(start_server(weather_model()))
    first = client.responses.create(model="demo", input="Weather in Oslo?", tools=[WEATHER_RESPONSES])  # type: ignore[list-item]
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    call = first.output[1]
    assert call.name == "get_weather" and call.arguments == ARGUMENTS  # type: ignore[union-attr]
    result = {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"temp_c": 3})}  # type: ignore[union-attr]
    second = client.responses.create(
        model="demo",
        input=[result],
        previous_response_id=first.id,
        tools=[WEATHER_RESPONSES],  # type: ignore[list-item]
    )
    assert second.output_text == "It is 3 °C in Oslo."


TIME_CHAT = {
    "type": "function",
    "function": {"name": "get_time", "description": "Local time in a city", "parameters": {"type": "object"}},
}


def answering_model() -> ScriptedModel:
    """A model that would rather answer, then call get_weather, then get_time (engine/scripted_model.py)."""
    thought = "I could answer this myself."
    return ScriptedModel.preferring(
        harmony_reply(thought, "It is probably cold."),
        model_written_tool_call(thought, "get_weather", ARGUMENTS),
        model_written_tool_call(thought, "get_time", ARGUMENTS),
    )


@pytest.mark.parametrize(
    ("tool_choice", "called"),
    [
        ("auto", None),
        ("required", "get_weather"),
        ({"type": "function", "function": {"name": "get_time"}}, "get_time"),
    ],
)
def test_tool_choice_required_or_named_is_enforced_in_chat_completions(
    start_server: StartServer, tool_choice: Any, called: str | None
) -> None:
    client = client_for(start_server(answering_model()))
    reply = client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER_CHAT, TIME_CHAT],  # type: ignore[list-item]
        tool_choice=tool_choice,
    )
    choice = reply.choices[0]
    if called is None:  # left to itself, this model answers
        assert choice.finish_reason == "stop" and choice.message.content == "It is probably cold."
        return
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.function.name == called and call.function.arguments == ARGUMENTS  # type: ignore[union-attr]


def test_tool_choice_required_is_enforced_in_a_streamed_response(start_server: StartServer) -> None:
    client = client_for(start_server(answering_model()))
    events = list(
        client.responses.create(
            model="demo",
            input="Weather in Oslo?",
            tools=[WEATHER_RESPONSES],  # type: ignore[list-item]
            tool_choice="required",
            stream=True,
        )
    )
    final = events[-1].response  # type: ignore[union-attr]
    assert events[-1].type == "response.completed" and final.tool_choice == "required"
    assert [item.type for item in final.output] == ["reasoning", "function_call"]
    assert final.output[1].name == "get_weather" and final.output[1].arguments == ARGUMENTS  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "would_write",
    [
        '{"city": Oslo}',  # not JSON: held to JSON, the call parses
        '{"town": "Oslo"}',  # a key get_weather does not take: held to its parameters schema, it writes "city"
    ],
)
def test_with_tools_a_calls_arguments_come_back_as_the_function_takes_them(
    start_server: StartServer, would_write: str
) -> None:
    wrong = model_written_tool_call("Look it up.", "get_weather", would_write)  # what the model would write
    right = model_written_tool_call("Look it up.", "get_weather", ARGUMENTS)  # its next choice
    client = client_for(start_server(ScriptedModel.preferring(wrong, right)))
    reply = client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER_CHAT],  # type: ignore[list-item]
    )
    (call,) = reply.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
