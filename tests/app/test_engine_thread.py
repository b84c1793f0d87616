"""LocalEngine without widgets: typed load errors, model switching frees memory, cancel, request errors."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest

from app.backend import ChatRequest, LoadError, LoadErrorKind, RequestError
from app.engine_thread import LocalEngine, classify_load_error
from app.scripted_model import ScriptedModel, harmony_reply
from engine.errors import CheckpointError
from engine.events import Delta, Done, FinishReason
from engine.harmony import ChatMessage


async def collect(engine: LocalEngine, request: ChatRequest) -> tuple[list[Delta], Done]:
    events = [e async for e in engine.stream(request)]
    assert isinstance(events[-1], Done)
    return events[:-1], events[-1]  # type: ignore[return-value]


def test_classify_load_errors() -> None:
    missing = classify_load_error(CheckpointError("no such file or directory", "/x"), "/x")
    assert missing.kind is LoadErrorKind.MISSING_FILES and "demo model" in missing.advice
    truncated = classify_load_error(CheckpointError("file is 10 bytes, too short (truncated?)", "/x/m"), "/x")
    assert truncated.kind is LoadErrorKind.INVALID_CHECKPOINT
    assert classify_load_error(MemoryError(), "/x").kind is LoadErrorKind.OUT_OF_MEMORY
    oom = type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 2 GiB")
    assert classify_load_error(oom, "/x").kind is LoadErrorKind.OUT_OF_MEMORY
    gpu = RuntimeError("CUDA error: no kernel image is available for execution on the device")
    assert classify_load_error(gpu, "/x").kind is LoadErrorKind.UNSUPPORTED_DEVICE
    assert classify_load_error(ValueError("bug"), "/x").kind is LoadErrorKind.UNEXPECTED


def test_load_error_is_typed_and_engine_keeps_working(run: Any, tmp_path: Path) -> None:
    engine = LocalEngine()  # the real loader
    try:
        with pytest.raises(LoadError) as caught:
            run(engine.load(str(tmp_path / "nowhere")))
        assert caught.value.kind is LoadErrorKind.MISSING_FILES
        assert engine.info is None
        with pytest.raises(RequestError, match="no model"):
            run(collect(engine, ChatRequest((ChatMessage.user("hi"),))))
    finally:
        engine.close()


def test_switching_models_frees_the_old_one(run: Any) -> None:
    made: list[weakref.ref[ScriptedModel]] = []

    def loader(_ref: str, _progress: object) -> ScriptedModel:
        model = ScriptedModel([harmony_reply("t", "a")])
        made.append(weakref.ref(model))
        return model

    engine = LocalEngine(loader=loader, max_context=512)
    try:
        progress: list[str] = []
        run(engine.load("a", lambda _f, text: progress.append(text)))
        run(engine.load("b", lambda _f, text: progress.append(text)))
        assert "Unloading the previous model…" in progress
        gc.collect()
        assert made[0]() is None, "the first model is still referenced after switching"
        assert made[1]() is not None
        run(engine.unload())
        gc.collect()
        assert made[1]() is None and engine.info is None
    finally:
        engine.close()


def test_stream_parses_reasoning_and_answer_and_cancel_stops(run: Any) -> None:
    model = ScriptedModel([harmony_reply("Let me think.", "Four."), harmony_reply("x " * 200, "late")])
    engine = LocalEngine(loader=lambda _ref, _progress: model, max_context=2048)
    try:
        run(engine.load("scripted"))
        deltas, done = run(collect(engine, ChatRequest((ChatMessage.user("2+2?"),))))
        assert "".join(d.text for d in deltas if d.is_reasoning) == "Let me think."
        assert "".join(d.text for d in deltas if d.is_final) == "Four."
        assert done.finish_reason is FinishReason.STOP

        async def cancel_after_three() -> Done:
            seen = 0
            async for event in engine.stream(ChatRequest((ChatMessage.user("again"),))):
                if isinstance(event, Done):
                    return event
                seen += 1
                if seen == 3:
                    engine.cancel()
            raise AssertionError("no Done")

        cancelled = run(cancel_after_three())
        assert cancelled.finish_reason is FinishReason.CANCELLED
        assert cancelled.completion_tokens < 20
    finally:
        engine.close()
