"""The bridge between the asyncio server and the engine's generation loop thread.

Each request is submitted to the batcher (:class:`~engine.continuous_batcher.ContinuousBatcher`), whose loop thread
hands every event to ``loop.call_soon_threadsafe``; the handler awaits them from an :class:`asyncio.Queue`. Whatever
ends the handler (the answer is done, a stop sequence matched, the client disconnected and Starlette cancelled the
task) cancels the request, so its slot is free within one decode step.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

from openai_harmony import HarmonyEncoding
from starlette.types import Message

from gpt_oss_desktop.engine.channel_guard import ToolCallRule
from gpt_oss_desktop.engine.errors import GenerationError, PromptTextError, QueueFullError
from gpt_oss_desktop.engine.events import Done, Event
from gpt_oss_desktop.engine.harmony import ChatMessage, FunctionTool, render_prompt
from gpt_oss_desktop.engine.json_schema import CallSchemas
from gpt_oss_desktop.engine.response_format import ResponseFormat
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.server.answer_assembler import AnswerAssembler, Piece
from gpt_oss_desktop.engine.server.errors import APIError, context_exceeded, invalid_param, too_many_requests
from gpt_oss_desktop.engine.server.generation_settings import GenerationSettings

logger = logging.getLogger(__name__)

PiecesListener = Callable[[list[Piece]], object]


class RequestHandle(Protocol):
    def cancel(self) -> None: ...


class BatcherLike(Protocol):
    """The part of :class:`~engine.continuous_batcher.ContinuousBatcher` the server uses."""

    @property
    def context_length(self) -> int: ...

    def submit(
        self, prompt_ids: Sequence[int], params: SamplingParams, on_event: Callable[[Event], None] | None = None
    ) -> RequestHandle: ...


class ServingEngine:
    """What the server serves: one model under one name, its harmony encoding and the batcher that runs it."""

    def __init__(
        self, batcher: BatcherLike, *, model_id: str, encoding: HarmonyEncoding, owned_by: str = "local"
    ) -> None:
        self.batcher = batcher
        self.model_id = model_id
        self.encoding = encoding
        self.owned_by = owned_by

    @property
    def context_length(self) -> int:
        return self.batcher.context_length

    def check_prompt(self, prompt: Sequence[int], param: str) -> int:
        """The tokens left for the completion; a 400 with both counts when the prompt does not fit."""
        room = self.context_length - len(prompt)
        if room < 1:
            raise context_exceeded(len(prompt), self.context_length, param)
        return room

    def start_conversation(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        *,
        instructions: str | None,
        tools: Sequence[FunctionTool],
        param: str,
        must_call: Sequence[str] = (),
        response_format: ResponseFormat | None = None,
    ) -> RunningRequest:
        """Render a conversation as the harmony prompt, check it fits (``param`` names the request field in the 400)
        and submit it with the request's settings; with ``must_call``, the answer is a call to one of those
        functions (engine/channel_guard.py); with ``response_format``, the answer is JSON of that format (the prompt
        says so, and sampling holds it to it)."""
        try:
            prompt = render_prompt(
                messages,
                effort=settings.effort,
                instructions=instructions,
                tools=tools or None,
                response_format=response_format,
                encoding=self.encoding,
            )
        except PromptTextError as exc:  # (a run of characters the encoder would stall on)
            raise invalid_param(param, f"'{param}' cannot be encoded: {exc}.") from None
        room = self.check_prompt(prompt, param)
        # With functions offered, a call's arguments are held to JSON and to the function's parameters schema, so a
        # call the model makes parses, and the function takes it.
        params = dataclasses.replace(
            settings.sampling_params(room),
            json_calls=bool(tools),
            call_schemas=CallSchemas.for_functions(tools),
            response_format=response_format,
        )
        if must_call:
            params = dataclasses.replace(params, must_call=ToolCallRule.for_functions(self.encoding, must_call))
        return self.start(prompt, params)

    def start(self, prompt: Sequence[int], params: SamplingParams) -> RunningRequest:
        """Submit a request (on the event loop's thread). Raises a 429 when the queue is full, a 400 when the engine
        refuses the prompt: before any response is sent, so a stream never starts for a request that cannot run."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()

        def deliver(event: Event) -> None:  # on the batcher's thread
            # RuntimeError: the event loop is gone (server shutting down), so nobody is listening any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(events.put_nowait, event)

        try:
            handle = self.batcher.submit(prompt, params, deliver)
        except QueueFullError as exc:
            raise too_many_requests(exc.retry_after) from exc
        except GenerationError as exc:
            raise APIError(400, str(exc), code="invalid_prompt") from exc
        return RunningRequest(handle, events)


class RunningRequest:
    """A submitted request: its events as an async iterator, and cancel."""

    def __init__(self, handle: RequestHandle, events: asyncio.Queue[Event]) -> None:
        self._handle = handle
        self._events = events

    def cancel(self) -> None:
        self._handle.cancel()  # idempotent: a finished request ignores it; an abandoned one frees its slot

    async def events(self) -> AsyncIterator[Event]:
        """Every event up to and including :class:`Done`. Leaving early (or being cancelled) cancels the request."""
        try:
            while True:
                event = await self._events.get()
                yield event
                if isinstance(event, Done):
                    return
        finally:
            self.cancel()

    async def feed_all(
        self, receive: Callable[[], Awaitable[Message]], assembler: AnswerAssembler, on_pieces: PiecesListener
    ) -> None:
        """For a reply sent whole: feed every event to ``assembler`` (its pieces to ``on_pieces``) until Done or a
        stop sequence, cancelling the request if the client goes away meanwhile."""
        watcher = asyncio.create_task(self.cancel_on_disconnect(receive))
        try:
            async for event in self.events():
                on_pieces(assembler.feed(event))
                if assembler.stopped_by_sequence:
                    break
        finally:
            watcher.cancel()

    async def cancel_on_disconnect(self, receive: Callable[[], Awaitable[Message]]) -> None:
        """Wait for the client to go away (the body is already read), then cancel. Run as a task beside a
        non-streamed request; a stream is cancelled by Starlette itself."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                logger.debug("client disconnected; cancelling its request")
                self.cancel()
                return
