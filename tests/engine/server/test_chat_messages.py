"""OpenAI chat messages become the harmony conversation openai-harmony itself renders for the same exchange."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai_harmony import (
    Author,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    RenderConversationConfig,
    Role,
    SystemContent,
    ToolDescription,
)

from gpt_oss_desktop.engine.harmony import ReasoningEffort as EngineEffort
from gpt_oss_desktop.engine.harmony import render_prompt
from gpt_oss_desktop.engine.server.chat_messages import read_messages
from gpt_oss_desktop.engine.server.errors import APIError
from gpt_oss_desktop.engine.server.tool_specs import read_tools
from gpt_oss_desktop.engine.vocab import get_encoding

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def rendered(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> list[int]:
    conversation = read_messages(messages)
    setup = read_tools({"tools": tools or []}, nested=True)
    return render_prompt(
        conversation.messages,
        effort=EngineEffort.LOW,
        instructions=conversation.instructions,
        tools=setup.tools or None,
        current_date=None,
        encoding=get_encoding(),
    )


def by_hand(messages: list[Message], tools: bool) -> list[int]:
    system = SystemContent.new().with_reasoning_effort(ReasoningEffort.LOW).with_knowledge_cutoff("2024-06")
    developer = DeveloperContent.new().with_instructions("Be brief.")
    if tools:
        spec = WEATHER["function"]
        developer = developer.with_function_tools(
            [ToolDescription.new(spec["name"], spec["description"], parameters=spec["parameters"])]  # type: ignore[index, arg-type]
        )
    conversation = Conversation.from_messages(
        [
            Message.from_role_and_content(Role.SYSTEM, system),
            Message.from_role_and_content(Role.DEVELOPER, developer),
            *messages,
        ]
    )
    config = RenderConversationConfig(auto_drop_analysis=False)
    return list(get_encoding().render_conversation_for_completion(conversation, Role.ASSISTANT, config))


def assistant(text: str, channel: str) -> Message:
    return Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel)


def test_a_tool_loop_keeps_its_reasoning_and_renders_as_harmony_does() -> None:
    arguments = json.dumps({"city": "Oslo"})
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "Need the weather tool.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 3}'},
    ]
    expected = by_hand(
        [
            Message.from_role_and_content(Role.USER, "Weather in Oslo?"),
            assistant("Need the weather tool.", "analysis"),
            assistant(arguments, "commentary")
            .with_recipient("functions.get_weather")
            .with_content_type("<|constrain|>json"),
            Message.from_author_and_content(Author.new(Role.TOOL, "functions.get_weather"), '{"temp_c": 3}')
            .with_recipient("assistant")
            .with_channel("commentary"),
        ],
        tools=True,
    )
    assert rendered(messages, [WEATHER]) == expected


def test_reasoning_of_a_finished_turn_is_dropped() -> None:
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning": "Add them."},
        {"role": "user", "content": "3+3?"},
    ]
    expected = by_hand(
        [
            Message.from_role_and_content(Role.USER, "2+2?"),
            assistant("4", "final"),
            Message.from_role_and_content(Role.USER, "3+3?"),
        ],
        tools=False,
    )
    assert rendered(messages) == expected


def test_text_parts_are_joined_and_images_refused() -> None:
    conversation = read_messages(
        [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    )
    assert conversation.messages[0].text == "ab"
    with pytest.raises(APIError) as caught:
        read_messages([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:"}}]}])
    assert caught.value.param == "messages[0].content[0].type"


def test_tool_choice_none_hides_the_tools_and_a_named_choice_keeps_only_that_one() -> None:
    other = {"type": "function", "function": {"name": "get_time", "description": "Now"}}
    assert read_tools({"tools": [WEATHER, other], "tool_choice": "none"}, nested=True).tools == ()
    named = read_tools(
        {"tools": [WEATHER, other], "tool_choice": {"type": "function", "function": {"name": "get_time"}}}, nested=True
    )
    assert [t.name for t in named.tools] == ["get_time"] and named.instruction and "get_time" in named.instruction
    with pytest.raises(APIError):
        read_tools({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, nested=True)
