"""Responses-API items (input and stored output) as the engine's conversation.

Item types read: ``message`` (user; system/developer become instructions; assistant ``output_text`` becomes a
final answer), ``reasoning`` (its ``reasoning_text`` content, else its summary, as analysis), ``function_call`` and
``function_call_output`` (matched by ``call_id``). A plain string ``input`` is one user message. Earlier reasoning is
kept or dropped by :func:`engine.harmony.render_prompt` (kept inside a tool loop, dropped after a final answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gpt_oss_desktop.engine.harmony import ChatMessage
from gpt_oss_desktop.engine.server.chat_messages import content_text
from gpt_oss_desktop.engine.server.errors import invalid_param, missing_param
from gpt_oss_desktop.engine.server.request_fields import require_object

_FUNCTIONS = "functions."
_TEXT_PARTS = ("input_text", "output_text", "text")


@dataclass(frozen=True, slots=True)
class ItemConversation:
    instructions: tuple[str, ...]
    messages: tuple[ChatMessage, ...]


def normalise_input(raw: Any) -> list[dict[str, Any]]:
    """``input`` as a list of item objects (a string is one user message)."""
    if raw is None:
        raise missing_param("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise invalid_param("input", "'input' must be a string or a non-empty array of items.", "invalid_type")
    return [dict(require_object(item, f"input[{i}]")) for i, item in enumerate(raw)]


def read_items(items: Sequence[dict[str, Any]], *, param: str = "input") -> ItemConversation:
    """The conversation these items make, in order (earlier responses' items first when chaining)."""
    instructions: list[str] = []
    messages: list[ChatMessage] = []
    call_names: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"{param}[{index}]"
        kind = item.get("type", "message")  # EasyInputMessage items may omit the type
        if kind == "message":
            role = item.get("role")
            text = content_text(item.get("content"), f"{where}.content", part_types=_TEXT_PARTS)
            if role in ("system", "developer"):
                if text:
                    instructions.append(text)
            elif role == "user":
                messages.append(ChatMessage.user(text))
            elif role == "assistant":
                messages.append(ChatMessage.final(text))
            else:
                raise invalid_param(f"{where}.role", f"'{where}.role' must be user, assistant, system or developer.")
        elif kind == "reasoning":
            text = _reasoning_text(item, where)
            if text:
                messages.append(ChatMessage.analysis(text))
        elif kind == "function_call":
            name, call_id, arguments = item.get("name"), item.get("call_id"), item.get("arguments", "")
            if not isinstance(name, str) or not name or not isinstance(call_id, str) or not isinstance(arguments, str):
                raise invalid_param(where, f"'{where}' needs a string name, call_id and arguments.")
            call_names[call_id] = name
            messages.append(ChatMessage.tool_call(_FUNCTIONS + name, arguments))
        elif kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str) or call_id not in call_names:
                raise invalid_param(
                    f"{where}.call_id", f"'{where}.call_id' {call_id!r} answers no earlier function_call item."
                )
            if not isinstance(output, str):
                raise invalid_param(f"{where}.output", f"'{where}.output' must be a string.", "invalid_type")
            messages.append(ChatMessage.tool_result(_FUNCTIONS + call_names[call_id], output))
        else:
            raise invalid_param(
                f"{where}.type",
                f"Input items of type {kind!r} are not supported (message, reasoning, function_call, "
                "function_call_output are).",
                "unsupported_value",
            )
    return ItemConversation(tuple(instructions), tuple(messages))


def _reasoning_text(item: dict[str, Any], where: str) -> str:
    parts = item.get("content") or item.get("summary") or []
    if not isinstance(parts, list):
        raise invalid_param(f"{where}.content", f"'{where}.content' must be an array.", "invalid_type")
    texts = []
    for i, part in enumerate(parts):
        text = require_object(part, f"{where}.content[{i}]").get("text")
        if not isinstance(text, str):
            raise invalid_param(f"{where}.content[{i}].text", "Reasoning parts need a string 'text'.", "invalid_type")
        texts.append(text)
    return "".join(texts)
