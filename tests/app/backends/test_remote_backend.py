"""RemoteBackend and SwitchableBackend against the app's own server (engine/server, real uvicorn on a free loopback
port, the real ``openai`` SDK underneath): connecting, chat, the compare view's three concurrent requests, stop,
effort, the typed errors, and moving between a local model and a server. Through a real MainWindow where it
matters (the status bar, the chat)."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import socket
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLabel

from gpt_oss_desktop.app.backends.api_keys import KeySource, KeyStore
from gpt_oss_desktop.app.backends.backend_switch import SwitchableBackend
from gpt_oss_desktop.app.backends.chat_backend import ChatRequest, LoadError, LoadErrorKind, RequestError
from gpt_oss_desktop.app.backends.remote_backend import RemoteBackend
from gpt_oss_desktop.app.backends.remote_presets import PresetId
from gpt_oss_desktop.app.backends.saved_connection import SavedConnection, server_ref
from gpt_oss_desktop.app.models.saved_servers import SavedServers
from gpt_oss_desktop.engine.events import Delta, Done, FinishReason
from gpt_oss_desktop.engine.harmony import ChatMessage, ChatRole, ReasoningEffort
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.remote.errors import RemoteError
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply
from gpt_oss_desktop.engine.server.config import ServerConfig
from gpt_oss_desktop.engine.server.runner import RunningServer
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.conftest import load, next_emission, scripted_engine

KEY = "sk-remote-test-9f8e7d6c5b4a"


@pytest.fixture
def servers(settings: QSettings) -> SavedServers:
    return SavedServers(settings, KeyStore(keyring.backends.fail.Keyring()))


def no_retries(servers: SavedServers) -> Any:
    """The resolver, with the client's retries off (a test must see the first answer)."""

    def resolve(name: str) -> RemoteConnection:
        return replace(servers.resolve(name), max_retries=0)

    return resolve


def save(servers: SavedServers, server: RunningServer | str, name: str = "mine", model: str = "demo", **kw: Any) -> str:
    url = server if isinstance(server, str) else server.base_url
    servers.save(SavedConnection(name, kw.pop("preset", PresetId.THIS_APP), url, model, **kw))
    return server_ref(name)


def question(text: str = "What is 2+3?", effort: ReasoningEffort = ReasoningEffort.LOW, **params: Any) -> ChatRequest:
    params.setdefault("max_tokens", 64)
    params.setdefault("temperature", 0.0)
    return ChatRequest((ChatMessage(ChatRole.USER, text),), effort=effort, params=SamplingParams(**params))


async def collect(stream: Any) -> list[Any]:
    return [event async for event in stream]


# -- through the window -----------------------------------------------------------------------------------------


def test_connect_and_chat_in_the_window(
    run: Any, make_window: Any, servers: SavedServers, start_server: Any, demo_model: Any
) -> None:
    server = start_server(demo_model)
    local, _ = scripted_engine(harmony_reply("t", "a"))
    backend = SwitchableBackend(local, RemoteBackend(servers.resolve))
    window = make_window(backend)
    ref = save(servers, server)

    async def body() -> Done:
        info = await load(window, ref)
        assert info.name == "demo @ mine" and info.device == f"127.0.0.1:{server.port}"
        assert info.context_length > 0
        # The status bar names the model and the server.
        shown = {label.accessibleName(): label.text() for label in window.statusBar().findChildren(QLabel)}
        assert shown["Model"] == "demo @ mine" and shown["Device"] == f"127.0.0.1:{server.port}"
        window.composer.sampling.max_tokens.setValue(48)
        return await next_emission(window.generation_finished, lambda: window.send_message("What is 2+3?"), 60)

    done = run(body(), timeout=90)
    assert done is not None and done.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert done.completion_tokens > 0
    turn = window.conversation.last
    assert turn is not None and (turn.answer or turn.reasoning)


