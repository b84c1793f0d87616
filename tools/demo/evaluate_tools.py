"""Tool use of the demo model on held-out problems, through the real tool loop.

Every episode runs the loop the app runs: render the conversation (render_prompt with the offered tools), generate
greedily; if the answer ends with a call, check the call, execute it, append the model's messages and the result
(``ChatMessage.tool_result`` on the call's channel; the turn's analysis is kept) and generate again from
``<|start|>assistant``; at most :data:`MAX_CALLS` calls. Python calls run through a swappable :data:`PythonExecutor`
(by default a plain subprocess; the app uses its sandbox), function calls through the app's built-in functions.

Reported by :func:`evaluate_tools`:

- ``well_formed_calls``: share of calls whose recipient is an offered tool and whose arguments are valid (python:
  the code compiles; functions: a JSON object with the schema's required fields and no unknown ones);
- ``called``: share of tool problems where the model called a tool at all, ``no_call``: share of tool-free
  questions (counting, comparing) answered without a call while the tools were offered;
- ``accuracy`` per group: the final answer equals the expected one exactly (for a tool problem, the answer built
  from what the real tool returns).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from openai_harmony import Message, TextContent

from gpt_oss_desktop.engine.events import FINAL, Done
from gpt_oss_desktop.engine.harmony import PYTHON_TOOL, TODAY, ChatMessage, ReasoningEffort, from_harmony
from gpt_oss_desktop.engine.tools.builtin_functions import BUILTIN_FUNCTIONS, FUNCTIONS_NAMESPACE
from tools.demo.data import EFFORTS, held_out_problems
from tools.demo.tool_data import APP_DEFAULT, ToolProblem, ToolSetting, held_out_tool_problems, tool_prompt

MAX_CALLS: Final = 3
PYTHON_TIMEOUT_S: Final = 5.0
# ``executor(code) -> output``: what the model reads back from a python call.
PythonExecutor = Callable[[str], str]
# ``generate(prompts) -> one Done per prompt``: greedy completions (batched or one by one).
GenerateFn = Callable[[list[list[int]]], list[Done]]


def run_python_subprocess(code: str) -> str:
    """Run ``code`` in a fresh, isolated interpreter (interim executor: no sandbox beyond ``-I`` and a time limit)."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", code], timeout=PYTHON_TIMEOUT_S, capture_output=True, text=True, check=False
        )
    except subprocess.TimeoutExpired:
        return f"Error: the program ran longer than {PYTHON_TIMEOUT_S:g} s and was stopped"
    return done.stdout + done.stderr


def run_function(name: str, arguments: str) -> str:
    """Run the built-in function ``name`` (the app's own object); an unknown name is an error result."""
    for function in BUILTIN_FUNCTIONS:
        if function.function.name == name:
            return asyncio.run(function.run(arguments)).output
    return f"Error: no tool named functions.{name}"


def call_is_well_formed(call: Message, setting: ToolSetting) -> bool:
    """The call goes to an offered tool with arguments that tool accepts (see the module docstring)."""
    recipient = call.recipient or ""
    text = "".join(c.text for c in call.content if isinstance(c, TextContent))
    if not setting.offers(recipient):
        return False
    if recipient == PYTHON_TOOL:
        try:
            compile(text, "<python call>", "exec")
        except (SyntaxError, ValueError):
            return False
        return True
    function = next(f for f in setting.functions if FUNCTIONS_NAMESPACE + f.name == recipient)
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError:
        return False
    schema = dict(function.parameters or {})
    properties = dict(schema.get("properties", {}))
    return (
        isinstance(arguments, dict)
        and all(name in arguments for name in schema.get("required", ()))
        and all(name in properties for name in arguments)
    )


@dataclass(slots=True)
class Episode:
    """One question run through the tool loop."""

    group: str
    effort: ReasoningEffort
    setting: ToolSetting
    history: list[ChatMessage]
    expected: Callable[[list[tuple[str, str, str]]], str]  # calls made [(recipient, arguments, output)] -> answer
    needs_tool: bool
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    well_formed: list[bool] = field(default_factory=list)
    final: str | None = None
    done: bool = False


