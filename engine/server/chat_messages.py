"""Chat Completions ``messages`` as the engine's conversation (developer instructions + :class:`ChatMessage` s).

How each role maps onto harmony:
- ``system`` and ``developer``: their text becomes the developer message's instructions (the harmony system
  message is the engine's own: effort, knowledge cutoff, date). Several are joined in order.
- ``user``: a user message (text parts only; an image part is a clear 400, gpt-oss reads text).
- ``assistant``: its ``reasoning`` (or ``reasoning_content``, the other name clients use) as an analysis message,
  then either its ``tool_calls`` (one commentary message per call, ``to=functions.NAME`` ``<|constrain|>json``,
  with any ``content`` before them as a commentary preamble) or its ``content`` as the final answer.
- ``tool``: the result of the call with that ``tool_call_id``, as a message from ``functions.NAME`` to the assistant.

Earlier reasoning is then kept or dropped by :func:`engine.harmony.render_prompt`: kept inside the current tool-call
loop (after the last user message), dropped from turns that ended with a final answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gpt_oss_desktop.engine.events import COMMENTARY
from gpt_oss_desktop.engine.harmony import ChatMessage, ChatRole
from gpt_oss_desktop.engine.server.errors import invalid_param, missing_param
from gpt_oss_desktop.engine.server.request_fields import require_object

_FUNCTIONS = "functions."


@dataclass(frozen=True, slots=True)
class Conversation:
    instructions: str | None
    messages: tuple[ChatMessage, ...]


def read_messages(raw: Any) -> Conversation:
    if raw is None:
        raise missing_param("messages")
    if not isinstance(raw, list) or not raw:
        raise invalid_param("messages", "'messages' must be a non-empty array.", "invalid_type")
    instructions: list[str] = []
    out: list[ChatMessage] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, for the tool messages that answer them
    for index, item in enumerate(raw):
        param = f"messages[{index}]"
        message = require_object(item, param)
        role = message.get("role")
        if role in ("system", "developer"):
            text = content_text(message.get("content"), f"{param}.content")
            if text:
                instructions.append(text)
        elif role == "user":
            out.append(ChatMessage.user(content_text(message.get("content"), f"{param}.content")))
        elif role == "assistant":
            out.extend(_assistant(message, param, call_names))
        elif role == "tool":
            out.append(_tool_result(message, param, call_names))
        else:
            raise invalid_param(
                f"{param}.role", f"'{param}.role' must be system, developer, user, assistant or tool, got {role!r}."
            )
    if not any(m.role is ChatRole.USER for m in out):
        raise invalid_param("messages", "'messages' must contain at least one user message.")
    return Conversation("\n\n".join(instructions) or None, tuple(out))


def content_text(content: Any, param: str, *, part_types: Sequence[str] = ("text",)) -> str:
    """The text of a message's ``content``: a string, or an array of text parts (joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_param(param, f"'{param}' must be a string or an array of text parts.", "invalid_type")
    texts: list[str] = []
    for i, part in enumerate(content):
        part_obj = require_object(part, f"{param}[{i}]")
        kind = part_obj.get("type")
        if kind not in part_types:
            raise invalid_param(
                f"{param}[{i}].type",
                f"Content parts of type {kind!r} are not supported: gpt-oss reads text only.",
                "unsupported_value",
            )
        text = part_obj.get("text")
        if not isinstance(text, str):
            raise invalid_param(f"{param}[{i}].text", f"'{param}[{i}].text' must be a string.", "invalid_type")
        texts.append(text)
    return "".join(texts)


def _assistant(message: Any, param: str, call_names: dict[str, str]) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    reasoning = message.get("reasoning")
    key = "reasoning"
    if reasoning is None:
        reasoning, key = message.get("reasoning_content"), "reasoning_content"
    if reasoning is not None:
        if not isinstance(reasoning, str):
            raise invalid_param(f"{param}.{key}", f"'{param}.{key}' must be a string.", "invalid_type")
        if reasoning:
            out.append(ChatMessage.analysis(reasoning))
    text = content_text(message.get("content"), f"{param}.content")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise invalid_param(f"{param}.tool_calls", f"'{param}.tool_calls' must be an array.", "invalid_type")
    if not calls:
        out.append(ChatMessage.final(text))
        return out
    if text:  # words said before calling (harmony's commentary preamble)
        out.append(ChatMessage(ChatRole.ASSISTANT, text, channel=COMMENTARY))
    for i, raw_call in enumerate(calls):
        call_param = f"{param}.tool_calls[{i}]"
        call = require_object(raw_call, call_param)
        function = require_object(call.get("function"), f"{call_param}.function")
        name, arguments = function.get("name"), function.get("arguments", "")
        if not isinstance(name, str) or not name:
            raise invalid_param(f"{call_param}.function.name", "A tool call needs the function's name.")
        if not isinstance(arguments, str):
            raise invalid_param(
                f"{call_param}.function.arguments", "Tool call arguments must be a JSON string.", "invalid_type"
            )
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id:
            call_names[call_id] = name
        out.append(ChatMessage.tool_call(_FUNCTIONS + name, arguments))
    return out


def _tool_result(message: Any, param: str, call_names: dict[str, str]) -> ChatMessage:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise missing_param(f"{param}.tool_call_id")
    name = call_names.get(call_id)
    if name is None:
        raise invalid_param(
            f"{param}.tool_call_id",
            f"'{param}.tool_call_id' is {call_id!r}, but no earlier assistant message made a call with that id.",
        )
    return ChatMessage.tool_result(_FUNCTIONS + name, content_text(message.get("content"), f"{param}.content"))
