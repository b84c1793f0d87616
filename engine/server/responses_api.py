"""``POST /v1/responses`` and ``GET /v1/responses/{id}``: the subset of OpenAI's Responses API that openai/gpt-oss's
reference server implements.

Input items: message, reasoning, function_call, function_call_output; ``instructions``; ``reasoning.effort``;
function tools; ``text.format`` (JSON mode, or a JSON schema the answer is held to). ``store`` (default true) keeps
the response in the SQLite :class:`~engine.server.response_store.ResponseStore`, so ``previous_response_id``
continues a conversation across server restarts. Streamed events:
``response.created``, ``response.in_progress``, the item events of :class:`~engine.server.response_output.
ResponseOutput`, then ``response.completed`` (or ``response.incomplete`` / ``response.failed``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gpt_oss_desktop.engine.harmony import FunctionTool
from gpt_oss_desktop.engine.response_format import ResponseFormat
from gpt_oss_desktop.engine.server import sse
from gpt_oss_desktop.engine.server.answer_assembler import AnswerAssembler, Usage
from gpt_oss_desktop.engine.server.errors import APIError, invalid_param, server_error
from gpt_oss_desktop.engine.server.generation_settings import GenerationSettings, read_settings
from gpt_oss_desktop.engine.server.http_body import read_json
from gpt_oss_desktop.engine.server.request_fields import optional_bool, optional_string, require_object, required_string
from gpt_oss_desktop.engine.server.response_format_field import responses_text_format
from gpt_oss_desktop.engine.server.response_items import normalise_input, read_items
from gpt_oss_desktop.engine.server.response_output import ResponseOutput, new_id
from gpt_oss_desktop.engine.server.response_store import StoredResponse, UnknownResponseError
from gpt_oss_desktop.engine.server.server_state import ServerState, record_usage
from gpt_oss_desktop.engine.server.serving_engine import RunningRequest
from gpt_oss_desktop.engine.server.tool_specs import read_tools, with_instruction


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    model: str
    input_items: tuple[dict[str, Any], ...]
    instructions: str | None
    previous_response_id: str | None
    tools: tuple[FunctionTool, ...]
    tool_instruction: str | None
    must_call: tuple[str, ...]  # tool_choice "required" or a named function: the answer calls one of these
    tool_choice: Any  # as the request gave it, echoed in the response object
    response_format: ResponseFormat | None  # text.format: the JSON the answer is held to (structured output)
    text: Any  # the request's text field, echoed in the response object
    raw_tools: tuple[Any, ...]
    settings: GenerationSettings
    stream: bool
    store: bool


def read_responses_request(body: Any) -> ResponsesRequest:
    body = require_object(body, "body")
    setup = read_tools(body, nested=False)
    return ResponsesRequest(
        model=required_string(body, "model"),
        input_items=tuple(normalise_input(body.get("input"))),
        instructions=optional_string(body, "instructions"),
        previous_response_id=optional_string(body, "previous_response_id"),
        tools=setup.tools,
        tool_instruction=setup.instruction,
        must_call=setup.must_call,
        tool_choice=setup.choice,
        response_format=responses_text_format(body),
        text=body.get("text") or {"format": {"type": "text"}},
        raw_tools=tuple(body.get("tools") or ()),
        settings=read_settings(body, max_tokens_keys=("max_output_tokens",)),
        stream=optional_bool(body, "stream", False),
        store=optional_bool(body, "store", True),
    )


async def create_response(request: Request) -> Response:
    state: ServerState = request.app.state.server
    ask = read_responses_request(await read_json(request, state.config.max_body_bytes))
    state.check_model(ask.model)
    history = await _history(state, ask.previous_response_id)
    conversation = read_items([*history, *ask.input_items])
    instructions = with_instruction(
        "\n\n".join(p for p in (ask.instructions, *conversation.instructions) if p) or None, ask.tool_instruction
    )
    running = state.engine.start_conversation(
        conversation.messages,
        ask.settings,
        instructions=instructions,
        tools=ask.tools,
        must_call=ask.must_call,
        response_format=ask.response_format,
        param="input",
    )
    run = _ResponseRun(state, ask)
    if ask.stream:
        return StreamingResponse(_stream(run, running, request), media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)
    await running.feed_all(request.receive, run.assembler, lambda pieces: [run.output.add(p) for p in pieces])
    run.output.close()
    if run.assembler.failed is not None:
        raise server_error(f"Generation failed: {run.assembler.failed}")
    await run.save()
    record_usage(request, run.usage)
    return JSONResponse(run.response())


async def get_response(request: Request) -> Response:
    state: ServerState = request.app.state.server
    response_id = request.path_params["response_id"]
    stored = await asyncio.to_thread(state.store.get, response_id)
    if stored is None:
        raise APIError(404, f"No stored response with id '{response_id}'.", param="response_id", code="not_found")
    return JSONResponse(_stored_response(stored))


async def _history(state: ServerState, previous_id: str | None) -> list[dict[str, Any]]:
    if previous_id is None:
        return []
    try:
        chain = await asyncio.to_thread(state.store.chain, previous_id)
    except UnknownResponseError as exc:
        raise invalid_param(
            "previous_response_id", f"Previous response with id '{previous_id}' not found ({exc}).", "not_found"
        ) from exc
    items: list[dict[str, Any]] = []
    for stored in chain:
        items += [*stored.input_items, *stored.output_items]
    return items


async def _stream(run: _ResponseRun, running: RunningRequest, request: Request) -> AsyncIterator[bytes]:
    output = run.output
    yield sse.typed_event(output.event({"type": "response.created", "response": run.response("in_progress")}))
    yield sse.typed_event(output.event({"type": "response.in_progress", "response": run.response("in_progress")}))
    async for event in running.events():
        for piece in run.assembler.feed(event):
            for payload in output.add(piece):
                yield sse.typed_event(payload)
        if run.assembler.stopped_by_sequence:
            break
    for payload in output.close():
        yield sse.typed_event(payload)
    status = run.status()
    if status in ("completed", "incomplete"):  # as a reply sent whole is (a failed one is never stored)
        await run.save()
    kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(status, "response.failed")
    record_usage(request, run.usage)
    yield sse.typed_event(output.event({"type": kind, "response": run.response()}))


class _ResponseRun:
    """One response being produced: ids, output items, and its object in OpenAI's shape."""

    def __init__(self, state: ServerState, ask: ResponsesRequest) -> None:
        self.state = state
        self.ask = ask
        self.id = new_id("resp")
        self.created_at = time.time()
        self.assembler = AnswerAssembler(ask.settings.stop)
        self.output = ResponseOutput()

    @property
    def usage(self) -> Usage | None:
        done = self.assembler.done
        return None if done is None else Usage.of(done)

    def status(self) -> str:
        if self.assembler.failed is not None:
            return "failed"
        return "incomplete" if self.assembler.finish_reason() == "length" else "completed"

    def response(self, status: str | None = None) -> dict[str, Any]:
        status = status or self.status()
        ask = self.ask
        return {
            "id": self.id,
            "object": "response",
            "created_at": int(self.created_at),
            "status": status,
            "model": ask.model,
            "output": [dict(item) for item in self.output.items] if status != "in_progress" else [],
            "instructions": ask.instructions,
            "previous_response_id": ask.previous_response_id,
            "reasoning": {"effort": ask.settings.effort.value, "summary": None},
            "tools": list(ask.raw_tools),
            "tool_choice": ask.tool_choice,
            "parallel_tool_calls": False,
            "temperature": ask.settings.temperature,
            "top_p": ask.settings.top_p,
            "max_output_tokens": ask.settings.max_tokens,
            "store": ask.store,
            "text": ask.text,
            "error": {"code": "server_error", "message": self.assembler.failed} if status == "failed" else None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "metadata": {},
            "usage": usage_object(self.usage) if status != "in_progress" else None,
        }

    async def save(self) -> None:
        if not self.ask.store:
            return
        usage = self.usage
        returned = self.response()
        stored = StoredResponse(
            id=self.id,
            previous_response_id=self.ask.previous_response_id,
            created_at=self.created_at,
            model=self.ask.model,
            instructions=self.ask.instructions,
            input_items=self.ask.input_items,
            output_items=tuple(dict(item) for item in self.output.items),
            usage=None if usage is None else usage_object(usage),
            status=returned["status"],
            fields={k: v for k, v in returned.items() if k not in _STORED_APART},
        )
        await asyncio.to_thread(self.state.store.save, stored)


def usage_object(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


# Response fields with a column of their own in the store; the rest are kept together (StoredResponse.fields).
_STORED_APART = frozenset(
    {"id", "object", "created_at", "status", "model", "output", "instructions", "previous_response_id", "usage"}
)


def _stored_response(stored: StoredResponse) -> dict[str, Any]:
    """The response object as its POST returned it. A response stored before statuses were recorded (schema 1)
    reads as completed and without the other fields: they were not kept."""
    return {
        **(stored.fields or {}),
        "id": stored.id,
        "object": "response",
        "created_at": int(stored.created_at),
        "status": stored.status or "completed",
        "model": stored.model,
        "output": list(stored.output_items),
        "instructions": stored.instructions,
        "previous_response_id": stored.previous_response_id,
        "store": True,
        "usage": stored.usage,
    }
