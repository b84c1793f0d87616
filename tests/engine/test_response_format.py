"""Structured output (engine/response_format.py): the prompt's ``# Response Formats`` section checked against
openai_harmony's own rendering of that developer text, and the final answer held to the schema, checked with the
``jsonschema`` validator, while thinking stays free."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from openai_harmony import Message, Role, TextContent

from gpt_oss_desktop.engine.events import Done
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.harmony import ChatMessage, ChatRole, FunctionTool, render_prompt
from gpt_oss_desktop.engine.response_format import ResponseFormat
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply
from gpt_oss_desktop.engine.vocab import END, MESSAGE, RETURN, START, get_encoding

RECIPE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "dish": {"type": "string"},
        "servings": {"type": "integer"},
        "diet": {"enum": ["vegan", "vegetarian", "any"]},
    },
    "required": ["dish", "servings"],
}
FORMAT = ResponseFormat.json_schema("recipe", RECIPE, "A dish to cook.\nKeep it short.")
QUESTION = [ChatMessage(ChatRole.USER, "Suggest a dinner for four.")]
CLOCK = FunctionTool("get_time", "Time in a zone", {"type": "object", "properties": {"tz": {"type": "string"}}})


def _messages(tokens: list[int]) -> list[list[int]]:
    """The prompt's messages, each from <|start|> to its <|end|>."""
    out: list[list[int]] = []
    for token in tokens:
        if token == START:
            out.append([])
        if out:
            out[-1].append(token)
    return out


@pytest.mark.parametrize("setup", [{}, {"instructions": "Be brief."}, {"instructions": "Be.", "tools": (CLOCK,)}])
def test_the_section_ends_the_developer_message_as_harmony_renders_that_text(setup: dict[str, Any]) -> None:
    enc = get_encoding()
    plain = _messages(render_prompt(QUESTION, current_date=None, **setup))
    held = _messages(render_prompt(QUESTION, current_date=None, response_format=FORMAT, **setup))
    assert held[0] == plain[0]  # the system message as harmony wrote it (its line about functions, with tools)
    assert held[2:] == plain[1 + bool(setup) :]  # the conversation after the developer message unchanged
    developer = held[1]
    before = enc.decode_utf8(plain[1][plain[1].index(MESSAGE) + 1 : -1]) + "\n\n" if setup else ""
    section = "# Response Formats\n\n## recipe\n\n// A dish to cook.\n// Keep it short.\n" + json.dumps(
        RECIPE, separators=(",", ":")
    )
    expected = enc.render(Message.from_role_and_content(Role.DEVELOPER, TextContent(text=before + section)))
    assert developer == list(expected)


def test_json_mode_describes_any_object() -> None:
    text = get_encoding().decode_utf8(render_prompt(QUESTION, response_format=ResponseFormat.json_object()))
    assert '# Response Formats\n\n## json_object\n\n{"type":"object"}<|end|>' in text


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("two words", {"type": "object"}),
        ("", {"type": "object"}),
        ("list", {"type": "array"}),
        ("s", {"type": "string"}),
    ],
)
def test_a_format_that_cannot_be_held_is_refused(name: str, schema: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ResponseFormat.json_schema(name, schema)


def _answer(scripts: list[list[int]], response_format: ResponseFormat | None) -> Done:
    prompt = render_prompt(QUESTION, current_date=None, response_format=response_format)
    params = SamplingParams(temperature=0, max_tokens=300, response_format=response_format)
    done = list(Generator(ScriptedModel.preferring(*scripts)).stream(prompt, params))[-1]
    assert isinstance(done, Done)
    return done


def test_the_answer_is_held_to_the_schema_and_the_thinking_is_not() -> None:
    thought = "Four people {not json; pasta is easy"
    wrong = harmony_reply(thought, '{"dish": "pasta", "servings": "four", "spicy": true}')
    right = harmony_reply(thought, '{"dish": "pasta", "servings": 4}')
    free = _answer([wrong, right], None)
    held = _answer([wrong, right], FORMAT)
    assert free.messages[-1].content[0].text == '{"dish": "pasta", "servings": "four", "spicy": true}'  # type: ignore[union-attr]
    assert held.messages[0].channel == "analysis" and held.messages[0].content[0].text == thought  # type: ignore[union-attr]
    answer = json.loads(held.messages[-1].content[0].text)  # type: ignore[union-attr]
    jsonschema.validate(answer, RECIPE)
    assert answer == {"dish": "pasta", "servings": 4}
    assert held.completion_ids[-1] == RETURN


def test_an_answer_that_is_no_json_at_all_becomes_json() -> None:
    prose = harmony_reply("Easy.", "Pasta for four!")
    fallback = harmony_reply("Easy.", '{"dish": "Pasta for four", "servings": 4, "diet": "any"}')
    held = _answer([prose, fallback], FORMAT)
    jsonschema.validate(json.loads(held.messages[-1].content[0].text), RECIPE)  # type: ignore[union-attr]
    assert [m.channel for m in held.messages] == ["analysis", "final"]


def test_without_a_format_an_answer_ends_as_it_likes() -> None:
    done = _answer([harmony_reply("Easy.", "Pasta.")], None)
    assert done.messages[-1].content[0].text == "Pasta."  # type: ignore[union-attr]
    assert END in done.completion_ids  # (the analysis message's end)
