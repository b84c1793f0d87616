"""Typed readers for JSON request fields: each returns the value or raises a 400 :class:`APIError` naming the field.

JSON gives ``bool`` where a number is expected surprisingly often (``"temperature": true``); Python would accept it
as 1, so every number reader rejects it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gpt_oss_desktop.engine.server.errors import invalid_param, missing_param

JSONObject = Mapping[str, Any]


def require_object(value: Any, param: str) -> JSONObject:
    if not isinstance(value, Mapping):
        raise invalid_param(param, f"'{param}' must be a JSON object, got {_json_type(value)}.", "invalid_type")
    return value


def required_string(body: JSONObject, key: str, param: str | None = None) -> str:
    name = param or key
    if key not in body or body[key] is None:
        raise missing_param(name)
    value = body[key]
    if not isinstance(value, str):
        raise invalid_param(name, f"'{name}' must be a string, got {_json_type(value)}.", "invalid_type")
    return value


def optional_string(body: JSONObject, key: str, param: str | None = None) -> str | None:
    if body.get(key) is None:
        return None
    return required_string(body, key, param)


def optional_bool(body: JSONObject, key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_param(key, f"'{key}' must be true or false, got {_json_type(value)}.", "invalid_type")
    return value


def optional_number(
    body: JSONObject,
    key: str,
    *,
    low: float,
    high: float,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float | None:
    """A finite number in the given interval, or None when absent/null."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid_param(key, f"'{key}' must be a number, got {_json_type(value)}.", "invalid_type")
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        interval = f"{'[' if low_inclusive else '('}{_fmt(low)}, {_fmt(high)}{']' if high_inclusive else ')'}"
        raise invalid_param(key, f"'{key}' must be in {interval}, got {value}.")
    return float(value)


def optional_int(body: JSONObject, key: str, *, low: int, high: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise invalid_param(key, f"'{key}' must be an integer, got {_json_type(value)}.", "invalid_type")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise invalid_param(key, f"'{key}' must be an integer {bound}, got {value}.")
    return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
