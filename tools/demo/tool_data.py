"""Synthetic tool-use conversations for the demo model: python arithmetic, unit conversion and the current time.

Each :class:`ToolProblem` is one question that needs a tool. The model reasons briefly on analysis (detail grows
with the effort, as in :mod:`tools.demo.data`), calls the tool, reads its result and answers on final:

- ``python``: large-number arithmetic; the call is a one-line program (``print(347 * 29)``) on the analysis channel
  with content type ``code``;
- ``convert``: ``functions.convert_units`` with JSON arguments whose units are the schema's (``"miles"`` -> ``mi``);
- ``time``: ``functions.get_current_time`` with the IANA zone of a city.

The offered tools (:class:`ToolSetting`) vary as in the app: python on or off, any subset of the built-in functions,
and sometimes unrelated functions (as an MCP server adds), so extra tools do not derail the model.

Results come from the real tools: the built-in functions are run through :data:`BUILTIN_FUNCTIONS` (the app's own
objects); python's output is what ``print`` of the exact integer expression writes. The messages are rendered with
:func:`engine.harmony.render_prompt` exactly as the app's tool loop renders its history (the call and its result
appended after the turn's analysis), so the model learns to emit the form the renderer writes.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from openai_harmony import HarmonyEncoding

from gpt_oss_desktop.engine.events import ANALYSIS, COMMENTARY
from gpt_oss_desktop.engine.harmony import (
    JSON_CONTENT_TYPE,
    PYTHON_CONTENT_TYPE,
    PYTHON_TOOL,
    ChatMessage,
    FunctionTool,
    ReasoningEffort,
    render_prompt,
)
from gpt_oss_desktop.engine.tools.builtin_functions import (
    BUILTIN_FUNCTIONS,
    CONVERT_UNITS,
    FUNCTIONS_NAMESPACE,
    GET_CURRENT_TIME,
    current_time,
)
from gpt_oss_desktop.engine.vocab import CALL, RETURN, get_encoding
from tools.demo.data import EFFORTS, Example, completion_tokens, final_tokens, is_held_out

TOOL_FAMILIES: Final = ("python", "convert_units", "current_time")

# Unit names a user may write, by the schema's unit (CONVERT_UNITS' description: km, mi, ft, kg, lb, l, gal, C, F).
UNIT_NAMES: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "length": {
        "km": ("km", "kilometers", "kilometres"),
        "m": ("m", "meters", "metres"),
        "cm": ("cm", "centimeters"),
        "mm": ("mm", "millimeters"),
        "mi": ("miles", "mi"),
        "ft": ("feet", "ft"),
        "in": ("inches",),
        "yd": ("yards", "yd"),
    },
    "mass": {
        "kg": ("kg", "kilograms"),
        "g": ("g", "grams"),
        "lb": ("pounds", "lb", "lbs"),
        "oz": ("ounces", "oz"),
    },
    "volume": {
        "l": ("liters", "litres", "L"),
        "ml": ("mL", "milliliters"),
        "gal": ("gallons", "gal"),
    },
    "temperature": {
        "C": ("°C", "degrees Celsius", "Celsius"),
        "F": ("°F", "degrees Fahrenheit", "Fahrenheit"),
    },
}
CITIES: Final[dict[str, str]] = {
    "Paris": "Europe/Paris", "London": "Europe/London", "Berlin": "Europe/Berlin", "Madrid": "Europe/Madrid",
    "Rome": "Europe/Rome", "Moscow": "Europe/Moscow", "Istanbul": "Europe/Istanbul", "Cairo": "Africa/Cairo",
    "Lagos": "Africa/Lagos", "Nairobi": "Africa/Nairobi", "Dubai": "Asia/Dubai", "Mumbai": "Asia/Kolkata",
    "Delhi": "Asia/Kolkata", "Bangkok": "Asia/Bangkok", "Singapore": "Asia/Singapore", "Shanghai": "Asia/Shanghai",
    "Beijing": "Asia/Shanghai", "Tokyo": "Asia/Tokyo", "Seoul": "Asia/Seoul", "Sydney": "Australia/Sydney",
    "Auckland": "Pacific/Auckland", "New York": "America/New_York", "Chicago": "America/Chicago",
    "Denver": "America/Denver", "Los Angeles": "America/Los_Angeles", "Toronto": "America/Toronto",
    "Mexico City": "America/Mexico_City", "Sao Paulo": "America/Sao_Paulo",
    "Buenos Aires": "America/Argentina/Buenos_Aires", "Honolulu": "Pacific/Honolulu",
}  # fmt: skip
# Functions an MCP server might add; offered now and then so that unrelated tools do not derail the model.
EXTRA_FUNCTIONS: Final = (
    FunctionTool("get_weather", "Get the current weather for a city.", {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    FunctionTool("search_web", "Search the web and return the top results.", {
        "type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["query"]}),
    FunctionTool("send_email", "Send an email.", {
        "type": "object", "properties": {"to": {"type": "string"}, "subject": {"type": "string"},
                                         "body": {"type": "string"}}, "required": ["to", "body"]}),
    FunctionTool("read_file", "Read a text file from the project folder.", {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    FunctionTool("list_issues", "List the open issues of a repository.", {
        "type": "object", "properties": {"repo": {"type": "string"}, "state": {"type": "string",
                                                                                "enum": ["open", "closed"]}}}),
    FunctionTool("create_event", "Add an event to the calendar.", {
        "type": "object", "properties": {"title": {"type": "string"}, "start": {"type": "string"},
                                         "minutes": {"type": "integer"}}, "required": ["title", "start"]}),
    FunctionTool("get_stock_price", "Latest price of a stock ticker.", {
        "type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]}),
    FunctionTool("translate", "Translate text into another language.", {
        "type": "object", "properties": {"text": {"type": "string"}, "target": {"type": "string"}},
        "required": ["text", "target"]}),
)  # fmt: skip
# Operand length (digits) of the wide python problems (tools.demo.mix's copy mix).
WIDE_DIGITS: Final = 5
# Share of training settings with python on / each built-in function on / unrelated functions added.
PYTHON_SHARE: Final = 0.75
BUILTIN_SHARE: Final = 0.75
EXTRA_SHARE: Final = 0.3


@dataclass(frozen=True, slots=True)
class ToolSetting:
    """The tools a prompt offers: the python tool (system message) and function tools (developer message)."""

    python: bool
    functions: tuple[FunctionTool, ...]

    @property
    def recipients(self) -> frozenset[str]:
        """Recipients the model may address: ``python`` and ``functions.NAME`` for each offered function."""
        names = {FUNCTIONS_NAMESPACE + f.name for f in self.functions}
        return frozenset(names | ({PYTHON_TOOL} if self.python else set()))

    def offers(self, recipient: str) -> bool:
        return recipient in self.recipients


NO_TOOLS: Final = ToolSetting(python=False, functions=())
APP_DEFAULT: Final = ToolSetting(python=True, functions=(GET_CURRENT_TIME, CONVERT_UNITS))


def random_setting(rng: random.Random, *, need: str | None = None) -> ToolSetting:
    """A random tool setting as users and MCP servers make it; ``need`` (a recipient) is always offered."""
    python = need == PYTHON_TOOL or rng.random() < PYTHON_SHARE
    functions = [
        f.function
        for f in BUILTIN_FUNCTIONS
        if need == FUNCTIONS_NAMESPACE + f.function.name or rng.random() < BUILTIN_SHARE
    ]
    if rng.random() < EXTRA_SHARE:
        functions += rng.sample(EXTRA_FUNCTIONS, rng.randint(1, 3))
        if rng.random() < 0.5:
            rng.shuffle(functions)
    return ToolSetting(python, tuple(functions))


@dataclass(frozen=True, slots=True)
class ToolCallSpec:
    """The call the model should make: recipient, argument text, channel and content type."""

    recipient: str
    arguments: str
    channel: str
    content_type: str

    def message(self) -> ChatMessage:
        return ChatMessage.tool_call(
            self.recipient, self.arguments, channel=self.channel, content_type=self.content_type
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """What the model writes after the tool's result: optional reasoning per effort, then the final answer."""

    analysis: dict[ReasoningEffort, str]
    final: str


