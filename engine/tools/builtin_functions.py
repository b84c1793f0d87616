"""Functions the app offers the model itself, with no server to run: the current time and a unit converter.

They are small on purpose: useful to a user (the model does not know the date or time, and mixes up conversion
factors), safe to run without asking, and the functions the demo model is trained to call (tools/demo/data.py
renders them from :data:`BUILTIN_FUNCTIONS`, so training sees exactly the schema the app offers).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gpt_oss_desktop.engine.harmony import FunctionTool
from gpt_oss_desktop.engine.tools.arguments import BadArguments, bad_arguments_outcome, parse_arguments
from gpt_oss_desktop.engine.tools.base import ToolOutcome, ToolStatus

FUNCTIONS_NAMESPACE: Final = "functions."

GET_CURRENT_TIME: Final = FunctionTool(
    name="get_current_time",
    description="Get the current date and time in a time zone.",
    parameters={
        "type": "object",
        "properties": {
            "timezone": {
                "type": "string",
                "description": "An IANA time zone such as Europe/Paris or America/New_York. Default: UTC.",
            }
        },
    },
)

CONVERT_UNITS: Final = FunctionTool(
    name="convert_units",
    description="Convert a quantity between units of length, mass, volume or temperature.",
    parameters={
        "type": "object",
        "properties": {
            "value": {"type": "number"},
            "from_unit": {"type": "string", "description": "e.g. km, mi, ft, kg, lb, l, gal, C, F"},
            "to_unit": {"type": "string"},
        },
        "required": ["value", "from_unit", "to_unit"],
    },
)

# Each unit's size in its kind's base unit (metre, kilogram, litre); temperatures are converted apart.
_LINEAR_UNITS: Final[Mapping[str, tuple[str, float]]] = {
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "cm": ("length", 0.01),
    "mm": ("length", 0.001),
    "mi": ("length", 1609.344),
    "ft": ("length", 0.3048),
    "in": ("length", 0.0254),
    "yd": ("length", 0.9144),
    "kg": ("mass", 1.0),
    "g": ("mass", 0.001),
    "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.028349523125),
    "l": ("volume", 1.0),
    "ml": ("volume", 0.001),
    "gal": ("volume", 3.785411784),
}
_UNIT_ALIASES: Final[Mapping[str, str]] = {
    "meter": "m", "meters": "m", "metre": "m", "metres": "m", "kilometer": "km", "kilometers": "km",
    "kilometre": "km", "kilometres": "km", "centimeter": "cm", "centimeters": "cm", "millimeter": "mm",
    "millimeters": "mm", "mile": "mi", "miles": "mi", "foot": "ft", "feet": "ft", "inch": "in", "inches": "in",
    "yard": "yd", "yards": "yd", "kilogram": "kg", "kilograms": "kg", "gram": "g", "grams": "g", "pound": "lb",
    "pounds": "lb", "lbs": "lb", "ounce": "oz", "ounces": "oz", "liter": "l", "liters": "l", "litre": "l",
    "litres": "l", "milliliter": "ml", "milliliters": "ml", "gallon": "gal", "gallons": "gal",
    "celsius": "c", "°c": "c", "fahrenheit": "f", "°f": "f", "kelvin": "k",
}  # fmt: skip
_TEMPERATURES: Final = ("c", "f", "k")


def _unit(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BadArguments("from_unit and to_unit must be unit names such as 'km' or 'lb'")
    key = name.strip().lower()
    key = _UNIT_ALIASES.get(key, key)
    if key not in _LINEAR_UNITS and key not in _TEMPERATURES:
        raise BadArguments(f"unknown unit {name!r}")
    return key


def _to_kelvin(value: float, unit: str) -> float:
    return {"c": value + 273.15, "f": (value - 32) * 5 / 9 + 273.15, "k": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"c": value - 273.15, "f": (value - 273.15) * 9 / 5 + 32, "k": value}[unit]


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit``; raises :class:`BadArguments` for unknown or mixed kinds."""
    source, target = _unit(from_unit), _unit(to_unit)
    if (source in _TEMPERATURES) != (target in _TEMPERATURES):
        raise BadArguments(f"cannot convert {from_unit} to {to_unit}")
    if source in _TEMPERATURES:
        return _from_kelvin(_to_kelvin(value, source), target)
    (kind, size), (target_kind, target_size) = _LINEAR_UNITS[source], _LINEAR_UNITS[target]
    if kind != target_kind:
        raise BadArguments(f"cannot convert {kind} ({from_unit}) to {target_kind} ({to_unit})")
    return value * size / target_size


def _convert_units_call(arguments: Mapping[str, Any]) -> dict[str, Any]:
    value = arguments.get("value")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise BadArguments(f"value must be a number, got {value!r}") from None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadArguments("value must be a number")
    result = convert_units(float(value), arguments.get("from_unit"), arguments.get("to_unit"))  # type: ignore[arg-type]
    return {"value": round(result, 6), "unit": str(arguments.get("to_unit"))}


def current_time(timezone: str = "UTC", *, now: datetime.datetime | None = None) -> dict[str, str]:
    """The time now in ``timezone`` (IANA name), as ISO 8601 with the weekday."""
    try:
        zone = zoneinfo.ZoneInfo(timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise BadArguments(f"unknown time zone {timezone!r}; use an IANA name such as Europe/Paris") from None
    moment = (now or datetime.datetime.now(datetime.UTC)).astimezone(zone)
    return {"datetime": moment.isoformat(timespec="seconds"), "weekday": moment.strftime("%A"), "timezone": str(zone)}


def _current_time_call(arguments: Mapping[str, Any]) -> dict[str, Any]:
    timezone = arguments.get("timezone", "UTC")
    if not isinstance(timezone, str):
        raise BadArguments("timezone must be a string")
    return current_time(timezone)


@dataclass(frozen=True, slots=True)
class BuiltinFunction:
    """A function tool run in-process (it is quick and touches nothing but its arguments)."""

    function: FunctionTool
    call: Callable[[Mapping[str, Any]], Mapping[str, Any]]

    @property
    def recipient(self) -> str:
        return FUNCTIONS_NAMESPACE + self.function.name

    @property
    def spec(self) -> FunctionTool | None:
        return self.function

    async def run(self, arguments: str) -> ToolOutcome:
        started = time.perf_counter()
        try:
            result = self.call(parse_arguments(arguments))
        except BadArguments as exc:
            return bad_arguments_outcome(exc, started)
        await asyncio.sleep(0)  # a cancellation point, like every other tool
        return ToolOutcome(ToolStatus.OK, json.dumps(result), seconds=time.perf_counter() - started)


BUILTIN_FUNCTIONS: Final[tuple[BuiltinFunction, ...]] = (
    BuiltinFunction(GET_CURRENT_TIME, _current_time_call),
    BuiltinFunction(CONVERT_UNITS, _convert_units_call),
)
