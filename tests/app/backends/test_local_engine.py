"""LocalEngine without widgets: typed load errors, model switching frees memory, cancel, request errors, and effort
comparisons (one batch, tagged events, cancel, never beside a chat answer)."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch

from gpt_oss_desktop.app.backends.chat_backend import ChatRequest, LoadError, LoadErrorKind, RequestError
from gpt_oss_desktop.app.backends.local_engine import LocalEngine, classify_load_error
from gpt_oss_desktop.engine.errors import (
    CheckpointError,
    ConfigError,
    InsufficientMemoryError,
    MissingFilesError,
    UnsupportedCheckpointError,
    UnsupportedDeviceError,
)
from gpt_oss_desktop.engine.events import Delta, Done, FinishReason
from gpt_oss_desktop.engine.harmony import ChatMessage, FunctionTool, ReasoningEffort, assistant_turn
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.scripted_model import (
    ScriptedModel,
    harmony_reply,
    harmony_tool_call,
    model_written_tool_call,
)
from gpt_oss_desktop.engine.vocab import get_encoding


async def collect(engine: LocalEngine, request: ChatRequest) -> tuple[list[Delta], Done]:
    events = [e async for e in engine.stream(request)]
    assert isinstance(events[-1], Done)
    return events[:-1], events[-1]  # type: ignore[return-value]


def test_classify_load_errors_by_type_not_text() -> None:
    # Each engine error class gets its kind whatever its message says (tests/app/backends/test_load_error_kinds.py loads
    # real broken checkpoints; this covers every class, including those a CPU machine cannot provoke).
    missing = classify_load_error(MissingFilesError("gone", "/x"), "/x")
    assert missing.kind is LoadErrorKind.MISSING_FILES and "demo model" in missing.advice
    assert classify_load_error(CheckpointError("missing tensor", "/x/m"), "/x").kind is LoadErrorKind.INVALID_CHECKPOINT
    assert classify_load_error(ConfigError("missing num_experts", "/x"), "/x").kind is LoadErrorKind.INVALID_CHECKPOINT
    unsupported = classify_load_error(UnsupportedCheckpointError("dtype I8", "/x/m", "t"), "/x")
    assert unsupported.kind is LoadErrorKind.UNSUPPORTED_CHECKPOINT
    oom = classify_load_error(InsufficientMemoryError("not enough", "cuda:0"), "/x")
    assert oom.kind is LoadErrorKind.OUT_OF_MEMORY
    assert classify_load_error(MemoryError(), "/x").kind is LoadErrorKind.OUT_OF_MEMORY
    assert classify_load_error(torch.OutOfMemoryError("CUDA"), "/x").kind is LoadErrorKind.OUT_OF_MEMORY
    device = classify_load_error(UnsupportedDeviceError("no kernel image", "cuda:0"), "/x")
    assert device.kind is LoadErrorKind.UNSUPPORTED_DEVICE
    # Text alone decides nothing any more: an untyped error that reads like a known one is still unexpected.
    assert classify_load_error(RuntimeError("CUDA out of memory"), "/x").kind is LoadErrorKind.UNEXPECTED
    assert classify_load_error(RuntimeError("no kernel image is available"), "/x").kind is LoadErrorKind.UNEXPECTED
    assert classify_load_error(ValueError("no such file"), "/x").kind is LoadErrorKind.UNEXPECTED


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


def test_a_tool_call_reaches_the_app_as_deltas_and_done_only(run: Any) -> None:
    # The app runs no tools yet (a later issue): the engine's ToolCall event is not passed on, the call's text comes as
    # tool-call Deltas and the call itself in Done, as before.
    model = ScriptedModel([harmony_tool_call("Need weather.", "functions.get_weather", '{"city":"Bern"}')])
    engine = LocalEngine(loader=lambda _ref, _progress: model, max_context=2048)
    try:
        run(engine.load("scripted"))
        events, done = run(collect(engine, ChatRequest((ChatMessage.user("Weather?"),))))
        assert all(isinstance(e, Delta) for e in events)
        assert "".join(d.text for d in events if d.is_tool_call) == '{"city":"Bern"}'
        assert done.tool_call is not None and done.tool_call.recipient == "functions.get_weather"
    finally:
        engine.close()


@pytest.mark.parametrize("offered", [True, False])
def test_with_functions_offered_a_calls_arguments_are_held_to_json(run: Any, offered: bool) -> None:
    sloppy = model_written_tool_call("Look it up.", "get_weather", '{"city": Bern}')  # what the model would write
    careful = model_written_tool_call("Look it up.", "get_weather", '{"city": "Bern"}')
    model = ScriptedModel.preferring(sloppy, careful)
    engine = LocalEngine(loader=lambda _ref, _progress: model, max_context=2048)
    tools = (FunctionTool("get_weather", "Weather in a city"),) if offered else ()
    try:
        run(engine.load("scripted"))
        request = ChatRequest((ChatMessage.user("Weather?"),), params=SamplingParams(temperature=0), tools=tools)
        _, done = run(collect(engine, request))
        assert done.tool_call is not None
        arguments = done.tool_call.content[0].text  # type: ignore[union-attr]
        assert arguments == ('{"city": "Bern"}' if offered else '{"city": Bern}')
    finally:
        engine.close()


def test_a_calls_arguments_are_held_to_the_offered_functions_schema(run: Any) -> None:
    wrong = model_written_tool_call("Look it up.", "get_weather", '{"city": "Bern", "unit": "kelvin"}')
    right = model_written_tool_call("Look it up.", "get_weather", '{"city": "Bern", "unit": "celsius"}')
    model = ScriptedModel.preferring(wrong, right)
    engine = LocalEngine(loader=lambda _ref, _progress: model, max_context=2048)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    }
    try:
        run(engine.load("scripted"))
        tools = (FunctionTool("get_weather", "Weather in a city", schema),)
        request = ChatRequest((ChatMessage.user("Weather?"),), params=SamplingParams(temperature=0), tools=tools)
        _, done = run(collect(engine, request))
        assert done.tool_call is not None
        assert json.loads(done.tool_call.content[0].text) == {"city": "Bern", "unit": "celsius"}  # type: ignore[union-attr]
    finally:
        engine.close()


def effort_requests(text: str = "2+2?") -> list[ChatRequest]:
    return [ChatRequest((ChatMessage.user(text),), effort=e) for e in ReasoningEffort]


def test_compare_runs_one_batch_and_tags_events(run: Any) -> None:
    scripts = [
        harmony_reply("Short.", "4"),
        harmony_reply("A bit longer, thinking.", "4"),
        harmony_reply("x " * 30, "4"),
    ]
    model = ScriptedModel(scripts)
    engine = LocalEngine(loader=lambda _ref, _progress=None: model, max_context=2048)
    try:
        run(engine.load("scripted"))

        async def collect_compare() -> list[tuple[int, Delta | Done]]:
            return [pair async for pair in engine.stream_compare(effort_requests())]

        events = run(collect_compare())
        dones = {i: e for i, e in events if isinstance(e, Done)}
        assert sorted(dones) == [0, 1, 2] and all(d.finish_reason is FinishReason.STOP for d in dones.values())
        for index, script in enumerate(scripts):
            assert list(dones[index].completion_ids) == script
        reasoning = [
            "".join(e.text for i, e in events if i == n and isinstance(e, Delta) and e.is_reasoning) for n in range(3)
        ]
        assert reasoning == ["Short.", "A bit longer, thinking.", "x " * 30]
        # One prefill per effort, then decode steps shared by every running answer (not three runs in a row).
        rendered = [get_encoding().decode(prompt) for prompt in model.prompts]
        assert all(f"Reasoning: {e.value}" in r for r, e in zip(rendered, ReasoningEffort, strict=True))
        assert model.decode_batches[0] == 3 and model.decode_batches[-1] == 1
        assert len(model.decode_batches) == max(len(s) for s in scripts) - 1
    finally:
        engine.close()


def test_compare_cancel_stops_all_three(run: Any) -> None:
    model = ScriptedModel([harmony_reply("y " * 300, "late")] * 3, token_seconds=0.002)
    engine = LocalEngine(loader=lambda _ref, _progress=None: model, max_context=2048)
    try:
        run(engine.load("scripted"))

        async def cancel_after_some() -> list[Done]:
            dones: list[Done] = []
            seen = 0
            async for _index, event in engine.stream_compare(effort_requests()):
                if isinstance(event, Done):
                    dones.append(event)
                    continue
                seen += 1
                if seen == 12:
                    engine.cancel()
            return dones

        dones = run(cancel_after_some())
        assert len(dones) == 3 and all(d.finish_reason is FinishReason.CANCELLED for d in dones)
        assert all(d.completion_tokens < 60 for d in dones)
    finally:
        engine.close()


def test_compare_waits_for_a_running_chat_answer(run: Any) -> None:
    """The engine thread runs one job at a time: a comparison never decodes beside a chat answer."""
    model = ScriptedModel([harmony_reply("z " * 40, "chat")] + [harmony_reply("t", "c")] * 3, token_seconds=0.002)
    engine = LocalEngine(loader=lambda _ref, _progress=None: model, max_context=2048)
    try:
        run(engine.load("scripted"))
        order: list[str] = []

        async def chat() -> None:
            async for event in engine.stream(ChatRequest((ChatMessage.user("hi"),))):
                order.append("chat-done" if isinstance(event, Done) else "chat")

        async def compare() -> None:
            await asyncio.sleep(0.01)  # submitted while the chat answer streams
            async for _pair in engine.stream_compare(effort_requests()):
                order.append("compare")

        async def both() -> None:
            await asyncio.gather(chat(), compare())

        run(both())
        assert order.index("chat-done") < order.index("compare")
        assert order.count("compare") > 3
    finally:
        engine.close()


def test_compare_request_errors(run: Any) -> None:
    engine = LocalEngine(loader=lambda _ref, _progress=None: ScriptedModel([harmony_reply("t", "a")]), max_context=64)
    try:

        async def consume(requests: list[ChatRequest]) -> None:
            async for _pair in engine.stream_compare(requests):
                pass

        with pytest.raises(RequestError, match="no model"):
            run(consume(effort_requests()))
        run(engine.load("scripted"))
        with pytest.raises(RequestError, match="at least one"):
            run(consume([]))
        with pytest.raises(RequestError, match="context holds 64"):
            run(consume(effort_requests("long " * 200)))
    finally:
        engine.close()


def _long_chat(turns: int) -> tuple[ChatMessage, ...]:
    messages: list[ChatMessage] = []
    for i in range(turns):
        messages += [ChatMessage.user(f"Question {i}: " + "tell me more " * 20)]
        messages += assistant_turn(f"Answer {i}: " + "here is more " * 20)
    return (*messages, ChatMessage.user("And the last question?"))


def test_a_chat_longer_than_the_context_leaves_out_its_oldest_turns(run: Any) -> None:
    model = ScriptedModel([harmony_reply("Short.", "Sure.")])
    engine = LocalEngine(loader=lambda _ref, _progress=None: model, max_context=1024)
    try:
        run(engine.load("scripted"))
        request = ChatRequest(_long_chat(12), params=SamplingParams(temperature=0, max_tokens=200))
        _, done = run(collect(engine, request))
        assert done.finish_reason is FinishReason.STOP and done.dropped_turns > 0
        prompt = get_encoding().decode_utf8(model.last_prompt)
        assert "And the last question?" in prompt and "Question 0:" not in prompt
        assert f"Question {done.dropped_turns}:" in prompt  # the first turn kept
        assert len(model.last_prompt) <= 1024 - 200  # room for the answer's max_tokens
        # Turned off, the same chat fails as too long, as a model's hard limit would.
        engine.set_fit_context(False)
        with pytest.raises(RequestError, match="context"):
            run(collect(engine, request))
    finally:
        engine.close()


def test_a_chat_that_fits_is_sent_whole_and_says_so(run: Any) -> None:
    model = ScriptedModel([harmony_reply("Short.", "Sure.")])
    engine = LocalEngine(loader=lambda _ref, _progress=None: model, max_context=4096)
    try:
        run(engine.load("scripted"))
        _, done = run(collect(engine, ChatRequest(_long_chat(3), params=SamplingParams(temperature=0))))
        assert done.dropped_turns == 0 and "Question 0:" in get_encoding().decode_utf8(model.last_prompt)
    finally:
        engine.close()


def test_a_comparison_asked_with_a_long_chat_leaves_out_its_oldest_turns_too(run: Any) -> None:
    model = ScriptedModel([harmony_reply("Short.", "Sure.")])
    engine = LocalEngine(loader=lambda _ref, _progress=None: model, max_context=1024)
    try:
        run(engine.load("scripted"))
        requests = [
            ChatRequest(_long_chat(12), effort=e, params=SamplingParams(temperature=0, max_tokens=200))
            for e in ReasoningEffort
        ]

        async def dones() -> list[Done]:
            return [event async for _, event in engine.stream_compare(requests) if isinstance(event, Done)]

        finished = run(dones())
        assert len(finished) == 3 and all(
            d.dropped_turns > 0 and d.finish_reason is FinishReason.STOP for d in finished
        )
        assert all("Question 0:" not in get_encoding().decode_utf8(p) for p in model.prompts[-3:])
    finally:
        engine.close()