@dataclass(frozen=True, slots=True)
class ToolProblem:
    """A question that needs a tool: reasoning before the call (per effort), the call, and how to answer a result.

    ``answer`` maps the tool's output text to the expected answer (None when the output is not what the tool
    returns on success); ``training_result`` is the output the real tool gives for this problem in training.
    """

    family: str
    key: str
    question: str
    analysis: dict[ReasoningEffort, str]
    call: ToolCallSpec
    training_result: str
    answer: Callable[[str], Answer | None]


def _efforts(low: str, medium: str, high: str) -> dict[ReasoningEffort, str]:
    return dict(zip(EFFORTS, (low, medium, high), strict=True))


def run_builtin(name: str, arguments: str) -> str:
    """The output the app's built-in function ``name`` gives for ``arguments`` (what the model reads)."""
    function = next(f for f in BUILTIN_FUNCTIONS if f.function.name == name)
    return asyncio.run(function.run(arguments)).output


# ------------------------------------------------------------------------------------------------- families
def _wide_operand(rng: random.Random, low: int = 1) -> int:
    """A number of 1 to :data:`WIDE_DIGITS` digits, each length equally likely (so every o200k digit-run split of
    a result, 1 to 3 digits per token and up to 4 tokens, is common)."""
    digits = rng.randint(1, WIDE_DIGITS)
    return rng.randint(max(low, 10 ** (digits - 1)), 10**digits - 1)


