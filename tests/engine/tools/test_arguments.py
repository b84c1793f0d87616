"""The model's argument text: JSON objects read, fenced or trailed ones salvaged, the rest reported for the model."""

from __future__ import annotations

import pytest

from gpt_oss_desktop.engine.tools.arguments import BadArguments, parse_arguments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        ("   ", {}),
        ('```json\n{"a": "b"}\n```', {"a": "b"}),
        ('```\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ('{"a": 1} and then some words', {"a": 1}),
        ('Sure: {"q": "x\\"y"}', {"q": 'x"y'}),
        ('{"name": "a\\nb\\u00e9<|call|>"}', {"name": "a\nbé<|call|>"}),
    ],
)
def test_readable_arguments(text: str, expected: dict[str, object]) -> None:
    assert parse_arguments(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1, 2]", "must be a JSON object, not list"),
        ('"just a string"', "not str"),
        ("{value: 1}", "not valid JSON"),
        ('{"a": 1', "not valid JSON"),
        ("no json here", "not JSON"),
    ],
)
def test_unreadable_arguments_say_why(text: str, reason: str) -> None:
    with pytest.raises(BadArguments, match=reason):
        parse_arguments(text)
