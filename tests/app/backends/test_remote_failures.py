"""Failures a user can act on, at the backend: a 429's Retry-After counted down and retried by itself, 5xx retried
with backoff and then a message, a connection cut mid-answer ending the answer with what arrived, a rejected key
reported for the UI to ask again. Against the provider test server (tests/helpers/provider_server.py, loopback)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import keyring.backends.fail
import pytest
from PySide6.QtCore import QSettings

from gpt_oss_desktop.app.backends.api_keys import KeySource, KeyStore
from gpt_oss_desktop.app.backends.chat_backend import ChatRequest, RequestError
from gpt_oss_desktop.app.backends.remote_backend import RemoteBackend
from gpt_oss_desktop.app.backends.remote_presets import PresetId
from gpt_oss_desktop.app.backends.saved_connection import SavedConnection, server_ref
from gpt_oss_desktop.app.models.saved_servers import SavedServers
from gpt_oss_desktop.engine.events import Delta, Done, FinishReason
from gpt_oss_desktop.engine.harmony import ChatMessage, ChatRole, ReasoningEffort
from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.remote.errors import AuthRejected, RemoteError
from gpt_oss_desktop.engine.sampling import SamplingParams
from tests.helpers.provider_server import Fault, ProviderServer

KEY = "sk-provider-test-5566"


@pytest.fixture
def servers(settings: QSettings) -> SavedServers:
    return SavedServers(settings, KeyStore(keyring.backends.fail.Keyring()))


def connect(servers: SavedServers, server: ProviderServer, **retry: Any) -> RemoteBackend:
    servers.save(
        SavedConnection("p", PresetId.VLLM, server.base_url, server.state.model, KeySource.ASK),
    )
    servers.keys.remember("p", KEY, KeySource.ASK)

    def resolve(name: str) -> RemoteConnection:
        return replace(servers.resolve(name), **retry)

    return RemoteBackend(resolve)


def request() -> ChatRequest:
    return ChatRequest((ChatMessage(ChatRole.USER, "17*23?"),), effort=ReasoningEffort.LOW, params=SamplingParams())


async def answer(remote: RemoteBackend) -> list[Any]:
    return [event async for event in remote.stream(request())]


def test_429_counts_down_its_retry_after_and_retries(run: Any, servers: SavedServers, provider: Any) -> None:
    server = provider(faults=[Fault("status", status=429, retry_after="2")])
    remote = connect(servers, server, max_retries=2, backoff_s=0.05)
    notices: list[str] = []
    remote.on_notice = notices.append

    async def body() -> list[Any]:
        await remote.load(server_ref("p"))
        return await answer(remote)

    events = run(body(), timeout=30)
    assert isinstance(events[-1], Done) and events[-1].finish_reason is FinishReason.STOP
    assert "".join(e.text for e in events if isinstance(e, Delta) and e.is_final) == "The answer is 391."
    countdown = [text for text in notices if "retrying in" in text]
    assert countdown[0] == "The server is rate-limiting requests: retrying in 2 s (retry 1 of 2)…"
    assert any("retrying in 1 s" in text for text in countdown)  # counted down, second by second
    assert notices[-1] == ""  # cleared when the retry went out
    assert len(server.state.arrivals) == 2
    assert server.state.arrivals[1] - server.state.arrivals[0] >= 1.9


def test_5xx_is_retried_with_backoff_then_reported(run: Any, servers: SavedServers, provider: Any) -> None:
    server = provider(faults=[Fault("status", status=503), Fault("status", status=500), Fault("status", status=502)])
    remote = connect(servers, server, max_retries=1, backoff_s=0.05)
    notices: list[str] = []
    remote.on_notice = notices.append

    async def body() -> tuple[RequestError, list[Any]]:
        await remote.load(server_ref("p"))
        with pytest.raises(RequestError) as failed:
            await answer(remote)  # 503, retried, 500: given up
        return failed.value, await answer(remote)  # 502, retried, then an answer

    error, events = run(body(), timeout=30)
    assert "500" in str(error) or "unavailable" in str(error).lower()
    assert any("retrying" in text for text in notices)
    assert isinstance(events[-1], Done) and events[-1].finish_reason is FinishReason.STOP
    assert len(server.state.arrivals) == 4


def test_a_cut_mid_answer_ends_it_with_what_arrived(run: Any, servers: SavedServers, provider: Any) -> None:
    server = provider(faults=[Fault("cut", after_chunks=4)])
    remote = connect(servers, server, max_retries=0)

    async def body() -> list[Any]:
        await remote.load(server_ref("p"))
        return await answer(remote)

    events = run(body(), timeout=30)
    done = events[-1]
    assert isinstance(done, Done) and done.finish_reason is FinishReason.ERROR
    assert (done.error or "").startswith("connection lost")
    assert [e for e in events if isinstance(e, Delta)]  # the partial answer arrived before the Done


def test_a_rejected_key_is_reported_for_the_ui(run: Any, servers: SavedServers, provider: Any) -> None:
    server = provider()
    remote = connect(servers, server, max_retries=0)
    problems: list[tuple[str, RemoteError]] = []
    remote.on_problem = lambda name, error: problems.append((name, error))

    async def body() -> None:
        await remote.load(server_ref("p"))
        server.state.api_key = "sk-rotated"  # the key was revoked while connected
        with pytest.raises(RequestError, match="key"):
            await answer(remote)

    run(body(), timeout=30)
    assert [name for name, _ in problems] == ["p"] and isinstance(problems[0][1], AuthRejected)
