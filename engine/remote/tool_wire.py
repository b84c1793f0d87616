"""Tools on the Chat Completions wire: the app's tools as OpenAI ``tools``, a streamed call back as the harmony
message the local engine would have parsed, and a call of the conversation as an assistant ``tool_calls`` entry.

The built-in python tool has no Chat Completions form (servers render only function tools into the prompt), so it
is offered as a function named ``python`` taking ``{"code": str}``. Its calls come back as the local engine's python
calls (recipient ``python``, the code itself as arguments, on ``analysis``), so the chat runs them in the same
sandbox under the same policy, shows the same card and keeps the same record; going out again they are turned back
into ``{"code": ...}``. A function tool the app itself names ``python`` (an MCP tool) wins over the alias.

The built-in browser goes the same way, as three functions ``browser_search``, ``browser_open`` and ``browser_find``
(function names cannot hold a dot) described in harmony's own words; their calls come back as the local engine's
``browser.search|open|find`` calls on ``analysis``, so the answer's own browser runs them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from openai_harmony import Message, Role, ToolNamespaceConfig

from gpt_oss_desktop.engine.events import ANALYSIS, COMMENTARY
from gpt_oss_desktop.engine.harmony import (
    JSON_CONTENT_TYPE,
    PYTHON_CONTENT_TYPE,
    PYTHON_TOOL,
    PYTHON_TOOL_DESCRIPTION,
    FunctionTool,
)
from gpt_oss_desktop.engine.tools.browser.names import BROWSER_NAMESPACE, is_browser_call

FUNCTIONS_PREFIX: Final = "functions."
_CODE: Final = "code"
# Servers render function tools into the developer message; an empty schema still needs "type": "object".
_NO_PARAMETERS: Final = {"type": "object", "properties": {}}

PYTHON_FUNCTION: Final = FunctionTool(
    PYTHON_TOOL,
    PYTHON_TOOL_DESCRIPTION + " Send the program as the `code` argument.",
    {
        "type": "object",
        "properties": {_CODE: {"type": "string", "description": "The Python 3 program to run."}},
        "required": [_CODE],
    },
)


def _browser_functions() -> tuple[FunctionTool, ...]:
    """harmony's browser namespace as function tools; the namespace's own text (cursors, how to cite) leads the
    first one's description, as it leads the namespace in the system message."""
    namespace = ToolNamespaceConfig.browser()
    return tuple(
        FunctionTool(
            f"{BROWSER_NAMESPACE}_{tool.name}",
            (namespace.description + "\n\n" if index == 0 else "") + tool.description,
            dict(tool.parameters or _NO_PARAMETERS),
        )
        for index, tool in enumerate(namespace.tools)
    )


BROWSER_FUNCTIONS: Final = _browser_functions()
_BROWSER_BY_FUNCTION: Final = {tool.name: tool.name.replace("_", ".", 1) for tool in BROWSER_FUNCTIONS}


def offered_functions(
    tools: Sequence[FunctionTool], python_tool: bool, browser_tool: bool = False
) -> tuple[FunctionTool, ...]:
    """The function tools to send: ``tools``, the python tool as :data:`PYTHON_FUNCTION` and the browser as
    :data:`BROWSER_FUNCTIONS` when they are offered (unless a function already has one of their names)."""
    aliases = [PYTHON_FUNCTION] if python_alias(tools, python_tool) else []
    if browser_alias(tools, browser_tool):
        aliases.extend(BROWSER_FUNCTIONS)
    return (*aliases, *tools)


def browser_alias(tools: Sequence[FunctionTool], browser_tool: bool) -> bool:
    """Whether calls to ``browser_search|open|find`` are the built-in browser's (see the module docstring)."""
    return browser_tool and not any(tool.name in _BROWSER_BY_FUNCTION for tool in tools)


def python_alias(tools: Sequence[FunctionTool], python_tool: bool) -> bool:
    """Whether a call to ``python`` is the built-in python tool (see the module docstring)."""
    return python_tool and all(tool.name != PYTHON_TOOL for tool in tools)


def openai_tools(tools: Sequence[FunctionTool]) -> list[dict[str, Any]]:
    """The ``tools`` field of a Chat Completions request."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": dict(tool.parameters) if tool.parameters else dict(_NO_PARAMETERS),
            },
        }
        for tool in tools
    ]


def python_code(arguments: str) -> str:
    """The program of a ``python`` function call: its ``code`` argument, or the text itself when the model sent no
    ``{"code": ...}`` object (the tool then runs what it got, and the model reads the error if it is not Python)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get(_CODE), str):
        return str(value[_CODE])
    return arguments


def streamed_recipient(name: str, *, python: bool, browser: bool = False) -> str:
    """The harmony recipient of a call the server streamed under function name ``name``."""
    if python and name == PYTHON_TOOL:
        return PYTHON_TOOL
    if browser and name in _BROWSER_BY_FUNCTION:
        return _BROWSER_BY_FUNCTION[name]
    return FUNCTIONS_PREFIX + name


def call_message(name: str, arguments: str, *, python: bool, browser: bool = False) -> Message:
    """A streamed call as the harmony message the local engine parses: a function call on ``commentary`` (JSON
    arguments), or, with ``python`` (the alias is offered), a call named ``python`` as the built-in tool's call, or
    with ``browser``, a ``browser_*`` call as the browser's (on ``analysis``, its arguments as they are)."""
    recipient = streamed_recipient(name, python=python, browser=browser)
    if is_browser_call(recipient):
        return (
            Message.from_role_and_content(Role.ASSISTANT, arguments)
            .with_channel(ANALYSIS)
            .with_recipient(recipient)
            .with_content_type(JSON_CONTENT_TYPE)
        )
    if recipient == PYTHON_TOOL:
        return (
            Message.from_role_and_content(Role.ASSISTANT, python_code(arguments))
            .with_channel(ANALYSIS)
            .with_recipient(PYTHON_TOOL)
            .with_content_type(PYTHON_CONTENT_TYPE)
        )
    return (
        Message.from_role_and_content(Role.ASSISTANT, arguments)
        .with_channel(COMMENTARY)
        .with_recipient(FUNCTIONS_PREFIX + name)
        .with_content_type(JSON_CONTENT_TYPE)
    )


def function_name(recipient: str) -> str:
    """``get_weather`` for ``functions.get_weather`` (OpenAI's tool calls name the function alone)."""
    return recipient.strip().removeprefix(FUNCTIONS_PREFIX)


def wire_call(recipient: str, arguments: str) -> tuple[str, str]:
    """``(function name, arguments)`` of a call in the conversation, as an assistant ``tool_calls`` entry: a python
    call's code goes back as ``{"code": ...}``."""
    if recipient.strip() == PYTHON_TOOL:
        return PYTHON_TOOL, json.dumps({_CODE: arguments})
    return wire_name(recipient), arguments


def wire_name(recipient: str) -> str:
    """The function name a call or a result goes under: ``get_weather``, ``python``, ``browser_open``."""
    if is_browser_call(recipient):
        return recipient.strip().replace(".", "_", 1)
    return function_name(recipient)
