"""The remote client against our own server (engine/server on the demo model, real HTTP on loopback): the answer
matches what the server itself reports, stop, effort, concurrent streams (the compare view), models, and check()."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from gpt_oss_desktop.engine.events import Done, FinishReason
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.remote.client import RemoteClient
from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.remote.errors import AuthRejected
from gpt_oss_desktop.engine.sampling import SamplingParams
from tests.engine.remote.conftest import OWN_KEY, QUESTION, Answer, answer

GREEDY = SamplingParams(temperature=0.0, max_tokens=120)


def client_for(server: Any, key: str | None = OWN_KEY) -> RemoteClient:
    return RemoteClient(RemoteConnection(server.base_url, "demo", api_key=key, timeout_s=120))


def ask(server: Any, effort: ReasoningEffort, params: SamplingParams = GREEDY) -> Answer:
    async def run() -> Answer:
        client = client_for(server)
        try:
            return await answer(client, effort=effort, params=params)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_a_streamed_answer_matches_the_servers_own_reply(own_server: Any) -> None:
    got = ask(own_server, ReasoningEffort.LOW)
    sdk = openai.OpenAI(base_url=own_server.base_url, api_key=OWN_KEY, max_retries=0, timeout=120)
    reply = sdk.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": QUESTION[0].text}],
        reasoning_effort="low",
        temperature=0,
        max_tokens=GREEDY.max_tokens,
    )
    message = reply.choices[0].message
    assert got.reasoning == (message.model_extra or {})["reasoning"] and got.reasoning
    assert got.text == message.content and got.text
    done = got.done
    assert done.finish_reason is FinishReason.STOP and not done.counts_estimated
    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    assert done.prompt_tokens == reply.usage.prompt_tokens
    assert done.completion_tokens == reply.usage.completion_tokens
    assert done.reasoning_tokens == reply.usage.completion_tokens_details.reasoning_tokens
    assert done.time_to_first_token is not None and done.time_to_first_final_token is not None
    assert 0 < done.time_to_first_token <= done.time_to_first_final_token


def test_high_effort_reasons_longer_than_low(own_server: Any) -> None:
    capped = SamplingParams(temperature=0.0, max_tokens=60)
    low, high = ask(own_server, ReasoningEffort.LOW, capped), ask(own_server, ReasoningEffort.HIGH, capped)
    assert high.done.reasoning_tokens > low.done.reasoning_tokens > 0


def test_stop_mid_answer_ends_cancelled_and_the_server_serves_on(own_server: Any) -> None:
    async def run() -> Done:
        cancel = asyncio.Event()
        client = client_for(own_server)
        seen = 0
        try:
            async for event in client.stream(
                QUESTION, effort=ReasoningEffort.HIGH, instructions=None, params=GREEDY, cancel=cancel
            ):
                if isinstance(event, Done):
                    return event
                seen += 1
                if seen == 3:
                    cancel.set()
        finally:
            await client.aclose()
        raise AssertionError("no Done")

    done = asyncio.run(run())
    assert done.finish_reason is FinishReason.CANCELLED
    assert 0 < done.reasoning_tokens < 60 and done.messages  # what arrived before the stop is kept
    assert ask(own_server, ReasoningEffort.LOW).done.finish_reason is FinishReason.STOP


def test_three_efforts_stream_at_once_on_one_client(own_server: Any) -> None:
    async def run() -> list[Answer]:
        client = client_for(own_server)
        try:
            return list(
                await asyncio.gather(
                    *(answer(client, effort=e, params=GREEDY) for e in ReasoningEffort)  # the compare view's columns
                )
            )
        finally:
            await client.aclose()

    low, medium, high = asyncio.run(run())
    assert all(a.done.finish_reason in (FinishReason.STOP, FinishReason.LENGTH) for a in (low, medium, high))
    assert low.done.reasoning_tokens < high.done.reasoning_tokens


def test_models_check_and_the_key(own_server: Any) -> None:
    async def run() -> None:
        client = client_for(own_server)
        keyless = client_for(own_server, key=None)
        try:
            assert await client.list_models() == ["demo"]
            report = await client.check()
            assert report.ok, report.lines()
            assert report.reasoning_field == "reasoning"
            with pytest.raises(AuthRejected):
                await keyless.list_models()
            refused = await keyless.check()
            assert [s.status.value for s in refused.steps[:3]] == ["ok", "failed", "skipped"]
        finally:
            await client.aclose()
            await keyless.aclose()

    asyncio.run(run())
