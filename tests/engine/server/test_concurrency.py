"""Concurrent requests share decode steps (continuous batching) without changing anyone's tokens; a client that goes
away frees its slot; a full queue is a 429 with Retry-After."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import torch

from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply
from gpt_oss_desktop.engine.server.runner import RunningServer
from tests.engine.server.conftest import StartServer, client_for

QUESTIONS = [
    "What is 2+3?",
    "What is 12 times 4?",
    "How many legs do 3 cats have?",
    "What is 9 minus 4?",
    "What is 7+8?",
    "What is 6 times 6?",
    "How many wheels do 2 bikes have?",
    "What is 100 divided by 4?",
]


class BatchRecorder:
    """Forwards to a real model and records how many sequences each decode call advanced."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.batch_sizes: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def decode(self, token_ids: Sequence[int], cache: Any, slots: Sequence[int]) -> torch.Tensor:
        self.batch_sizes.append(len(slots))
        return self._model.decode(token_ids, cache, slots)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_eight_concurrent_streams_equal_eight_sequential_runs(demo_model: Any, start_server: StartServer) -> None:
    recorder = BatchRecorder(demo_model)
    client = client_for(start_server(recorder, max_concurrent=8))

    def ask(question: str) -> tuple[str, str]:
        stream = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": question}], temperature=0, max_tokens=48, stream=True
        )
        reasoning, content = [], []
        for chunk in stream:
            if chunk.choices:
                delta = chunk.choices[0].delta
                reasoning.append((delta.model_extra or {}).get("reasoning") or "")
                content.append(delta.content or "")
        return "".join(reasoning), "".join(content)

    sequential = [ask(q) for q in QUESTIONS]
    assert max(recorder.batch_sizes) == 1
    recorder.batch_sizes.clear()
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        concurrent = list(pool.map(ask, QUESTIONS))
    assert concurrent == sequential
    assert max(recorder.batch_sizes) > 1  # the streams really shared decode steps


def slow_server(start_server: StartServer, **options: Any) -> RunningServer:
    model = ScriptedModel([harmony_reply("thinking " * 200, "done")], token_seconds=0.01)
    return start_server(model, **options)


def test_a_client_that_disconnects_frees_its_slot(start_server: StartServer) -> None:
    server = slow_server(start_server, max_concurrent=1, max_waiting=0)
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=30) as response:
        lines = response.iter_lines()
        for _ in range(5):
            next(lines)
        assert server.batcher.running == 1
    # the connection is closed mid-answer: the slot frees within a step or so, and the next client is served
    wait_for(lambda: server.batcher.running == 0)
    reply = client_for(server).chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "done"


def test_a_full_queue_is_429_with_retry_after(start_server: StartServer) -> None:
    server = slow_server(start_server, max_concurrent=1, max_waiting=0)
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=30) as running:
        lines = running.iter_lines()  # kept: dropping the iterator would close the stream
        next(lines)
        busy = httpx.post(f"{server.base_url}/chat/completions", json={**body, "stream": False}, timeout=30)
        assert busy.status_code == 429
        assert int(busy.headers["retry-after"]) >= 1
        error = busy.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "queue_full"


@pytest.mark.parametrize(("chunk", "expected"), [(None, 256), (64, 64), (0, None)])
def test_the_prefill_chunk_reaches_the_batcher(
    demo_model: Any, start_server: StartServer, chunk: int | None, expected: int | None
) -> None:
    options = {} if chunk is None else {"prefill_chunk": chunk}
    assert start_server(demo_model, **options).batcher.prefill_chunk == expected
