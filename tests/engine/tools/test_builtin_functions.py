"""The built-in functions: conversions checked against hand-computed values, bad arguments returned to the model."""

from __future__ import annotations

import asyncio
import datetime
import json

import pytest

from gpt_oss_desktop.engine.tools.arguments import BadArguments
from gpt_oss_desktop.engine.tools.base import Tool, ToolStatus
from gpt_oss_desktop.engine.tools.builtin_functions import (
    BUILTIN_FUNCTIONS,
    CONVERT_UNITS,
    GET_CURRENT_TIME,
    convert_units,
    current_time,
)


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (5, "km", "mi", 3.10685596),
        (1, "mile", "feet", 5280.0),
        (100, "C", "F", 212.0),
        (32, "fahrenheit", "celsius", 0.0),
        (0, "K", "C", -273.15),
        (2, "lb", "g", 907.18474),
        (1, "gal", "ml", 3785.411784),
    ],
)
def test_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert convert_units(value, source, target) == pytest.approx(expected)


@pytest.mark.parametrize(("source", "target"), [("km", "kg"), ("C", "m"), ("parsec", "m")])
def test_impossible_conversions_raise(source: str, target: str) -> None:
    with pytest.raises(BadArguments):
        convert_units(1, source, target)


def test_current_time_in_a_zone() -> None:
    noon_utc = datetime.datetime(2026, 7, 1, 12, 0, tzinfo=datetime.UTC)
    paris = current_time("Europe/Paris", now=noon_utc)
    assert paris == {"datetime": "2026-07-01T14:00:00+02:00", "weekday": "Wednesday", "timezone": "Europe/Paris"}
    with pytest.raises(BadArguments, match="unknown time zone"):
        current_time("Mars/Olympus", now=noon_utc)


def test_builtins_are_tools_named_in_the_functions_namespace() -> None:
    recipients = {tool.recipient for tool in BUILTIN_FUNCTIONS}
    assert recipients == {"functions." + CONVERT_UNITS.name, "functions." + GET_CURRENT_TIME.name}
    assert all(isinstance(tool, Tool) for tool in BUILTIN_FUNCTIONS)


def test_a_call_returns_json_or_an_error_for_the_model() -> None:
    convert = next(tool for tool in BUILTIN_FUNCTIONS if tool.function is CONVERT_UNITS)
    outcome = asyncio.run(convert.run('{"value": "10", "from_unit": "in", "to_unit": "cm"}'))
    assert outcome.status is ToolStatus.OK
    assert json.loads(outcome.output) == {"value": 25.4, "unit": "cm"}
    bad = asyncio.run(convert.run('{"value": true, "from_unit": "in", "to_unit": "cm"}'))
    assert bad.status is ToolStatus.BAD_ARGUMENTS and bad.output.startswith("Error: value must be a number")
