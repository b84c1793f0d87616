"""Structured output through the server with the ``openai`` SDK: Chat Completions' ``response_format`` and the
Responses API's ``text.format``. The answers are checked with the ``jsonschema`` validator; the model is a scripted
one that would answer wrongly, and everything else (prompt, guard, server) is real."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pydantic
import pytest

from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply
from tests.engine.server.conftest import StartServer, client_for

CITY: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
WRONG = '{"city": "Oslo", "population": "about 700k", "country": "Norway"}'
RIGHT = '{"city": "Oslo", "population": 709000}'


def city_model() -> ScriptedModel:
    # Would answer WRONG (a string for the integer, a key the schema does not have); RIGHT is its next choice.
    return ScriptedModel.preferring(harmony_reply("The capital.", WRONG), harmony_reply("The capital.", RIGHT))


def test_chat_completions_hold_the_answer_to_a_json_schema(start_server: StartServer) -> None:
    client = client_for(start_server(city_model()))
    messages: Any = [{"role": "user", "content": "Norway's capital, as JSON."}]
    free = client.chat.completions.create(model="demo", messages=messages)
    assert free.choices[0].message.content == WRONG
    schema_format: Any = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}
    held = client.chat.completions.create(model="demo", messages=messages, response_format=schema_format)
    answer = json.loads(held.choices[0].message.content or "")
    jsonschema.validate(answer, CITY)
    assert answer == json.loads(RIGHT) and held.choices[0].finish_reason == "stop"
    assert held.choices[0].message.reasoning == "The capital."  # type: ignore[attr-defined]


def test_a_streamed_answer_is_held_too(start_server: StartServer) -> None:
    client = client_for(start_server(city_model()))
    stream = client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "Norway's capital, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": CITY}},
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    jsonschema.validate(json.loads(text), CITY)


def test_json_mode_gives_a_json_object(start_server: StartServer) -> None:
    prose = harmony_reply("Answer.", "Oslo, of course.")
    fallback = harmony_reply("Answer.", '{"answer": "Oslo"}')
    client = client_for(start_server(ScriptedModel.preferring(prose, fallback)))
    reply = client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "Capital of Norway?"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"answer": "Oslo"}


def test_the_responses_api_holds_text_format_and_echoes_it(start_server: StartServer) -> None:
    client = client_for(start_server(city_model()))
    text_format: Any = {"format": {"type": "json_schema", "name": "city", "schema": CITY, "strict": True}}
    response = client.responses.create(model="demo", input="Norway's capital, as JSON.", text=text_format)
    jsonschema.validate(json.loads(response.output_text), CITY)
    assert response.text.format.type == "json_schema"  # type: ignore[union-attr]
    assert client.responses.retrieve(response.id).text.format.name == "city"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}}, None),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "c"}}},
            "response_format.json_schema.schema",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": {"type": "array"}}}},
            "response_format.json_schema.schema",
        ),
        ({"response_format": "json"}, "response_format"),
    ],
)
def test_a_format_that_cannot_be_used_is_a_400_naming_the_field(
    start_server: StartServer, body: dict[str, Any], param: str | None
) -> None:
    server = start_server(city_model())
    request = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}], **body}
    response = httpx.post(server.base_url + "/chat/completions", json=request, timeout=60)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == (param or "response_format.json_schema.name")


def test_the_responses_api_refuses_a_bad_text_format(start_server: StartServer) -> None:
    server = start_server(city_model())
    request = {"model": "demo", "input": "Hi", "text": {"format": {"type": "json_schema", "name": "c"}}}
    response = httpx.post(server.base_url + "/responses", json=request, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["param"] == "text.format.schema"


def test_the_sdks_parse_helper_gets_its_pydantic_model_back(start_server: StartServer) -> None:
    # client.chat.completions.parse sends the pydantic model's strict schema (titles, additionalProperties false,
    # every key required) and reads the answer back into the model: the usual way clients ask for structure.
    class City(pydantic.BaseModel):
        city: str
        population: int

    client = client_for(start_server(city_model()))
    reply = client.chat.completions.parse(
        model="demo", messages=[{"role": "user", "content": "Norway's capital, as JSON."}], response_format=City
    )
    assert reply.choices[0].message.parsed == City(city="Oslo", population=709000)


def test_a_message_the_encoder_would_stall_on_is_a_400_and_the_server_serves_on(start_server: StartServer) -> None:
    # One unbroken run of 100,000 letters: openai_harmony's encoder would take ~25 s over it (quadratic), and a
    # 2 MiB run panics. It is refused before it reaches the encoder.
    server = start_server(city_model())
    request = {"model": "demo", "messages": [{"role": "user", "content": "a" * 100_000}]}
    response = httpx.post(server.base_url + "/chat/completions", json=request, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    assert "without a break" in response.json()["error"]["message"]
    ok = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}
    assert httpx.post(server.base_url + "/chat/completions", json=ok, timeout=60).status_code == 200