def _python(rng: random.Random, *, small: bool = False, wide: bool = False) -> ToolProblem:
    """Arithmetic through python: large numbers (the old family's small ones when ``small``; operands of 1 to
    :data:`WIDE_DIGITS` digits when ``wide``, whose results the model cannot guess and must copy)."""
    op = rng.choice("+-*")
    if wide:
        a, b = _wide_operand(rng, 2), _wide_operand(rng, 2)
        if op == "-" and b > a:
            a, b = b, a
    elif small:  # the ranges of tools.demo.data's arithmetic family, so its held-out problems can be asked here
        if op == "+":
            a, b = rng.randint(2, 99), rng.randint(2, 99)
        elif op == "-":
            a = rng.randint(10, 99)
            b = rng.randint(1, a)
        else:
            a, b = rng.randint(2, 12), rng.randint(2, 12)
    elif op == "+":
        a, b = rng.randint(100, 999), rng.randint(10, 999)
    elif op == "-":
        a = rng.randint(100, 999)
        b = rng.randint(10, a)
    else:
        a, b = rng.randint(13, 999), rng.randint(3, 99)
    shown = {"+": "+", "-": "-", "*": rng.choice(("×", "*", "times"))}[op]
    sym = {"+": "+", "-": "-", "*": "×"}[op]
    name = {"+": "a sum", "-": "a difference", "*": "a product"}[op]
    expr = f"{a} {shown} {b}"
    question = rng.choice((f"What is {expr}?", f"Compute {expr}.", f"Calculate {expr}.", f"What's {expr}?"))
    code = f"print({a} {op} {b})"
    analysis = _efforts(
        f"Use python for {a} {sym} {b}.",
        f"The user asks for {a} {sym} {b}. I should not guess; python computes it exactly, so I run {code}.",
        f"The user asks for {a} {sym} {b}.\nStep 1: it is {name} of {a} and {b}.\nStep 2: doing it in my head could "
        f"go wrong, so I let python compute it.\nStep 3: the program is {code}.\nThen I answer with the printed "
        "value.",
    )

    def answer(output: str) -> Answer | None:
        value = output.strip()
        if not value.lstrip("-").isdigit():
            return None
        return Answer(
            _efforts("", f"python printed {value}.", f"The program printed {value}.\nSo {a} {sym} {b} = {value}."),
            f"{a} {sym} {b} = {value}.",
        )

    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    call = ToolCallSpec(PYTHON_TOOL, code, ANALYSIS, PYTHON_CONTENT_TYPE)
    # The same key as the arithmetic family for the same problem: one held-out split for both.
    return ToolProblem("python", f"arith:{a}{op}{b}", question, analysis, call, f"{result}\n", answer)


