"""``POST /v1/chat/completions``, streamed (SSE chunks, then ``data: [DONE]``) and not.

Reasoning is returned in ``reasoning`` and mirrored as ``reasoning_content`` (unless the server turns the mirror
off); the answer alone is ``content``; function calls are ``tool_calls`` with ``finish_reason: "tool_calls"``.
Usage counts reasoning apart (``completion_tokens_details.reasoning_tokens``) and the prompt tokens found in the KV
cache (``prompt_tokens_details.cached_tokens``). A ``timings`` object adds time to first token, prefill time and
decode speed, which OpenAI's shape has no field for.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gpt_oss_desktop.engine.events import Done, ToolCall
from gpt_oss_desktop.engine.server import sse
from gpt_oss_desktop.engine.server.answer_assembler import AnswerAssembler, Piece, PieceKind, Usage
from gpt_oss_desktop.engine.server.chat_request import ChatRequest, read_chat_request
from gpt_oss_desktop.engine.server.errors import server_error
from gpt_oss_desktop.engine.server.http_body import read_json
from gpt_oss_desktop.engine.server.server_state import ServerState, record_usage
from gpt_oss_desktop.engine.server.serving_engine import RunningRequest


async def chat_completions(request: Request) -> Response:
    state: ServerState = request.app.state.server
    chat = read_chat_request(await read_json(request, state.config.max_body_bytes))
    state.check_model(chat.model)
    running = state.engine.start_conversation(
        chat.messages,
        chat.settings,
        instructions=chat.instructions,
        tools=chat.tools,
        must_call=chat.must_call,
        response_format=chat.response_format,
        param="messages",
    )
    reply = _Reply(state, chat)
    if chat.stream:
        return StreamingResponse(_stream(reply, running, request), media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)
    await running.feed_all(request.receive, reply.assembler, lambda _pieces: None)
    if reply.assembler.failed is not None:
        raise server_error(f"Generation failed: {reply.assembler.failed}")
    record_usage(request, reply.usage)
    return JSONResponse(reply.completion())


async def _stream(reply: _Reply, running: RunningRequest, request: Request) -> AsyncIterator[bytes]:
    yield sse.data_event(reply.chunk({"role": "assistant", "content": ""}))
    assembler = reply.assembler
    async for event in running.events():
        for piece in assembler.feed(event):
            yield sse.data_event(reply.chunk(reply.delta(piece)))
        if assembler.stopped_by_sequence:
            break
    if assembler.failed is not None:
        # Headers are sent: the error goes in the stream, in OpenAI's error shape, and the stream still ends cleanly.
        yield sse.data_event(server_error(f"Generation failed: {assembler.failed}").body())
    else:
        yield sse.data_event(reply.chunk({}, finish_reason=assembler.finish_reason()))
        if reply.chat.include_usage:
            yield sse.data_event(reply.usage_chunk())
    record_usage(request, reply.usage)
    yield sse.DONE


class _Reply:
    """One completion's id, timestamps and assembled answer, rendered as OpenAI's objects."""

    def __init__(self, state: ServerState, chat: ChatRequest) -> None:
        self.state = state
        self.chat = chat
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.assembler = AnswerAssembler(chat.settings.stop)
        self._call_ids: dict[int, str] = {}  # tool call index -> its id

    @property
    def usage(self) -> Usage | None:
        done = self.assembler.done
        return None if done is None else Usage.of(done)

    def delta(self, piece: Piece) -> dict[str, Any]:
        if piece.kind is PieceKind.REASONING:
            return self._reasoning_fields(piece.text)
        if piece.kind is PieceKind.CONTENT:
            return {"content": piece.text}
        assert piece.call is not None
        index = len(self.assembler.tool_calls) - 1
        return {"tool_calls": [{"index": index, **self._tool_call(index, piece.call)}]}

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            **self._head("chat.completion.chunk"),
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            **({"usage": None} if self.chat.include_usage else {}),
        }

    def usage_chunk(self) -> dict[str, Any]:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": self._usage()}

    def completion(self) -> dict[str, Any]:
        assembler = self.assembler
        message: dict[str, Any] = {"role": "assistant", "content": "".join(assembler.content) or None}
        if assembler.reasoning:
            message.update(self._reasoning_fields("".join(assembler.reasoning)))
        if assembler.tool_calls:
            message["tool_calls"] = [self._tool_call(i, c) for i, c in enumerate(assembler.tool_calls)]
        elif message["content"] is None:
            message["content"] = ""
        return {
            **self._head("chat.completion"),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": assembler.finish_reason()}],
            "usage": self._usage(),
            "timings": self._timings(),
        }

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.chat.model}

    def _reasoning_fields(self, text: str) -> dict[str, str]:
        if self.state.config.mirror_reasoning_content:
            return {"reasoning": text, "reasoning_content": text}
        return {"reasoning": text}

    def _tool_call(self, index: int, call: ToolCall) -> dict[str, Any]:
        call_id = self._call_ids.setdefault(index, f"call_{uuid.uuid4().hex[:24]}")
        return {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}

    def _usage(self) -> dict[str, Any] | None:
        usage = self.usage
        if usage is None:
            return None
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        }

    def _timings(self) -> dict[str, Any] | None:
        done: Done | None = self.assembler.done
        if done is None:
            return None
        return {
            "time_to_first_token_s": done.time_to_first_token,
            "time_to_first_answer_token_s": done.time_to_first_final_token,
            "prefill_s": done.prefill_seconds,
            "decode_tokens_per_s": done.decode_tokens_per_s,
        }