def _tool_expected(problem: ToolProblem) -> Callable[[list[tuple[str, str, str]]], str]:
    """The expected answer: built from the output of the model's call when it made the expected call (so the
    current time it read counts), else from running the expected call now."""

    def same_call(recipient: str, arguments: str) -> bool:
        if recipient != problem.call.recipient:
            return False
        if recipient == PYTHON_TOOL:
            return arguments.strip() == problem.call.arguments
        try:
            return bool(json.loads(arguments) == json.loads(problem.call.arguments))
        except json.JSONDecodeError:
            return False

    def expected(calls: list[tuple[str, str, str]]) -> str:
        output = next((out for rcp, args, out in calls if same_call(rcp, args)), None)
        if output is None:
            output = execute(problem.call.recipient, problem.call.arguments, run_python_subprocess)
        answer = problem.answer(output)
        return answer.final if answer is not None else ""

    return expected


def execute(recipient: str, arguments: str, python: PythonExecutor) -> str:
    if recipient == PYTHON_TOOL:
        return python(arguments)
    return run_function(recipient.removeprefix(FUNCTIONS_NAMESPACE), arguments)


def episodes(per_family: int, setting: ToolSetting = APP_DEFAULT) -> list[Episode]:
    """The evaluation episodes: tool problems, the small arithmetic with python, and tool-free questions."""
    out: list[Episode] = []
    for family in ("python", "convert_units", "current_time"):
        for problem in held_out_tool_problems(family, per_family):
            expected = _tool_expected(problem)
            for effort in EFFORTS:
                out.append(Episode(family, effort, setting, [ChatMessage.user(problem.question)], expected, True))
    # The arithmetic family's questions need python when it is offered; counting and comparing need no tool.
    for family, needs in (("arithmetic", True), ("count", False), ("compare", False)):
        for plain in held_out_problems(family, per_family):
            for effort in EFFORTS:
                history = [ChatMessage.user(plain.question)]
                out.append(Episode(family, effort, setting, history, _fixed(plain.final), needs))
    return out


def _fixed(final: str) -> Callable[[list[tuple[str, str, str]]], str]:
    """An expected answer that does not depend on the calls made."""

    def expected(_calls: list[tuple[str, str, str]]) -> str:
        return final

    return expected


def _text(message: Message) -> str:
    return "".join(c.text for c in message.content if isinstance(c, TextContent))


def run_loop(episodes_: Sequence[Episode], generate: GenerateFn, python: PythonExecutor) -> None:
    """Run every episode to its answer (or to :data:`MAX_CALLS` calls), generating the open ones together."""
    for _ in range(MAX_CALLS + 1):
        open_ = [e for e in episodes_ if not e.done]
        if not open_:
            return
        results = generate([tool_prompt(e.history, e.setting, e.effort, TODAY) for e in open_])
        for episode, result in zip(open_, results, strict=True):
            call = result.tool_call
            if call is None or len(episode.calls) >= MAX_CALLS:
                finals = [m for m in result.messages if m.channel == FINAL and m.recipient is None]
                episode.final = _text(finals[-1]).strip() if finals else None
                episode.done = True
                continue
            recipient, arguments = call.recipient or "", _text(call)
            episode.well_formed.append(call_is_well_formed(call, episode.setting))
            if episode.setting.offers(recipient):
                output = execute(recipient, arguments, python)
            else:
                output = f"Error: no tool named {recipient}"
            episode.calls.append((recipient, arguments, output))
            episode.history += from_harmony(result.messages)
            episode.history.append(ChatMessage.tool_result(recipient, output, channel=call.channel))


def _share(flags: Sequence[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def summarize(episodes_: Sequence[Episode]) -> dict[str, Any]:
    groups = list(dict.fromkeys(e.group for e in episodes_))
    correct = {id(e): e.final is not None and e.final == e.expected(e.calls) for e in episodes_}
    by_group = {g: [e for e in episodes_ if e.group == g] for g in groups}
    needing = [e for e in episodes_ if e.needs_tool]
    free = [e for e in episodes_ if not e.needs_tool]
    return {
        "episodes": len(episodes_),
        "calls": sum(len(e.calls) for e in episodes_),
        "well_formed_calls": _share([w for e in episodes_ for w in e.well_formed]),
        "called": _share([bool(e.calls) for e in needing]),
        "no_call": _share([not e.calls for e in free]),
        "accuracy": {g: _share([correct[id(e)] for e in items]) for g, items in by_group.items()},
        "accuracy_by_effort": {
            g: {eff.value: _share([correct[id(e)] for e in items if e.effort is eff]) for eff in EFFORTS}
            for g, items in by_group.items()
        },
    }


def evaluate_tools(
    per_family: int, generate: GenerateFn, python: PythonExecutor = run_python_subprocess
) -> dict[str, Any]:
    """Run :func:`episodes` through the loop with the app's default tools and summarise them."""
    items = episodes(per_family)
    run_loop(items, generate, python)
    return summarize(items)