def test_compare_runs_three_concurrent_requests(
    run: Any, servers: SavedServers, start_server: Any, demo_model: Any
) -> None:
    server = start_server(demo_model)
    remote = RemoteBackend(no_retries(servers))
    ref = save(servers, server)

    async def body() -> list[tuple[int, Any]]:
        await remote.load(ref)
        requests = [question(effort=effort, max_tokens=40) for effort in ReasoningEffort]
        try:
            return await collect(remote.stream_compare(requests))
        finally:
            await remote.unload()

    events = run(body(), timeout=90)
    dones = {index: event for index, event in events if isinstance(event, Done)}
    assert sorted(dones) == [0, 1, 2]
    assert all(done.finish_reason in (FinishReason.STOP, FinishReason.LENGTH) for done in dones.values())
    # Concurrent, not one after another: every column had streamed text before the first one ended.
    first_done = next(i for i, (_, event) in enumerate(events) if isinstance(event, Done))
    assert {index for index, _ in events[:first_done]} == {0, 1, 2}


def test_stop_and_effort(run: Any, servers: SavedServers, start_server: Any) -> None:
    long_thought = "Thinking it over. " * 40
    model = ScriptedModel([harmony_reply(long_thought, "Done."), harmony_reply("Short.", "Five.")], token_seconds=0.02)
    server = start_server(model, model_id="scripted")
    remote = RemoteBackend(no_retries(servers))
    ref = save(servers, server, model="scripted")

    async def body() -> tuple[list[Any], list[Any]]:
        await remote.load(ref)
        stopped: list[Any] = []
        async for event in remote.stream(question(effort=ReasoningEffort.HIGH, max_tokens=2000)):
            stopped.append(event)
            if len(stopped) == 3:
                remote.cancel()  # Stop, mid-answer
        answered = await collect(remote.stream(question(effort=ReasoningEffort.LOW)))
        await remote.unload()
        return stopped, answered

    stopped, answered = run(body(), timeout=60)
    assert isinstance(stopped[-1], Done) and stopped[-1].finish_reason is FinishReason.CANCELLED
    reasoning = "".join(event.text for event in stopped if isinstance(event, Delta))
    assert 0 < len(reasoning) < len(long_thought)
    assert isinstance(answered[-1], Done) and answered[-1].finish_reason is FinishReason.STOP
    assert "".join(e.text for e in answered if isinstance(e, Delta) and e.is_final) == "Five."
    # The effort travelled with each request: the server rendered it into each prompt.
    prompts = [get_encoding().decode(prompt) for prompt in model.prompts]
    assert "Reasoning: high" in prompts[0] and "Reasoning: low" in prompts[-1]


# -- errors a user can act on -----------------------------------------------------------------------------------


def test_unknown_model_and_rejected_key_are_typed_and_reported(
    run: Any, servers: SavedServers, start_server: Any, demo_model: Any
) -> None:
    server = start_server(demo_model, api_key=KEY)
    remote = RemoteBackend(no_retries(servers))
    problems: list[tuple[str, RemoteError]] = []
    remote.on_problem = lambda name, error: problems.append((name, error))
    wrong_model = save(servers, server, "wrong-model", model="gpt-oss-999b", key_source=KeySource.ASK)
    wrong_key = save(servers, server, "wrong-key", key_source=KeySource.ASK)
    servers.keys.remember("wrong-model", KEY, KeySource.ASK)
    servers.keys.remember("wrong-key", "sk-not-the-key", KeySource.ASK)

    async def body() -> tuple[LoadError, LoadError]:
        with pytest.raises(LoadError) as unknown:
            await remote.load(wrong_model)
        with pytest.raises(LoadError) as rejected:
            await remote.load(wrong_key)
        return unknown.value, rejected.value

    unknown, rejected = run(body(), timeout=30)
    assert unknown.kind is LoadErrorKind.UNKNOWN_MODEL and "demo" in str(unknown)  # it names what there is
    assert rejected.kind is LoadErrorKind.API_KEY
    assert [name for name, _ in problems] == ["wrong-model", "wrong-key"]
    assert KEY not in str(unknown) + str(rejected)
    assert remote.info is None


def test_an_unreachable_server(run: Any, servers: SavedServers) -> None:
    remote = RemoteBackend(no_retries(servers))
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]  # nothing listens here once closed
    down = save(servers, f"http://127.0.0.1:{free_port}/v1", "down")

    async def body() -> LoadError:
        with pytest.raises(LoadError) as unreachable:
            await remote.load(down)
        return unreachable.value

    unreachable = run(body(), timeout=30)
    assert unreachable.kind is LoadErrorKind.SERVER_UNREACHABLE and unreachable.advice
    assert str(free_port) in str(unreachable)


