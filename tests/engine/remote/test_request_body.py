"""The conversation as Chat Completions messages (engine/remote/request_body.py), the answer's format as
``response_format``, and Retry-After parsing."""

from __future__ import annotations

import email.utils
import time

import httpx

from gpt_oss_desktop.engine.harmony import ChatMessage, ChatRole
from gpt_oss_desktop.engine.remote.failures import retry_after_seconds
from gpt_oss_desktop.engine.remote.request_body import openai_messages, response_format_field
from gpt_oss_desktop.engine.response_format import ResponseFormat


def test_two_calls_in_one_turn_get_ids_and_each_result_answers_its_own_call() -> None:
    turn = [
        ChatMessage.user("Weather in Paris and the time in Tokyo?"),
        ChatMessage.analysis("Two tools."),
        ChatMessage.tool_call("functions.get_weather", '{"city": "Paris"}'),
        ChatMessage.tool_call("functions.get_time", '{"city": "Tokyo"}'),
        ChatMessage.tool_result("functions.get_time", "09:00"),
        ChatMessage.tool_result("functions.get_weather", "21 C"),
    ]
    sent = openai_messages(turn, None, send_reasoning_back=False)
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert "reasoning" not in sent[1]  # the connection says never to send it
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["call_0", "call_1"]
    assert [(m["tool_call_id"], m["content"]) for m in sent[2:]] == [("call_1", "09:00"), ("call_0", "21 C")]


def test_a_preamble_and_the_answer_are_the_assistants_content() -> None:
    history = [
        ChatMessage.user("Hi"),
        ChatMessage(ChatRole.ASSISTANT, "Let me see. ", channel="commentary"),
        ChatMessage.final("Hello!"),
    ]
    assert openai_messages(history, None, send_reasoning_back=True)[1] == {
        "role": "assistant",
        "content": "Let me see. Hello!",
    }


def test_retry_after_in_seconds_milliseconds_or_an_http_date() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "7"})) == 7.0
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "1500", "Retry-After": "7"})) == 1.5
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= (retry_after_seconds(httpx.Headers({"Retry-After": date})) or 0) <= 30
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Headers({})) is None


def test_an_answer_format_goes_as_openais_response_format() -> None:
    assert response_format_field(ResponseFormat.json_object()) == {"type": "json_object"}
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    sent = response_format_field(ResponseFormat.json_schema("count", schema, "How many."))
    assert sent == {
        "type": "json_schema",
        "json_schema": {"name": "count", "schema": schema, "description": "How many."},
    }
