"""The Chat Completions request for one answer: the conversation in OpenAI's message shape, the sampling
parameters, and the effort in the form the provider wants.

Earlier reasoning: :func:`engine.harmony.prune_reasoning` decides what survives (only the current turn's chain of
thought, i.e. inside a tool-call loop); it goes back on the assistant message it preceded, in the field the server
itself streams (``reasoning`` or ``reasoning_content``), and only when the connection allows it (Groq answers 400
to reasoning in the input).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gpt_oss_desktop.engine.events import FINAL
from gpt_oss_desktop.engine.harmony import ChatMessage, ChatRole, FunctionTool, ReasoningEffort, prune_reasoning
from gpt_oss_desktop.engine.remote.connection import ReasoningStyle, RemoteConnection
from gpt_oss_desktop.engine.remote.tool_wire import openai_tools, wire_call, wire_name
from gpt_oss_desktop.engine.response_format import JSON_OBJECT_SCHEMA, ResponseFormat

if TYPE_CHECKING:
    from gpt_oss_desktop.engine.sampling import SamplingParams

DEFAULT_REASONING_FIELD = "reasoning"  # what vLLM (since the rename), OpenRouter, Ollama, Groq and ours accept


def openai_messages(
    messages: Sequence[ChatMessage],
    instructions: str | None,
    *,
    send_reasoning_back: bool,
    reasoning_field: str = DEFAULT_REASONING_FIELD,
) -> list[dict[str, Any]]:
    """The conversation as Chat Completions messages.

    Consecutive assistant messages of one turn (reasoning, a preamble, tool calls) become one assistant message;
    tool calls get ids (``call_0``, ...) and each tool result answers the oldest unanswered call to its function.
    ``instructions`` go first as a system message (gpt-oss servers render it as the developer message).
    """
    out: list[dict[str, Any]] = []
    if instructions:
        out.append({"role": "system", "content": instructions})
    pending: dict[str, Any] | None = None
    unanswered: list[tuple[str, str]] = []  # (call id, function name), oldest first
    calls = 0

    def flush() -> None:
        nonlocal pending
        if pending is not None and (pending.get("content") or pending.get("tool_calls")):
            pending.setdefault("content", None if pending.get("tool_calls") else "")
            out.append(pending)
        pending = None

    for message in prune_reasoning(messages):
        if message.role is ChatRole.USER:
            flush()
            out.append({"role": "user", "content": message.text})
        elif message.role is ChatRole.TOOL:
            flush()
            name = wire_name(message.name or "")
            match = next((i for i, (_, n) in enumerate(unanswered) if n == name), 0 if unanswered else None)
            call_id = unanswered.pop(match)[0] if match is not None else f"call_{calls}"
            out.append({"role": "tool", "tool_call_id": call_id, "content": message.text})
        else:
            if pending is None:
                pending = {"role": "assistant"}
            if message.is_prunable_reasoning:
                # prune_reasoning kept it, so it is this turn's (a tool-call loop): harmony wants it back
                if send_reasoning_back:
                    pending[reasoning_field] = pending.get(reasoning_field, "") + message.text
            elif message.recipient is not None:
                call_id = f"call_{calls}"
                calls += 1
                name, arguments = wire_call(message.recipient, message.text)
                unanswered.append((call_id, name))
                pending.setdefault("tool_calls", []).append(
                    {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                )
            else:
                pending["content"] = (pending.get("content") or "") + message.text
                if message.channel == FINAL:
                    flush()
    flush()
    return out


def chat_request(
    connection: RemoteConnection,
    messages: Sequence[ChatMessage],
    *,
    effort: ReasoningEffort,
    instructions: str | None,
    params: SamplingParams,
    reasoning_field: str = DEFAULT_REASONING_FIELD,
    tools: Sequence[FunctionTool] = (),
) -> dict[str, Any]:
    """Keyword arguments for ``AsyncOpenAI.chat.completions.create`` (streaming, usage asked for).

        ``tools``: the function tools to offer (the python tool among them already, see
        :func:`~engine.remote.tool_wire.offered_functions`); none sends no ``tools`` field at all, so a server without
        tool support answers as before. ``tool_choice`` is left to its default ("auto" with tools); parallel calls are
    turned off.

        Fields the SDK does not declare (``reasoning``, ``top_k``) go in ``extra_body``, which the SDK merges into the
        JSON body as they are. ``params.response_format`` goes as ``response_format`` (vLLM, SGLang, llama.cpp and
        OpenAI hold the answer to it themselves). ``params.reasoning_budget`` is not sent: this app enforces it on the
        logits (engine/channel_guard.py), and a server that does not know a budget field may refuse the request for
        it.
    """
    body: dict[str, Any] = {
        "model": connection.model,
        "messages": openai_messages(
            messages,
            instructions,
            send_reasoning_back=connection.send_reasoning_back,
            reasoning_field=reasoning_field,
        ),
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if tools:
        body["tools"] = openai_tools(tools)
        body["parallel_tool_calls"] = False  # the tool loop runs one call per round, as gpt-oss makes them
    if params.seed is not None:
        body["seed"] = params.seed
    if params.response_format is not None:
        body["response_format"] = response_format_field(params.response_format)
    extra: dict[str, Any] = {}
    if params.top_k:
        extra["top_k"] = params.top_k  # vLLM, SGLang, llama.cpp and Ollama read it; others ignore it
    if connection.reasoning_style is ReasoningStyle.REASONING_OBJECT:
        extra["reasoning"] = {"effort": effort.value}
    else:
        body["reasoning_effort"] = effort.value
    if extra:
        body["extra_body"] = extra
    return body


def response_format_field(response_format: ResponseFormat) -> dict[str, Any]:
    """Chat Completions' ``response_format`` for ``response_format``: JSON mode, or the schema with its name."""
    if response_format.schema_text == JSON_OBJECT_SCHEMA and response_format.name == "json_object":
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": response_format.name, "schema": json.loads(response_format.schema_text)}
    if response_format.description:
        spec["description"] = response_format.description
    return {"type": "json_schema", "json_schema": spec}
