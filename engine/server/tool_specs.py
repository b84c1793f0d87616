"""Function tools and ``tool_choice`` of a request, as the engine's :class:`~engine.harmony.FunctionTool` s.

Both APIs are read here: Chat Completions nests a tool as ``{"type": "function", "function": {...}}``, Responses
flattens it to ``{"type": "function", "name": ...}``. Only function tools exist on this server (the built-in
browser/python tools are the app's, in a later issue), so any other type is a clear 400.

``tool_choice``: ``"auto"`` (default) renders every tool; ``"none"`` renders none, so the model cannot call one;
``"required"`` and a named function are asked for in the developer instructions, as the reference implementation
asks, and enforced: :attr:`ToolSetup.must_call` names the functions the model's headers are held to
(engine/channel_guard.py), so the answer is a call whatever the model would have preferred.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpt_oss_desktop.engine.harmony import FunctionTool
from gpt_oss_desktop.engine.server.errors import invalid_param
from gpt_oss_desktop.engine.server.request_fields import JSONObject, require_object

# OpenAI's rule for function names; it also keeps a name one harmony recipient token run (no spaces or dots).
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ToolSetup:
    """What to render: the tools the model sees, any extra instruction ``tool_choice`` asks for, and the functions
    one of which the answer must call (empty: a call is the model's choice)."""

    tools: tuple[FunctionTool, ...] = ()
    instruction: str | None = None
    must_call: tuple[str, ...] = ()
    choice: Any = "auto"  # the request's tool_choice as given, echoed in a Responses object


def read_tools(body: JSONObject, *, nested: bool) -> ToolSetup:
    """``tools`` + ``tool_choice``; ``nested`` = Chat Completions' ``{"function": {...}}`` shape."""
    raw = body.get("tools")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise invalid_param("tools", "'tools' must be an array.", "invalid_type")
    tools = [_read_tool(item, f"tools[{i}]", nested) for i, item in enumerate(raw)]
    names = [t.name for t in tools]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise invalid_param("tools", f"Two tools are named '{duplicate}'.")
    choice = body.get("tool_choice")
    if choice is None or choice == "auto":
        return ToolSetup(tuple(tools))
    if choice == "none":
        return ToolSetup(choice=choice)
    if not tools:
        raise invalid_param("tool_choice", "'tool_choice' is set but the request has no tools.")
    if choice == "required":
        instruction = "You must call one of the functions before you answer."
        return ToolSetup(tuple(tools), instruction, tuple(names), choice)
    name = _named_choice(choice, nested)
    if name not in names:
        raise invalid_param("tool_choice", f"'tool_choice' names '{name}', which is not among the request's tools.")
    named = tuple(t for t in tools if t.name == name)
    return ToolSetup(named, f"You must call the function '{name}'.", (name,), choice)


def _read_tool(item: Any, param: str, nested: bool) -> FunctionTool:
    tool = require_object(item, param)
    if tool.get("type") != "function":
        raise invalid_param(
            f"{param}.type", f"Only function tools are supported, got type {tool.get('type')!r}.", "unsupported_value"
        )
    spec: Mapping[str, Any] = require_object(tool.get("function"), f"{param}.function") if nested else tool
    prefix = f"{param}.function" if nested else param
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise invalid_param(
            f"{prefix}.name", f"'{prefix}.name' must be 1-64 letters, digits, '_' or '-', got {name!r}."
        )
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise invalid_param(f"{prefix}.description", f"'{prefix}.description' must be a string.", "invalid_type")
    parameters = spec.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise invalid_param(f"{prefix}.parameters", f"'{prefix}.parameters' must be a JSON schema object.")
    return FunctionTool(name, description, dict(parameters) if parameters else None)


def _named_choice(choice: Any, nested: bool) -> str:
    choice = require_object(choice, "tool_choice")
    if choice.get("type") != "function":
        raise invalid_param("tool_choice", "'tool_choice' must be 'auto', 'none', 'required' or a function.")
    spec = require_object(choice.get("function"), "tool_choice.function") if nested else choice
    name = spec.get("name")
    if not isinstance(name, str):
        raise invalid_param("tool_choice", "'tool_choice' must name the function.")
    return name


def with_instruction(instructions: str | None, extra: str | None) -> str | None:
    """Developer instructions with ``tool_choice``'s instruction appended (either may be None)."""
    parts: Sequence[str] = [p for p in (instructions, extra) if p]
    return "\n\n".join(parts) or None