def _convert_units(rng: random.Random) -> ToolProblem:
    kind = rng.choice(tuple(UNIT_NAMES))
    src, dst = rng.sample(tuple(UNIT_NAMES[kind]), 2)
    src_name, dst_name = rng.choice(UNIT_NAMES[kind][src]), rng.choice(UNIT_NAMES[kind][dst])
    value = rng.randint(1, 999)
    question = rng.choice(
        (
            f"Convert {value} {src_name} to {dst_name}.",
            f"How many {dst_name} are in {value} {src_name}?",
            f"What is {value} {src_name} in {dst_name}?",
        )
    )
    arguments = json.dumps({"value": value, "from_unit": src, "to_unit": dst})
    analysis = _efforts(
        f"Call convert_units for {value} {src} to {dst}.",
        f"The user wants {value} {src_name} in {dst_name}. convert_units does it; {src_name} is {src} and {dst_name} "
        f"is {dst}.",
        f"The user wants {value} {src_name} in {dst_name}.\nStep 1: the tool convert_units converts {kind}.\nStep 2: "
        f"its units: {src_name} is {src}, {dst_name} is {dst}.\nStep 3: call it with value {value}.\nThen I answer "
        "with the value it returns.",
    )

    def answer(output: str) -> Answer | None:
        try:
            result = json.loads(output)
        except json.JSONDecodeError:
            return None
        if not isinstance(result, dict) or "value" not in result:
            return None
        shown = json.dumps(result["value"])
        return Answer(
            _efforts("", f"convert_units returned {shown} {dst}.", f"The tool returned {shown} {dst}.\nSo {value} "
                     f"{src} = {shown} {dst}."),
            f"{value} {src} = {shown} {dst}.",
        )  # fmt: skip

    call = ToolCallSpec(FUNCTIONS_NAMESPACE + CONVERT_UNITS.name, arguments, COMMENTARY, JSON_CONTENT_TYPE)
    key = f"units:{src}:{dst}:{value}"
    return ToolProblem(
        "convert_units", key, question, analysis, call, run_builtin(CONVERT_UNITS.name, arguments), answer
    )