class _Html(http.server.BaseHTTPRequestHandler):
    """A web page where the API should be (a URL without /v1, a proxy's login page)."""

    def do_GET(self) -> None:
        body = b"<!doctype html><html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_web_page_instead_of_an_api(run: Any, servers: SavedServers) -> None:
    remote = RemoteBackend(no_retries(servers))
    html = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    threading.Thread(target=html.serve_forever, daemon=True).start()
    page = save(servers, f"http://127.0.0.1:{html.server_address[1]}/v1", "page")

    async def body() -> LoadError:
        with pytest.raises(LoadError) as not_api:
            await remote.load(page)
        return not_api.value

    try:
        not_api = run(body(), timeout=30)
    finally:
        html.shutdown()
    assert not_api.kind is LoadErrorKind.NOT_AN_API
    assert "OpenAI-compatible" in str(not_api)


def test_https_to_a_plain_http_server_is_a_tls_failure(run: Any, servers: SavedServers) -> None:
    remote = RemoteBackend(no_retries(servers))
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    ref = save(servers, f"https://127.0.0.1:{plain.server_address[1]}/v1", "tls")

    async def body() -> LoadError:
        with pytest.raises(LoadError) as failed:
            await remote.load(ref)
        return failed.value

    try:
        error = run(body(), timeout=30)
    finally:
        plain.shutdown()
    assert error.kind is LoadErrorKind.TLS_FAILURE, error
    assert "https" in error.advice


def test_a_request_without_a_connection_is_a_request_error(run: Any, servers: SavedServers) -> None:
    remote = RemoteBackend(servers.resolve)

    async def body() -> None:
        with pytest.raises(RequestError, match="no server is connected"):
            await collect(remote.stream(question()))
        with pytest.raises(LoadError) as missing:
            await remote.load(server_ref("never saved"))
        assert missing.value.kind is LoadErrorKind.UNKNOWN_MODEL

    run(body())


# -- moving between a local model and a server --------------------------------------------------------------------


def test_switching_unloads_the_other_and_serving_is_local_only(
    run: Any,
    make_window: Any,
    servers: SavedServers,
    start_server: Any,
    demo_model: Any,
    settings: QSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    settings.setValue("server/port", 0)
    server = start_server(demo_model)
    local, _ = scripted_engine(harmony_reply("t", "local answer"), harmony_reply("t", "again"))
    backend = SwitchableBackend(local, RemoteBackend(no_retries(servers)))
    window = make_window(backend)
    ref = save(servers, server)

    async def body() -> None:
        await load(window)  # a local model
        assert not backend.is_remote and backend.can_serve and window.serving.action.isEnabled()
        url = await next_emission(window.serving.serving_changed, lambda: window.serving.action.setChecked(True))
        assert url and backend.server_url == url
        await load(window, ref)  # to the server: the local model and its server go
        assert backend.is_remote and local.info is None and backend.server_url is None
        assert not window.serving.action.isEnabled() and not backend.can_serve
        with pytest.raises(RequestError, match="this computer"):
            await backend.start_server(ServerConfig(port=0))
        await load(window)  # and back: the connection closes
        assert not backend.is_remote and backend.remote.info is None and backend.info is not None
        done = await next_emission(window.generation_finished, lambda: window.send_message("hi"))
        assert done.finish_reason is FinishReason.STOP and window.conversation.last.answer == "local answer"

    run(body(), timeout=90)


def test_cancel_load_while_connecting(run: Any, servers: SavedServers) -> None:
    # A server that accepts the connection and never answers: connecting waits until cancelled.

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    remote = RemoteBackend(no_retries(servers))
    ref = save(servers, f"http://127.0.0.1:{listener.getsockname()[1]}/v1", "silent")

    async def body() -> LoadError:
        task = asyncio.ensure_future(remote.load(ref))
        await asyncio.sleep(0.3)
        remote.cancel_load()
        with pytest.raises(LoadError) as cancelled:
            await task
        return cancelled.value

    try:
        error = run(body(), timeout=20)
    finally:
        listener.close()
    assert error.kind is LoadErrorKind.CANCELLED
