"""A ``POST /v1/chat/completions`` body, read and checked into one frozen :class:`ChatRequest`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpt_oss_desktop.engine.harmony import ChatMessage, FunctionTool
from gpt_oss_desktop.engine.response_format import ResponseFormat
from gpt_oss_desktop.engine.server.chat_messages import read_messages
from gpt_oss_desktop.engine.server.errors import invalid_param
from gpt_oss_desktop.engine.server.generation_settings import GenerationSettings, read_settings
from gpt_oss_desktop.engine.server.request_fields import (
    JSONObject,
    optional_bool,
    optional_int,
    require_object,
    required_string,
)
from gpt_oss_desktop.engine.server.response_format_field import read_response_format
from gpt_oss_desktop.engine.server.tool_specs import read_tools, with_instruction


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    instructions: str | None
    tools: tuple[FunctionTool, ...]
    settings: GenerationSettings
    must_call: tuple[str, ...] = ()  # tool_choice "required" or a named function: the answer calls one of these
    response_format: ResponseFormat | None = None  # the JSON the answer is held to (structured output)
    stream: bool = False
    include_usage: bool = False


def read_chat_request(body: Any) -> ChatRequest:
    body = require_object(body, "body")
    model = required_string(body, "model")
    n = optional_int(body, "n", low=1)
    if n not in (None, 1):
        raise invalid_param(
            "n", f"This server returns one choice per request ('n' = 1), got n = {n}.", "unsupported_value"
        )
    conversation = read_messages(body.get("messages"))
    setup = read_tools(body, nested=True)
    stream = optional_bool(body, "stream", False)
    include_usage = False
    if body.get("stream_options") is not None:
        options: JSONObject = require_object(body["stream_options"], "stream_options")
        include_usage = optional_bool(options, "include_usage", False)
    return ChatRequest(
        model=model,
        messages=conversation.messages,
        instructions=with_instruction(conversation.instructions, setup.instruction),
        tools=setup.tools,
        must_call=setup.must_call,
        response_format=read_response_format(body.get("response_format"), "response_format", nested=True),
        settings=read_settings(body, max_tokens_keys=("max_tokens", "max_completion_tokens")),
        stream=stream,
        include_usage=include_usage,
    )