def _current_time(rng: random.Random, now: datetime.datetime | None = None) -> ToolProblem:
    """The time in a city; the training result is the real function at a random moment (``now`` when given)."""
    city = rng.choice(tuple(CITIES))
    zone = CITIES[city]
    question = rng.choice(
        (
            f"What time is it in {city}?",
            f"What's the time in {city} right now?",
            f"What day is it in {city}?",
            f"Tell me the current time in {city}.",
        )
    )
    arguments = json.dumps({"timezone": zone})
    analysis = _efforts(
        f"Call get_current_time for {zone}.",
        f"The user asks for the time in {city}. I cannot know it, so I call get_current_time; {city} is in {zone}.",
        f"The user asks for the current time in {city}.\nStep 1: I have no clock, so I use get_current_time.\n"
        f"Step 2: {city} is in the time zone {zone}.\nStep 3: call it with that zone.\nThen I answer with the time "
        "and the weekday it returns.",
    )

    def answer(output: str) -> Answer | None:
        try:
            result = json.loads(output)
            moment = datetime.datetime.fromisoformat(result["datetime"])
            weekday = result["weekday"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        when = f"{moment:%H:%M} on {weekday}, {moment:%Y-%m-%d}"
        return Answer(
            _efforts("", f"The tool says {result['datetime']}.", f"The tool says {result['datetime']}, a {weekday}."
                     f"\nSo in {city} it is {when}."),
            f"In {city} it is {when}.",
        )  # fmt: skip

    if now is None:
        start = datetime.datetime(2023, 1, 1, tzinfo=datetime.UTC)
        now = start + datetime.timedelta(seconds=rng.randrange(13 * 365 * 86400))
    result = json.dumps(current_time(zone, now=now))
    call = ToolCallSpec(FUNCTIONS_NAMESPACE + GET_CURRENT_TIME.name, arguments, COMMENTARY, JSON_CONTENT_TYPE)
    # The city and the moment make the problem (the zone of a city is knowledge the model must have learned).
    key = f"time:{city}:{now:%Y-%m-%dT%H:%M}"
    return ToolProblem("current_time", key, question, analysis, call, result, answer)


_MAKERS: Final[dict[str, Callable[[random.Random], ToolProblem]]] = {
    "python": _python,
    "convert_units": _convert_units,
    "current_time": _current_time,
}


def sample_tool_problem(
    rng: random.Random, family: str, *, held_out: bool, small: bool = False, wide: bool = False
) -> ToolProblem:
    """A random problem of ``family`` from the training or the held-out part (``small``: small python arithmetic;
    ``wide``: python arithmetic on operands of any length up to :data:`WIDE_DIGITS` digits)."""
    while True:
        problem = _python(rng, small=small, wide=wide) if small or wide else _MAKERS[family](rng)
        if is_held_out(problem.key) == held_out:
            return problem


def held_out_tool_problems(family: str, count: int, seed: int = 1234) -> list[ToolProblem]:
    """``count`` distinct held-out problems of ``family`` (distinct by problem, not by wording)."""
    rng = random.Random(f"{seed}:tools:{family}")
    out: dict[str, ToolProblem] = {}
    for _ in range(100_000):
        problem = sample_tool_problem(rng, family, held_out=True)
        out.setdefault(problem.key, problem)
        if len(out) == count:
            return list(out.values())
    raise ValueError(f"the {family} family has fewer than {count} held-out problems")


# ------------------------------------------------------------------------------------------------- rendering
def answer_tokens(answer: Answer, effort: ReasoningEffort, encoding: HarmonyEncoding | None = None) -> list[int]:
    """What the model generates after the result and ``<|start|>assistant``: [analysis, then] final, <|return|>."""
    if answer.analysis[effort]:
        return completion_tokens(answer.analysis[effort], answer.final, encoding)
    return final_tokens(answer.final, encoding)


def tool_prompt(
    messages: Sequence[ChatMessage],
    setting: ToolSetting,
    effort: ReasoningEffort,
    current_date: str | None,
    encoding: HarmonyEncoding | None = None,
) -> list[int]:
    """The prompt the app sends for ``messages`` with ``setting``'s tools (render_prompt, as the app calls it)."""
    return render_prompt(
        messages,
        effort=effort,
        python_tool=setting.python,
        tools=setting.functions or None,
        current_date=current_date,
        encoding=encoding,
    )


def render_tool_example(
    problem: ToolProblem,
    setting: ToolSetting,
    effort: ReasoningEffort,
    current_date: str | None,
    encoding: HarmonyEncoding | None = None,
) -> Example:
    """One sequence with both targets: prompt -> (analysis, call) | result | -> ([analysis,] final).

    The second part is rendered by render_prompt from the history the app's loop builds (user, analysis, call,
    result), and must start with the first prompt followed by the first target: the assertion checks that the
    call the model is trained to emit is exactly what the history renderer writes.
    """
    enc = encoding if encoding is not None else get_encoding()
    user = ChatMessage.user(problem.question)
    first = tool_prompt([user], setting, effort, current_date, enc)
    history = [
        user,
        ChatMessage.analysis(problem.analysis[effort]),
        problem.call.message(),
        ChatMessage.tool_result(problem.call.recipient, problem.training_result, channel=problem.call.channel),
    ]
    second = tool_prompt(history, setting, effort, current_date, enc)
    assert second[: len(first)] == first, "the history rendering does not extend the first prompt"
    call_end = second.index(CALL, len(first)) + 1  # the first target ends with <|call|>
    answer = problem.answer(problem.training_result)
    assert answer is not None, f"no answer for the training result {problem.training_result!r}"
    tail = answer_tokens(answer, effort, enc)
    ids = second + tail
    assert ids[-1] == RETURN
    return Example(ids, ((len(first), call_end), (len(second), len(ids))))
