"""Fixtures for the remote client's tests: provider stand-ins (tests/helpers/provider_server.py) on loopback, and a
helper that runs one streamed answer to its Done."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from gpt_oss_desktop.engine.events import ANALYSIS, FINAL, Delta, Done
from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort
from gpt_oss_desktop.engine.remote.client import RemoteClient
from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.sampling import SamplingParams
from tests.helpers.provider_server import Flavor, ProviderServer

StartProvider = Callable[..., ProviderServer]
QUESTION = (ChatMessage.user("What is 17 times 23?"),)


@pytest.fixture
def provider() -> Iterator[StartProvider]:
    """``provider(flavor, **state options)``: a started provider stand-in, stopped after the test."""
    servers: list[ProviderServer] = []

    def start(flavor: Flavor | str, **options: Any) -> ProviderServer:
        server = ProviderServer(flavor, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def connect(server: ProviderServer, **options: Any) -> RemoteConnection:
    """A connection to ``server``'s model with fast retries (tests wait milliseconds, not seconds)."""
    options.setdefault("backoff_s", 0.02)
    options.setdefault("timeout_s", 10.0)
    return RemoteConnection(server.base_url, server.state.model, **options)


@dataclass
class Answer:
    deltas: list[Delta]
    done: Done

    @property
    def reasoning(self) -> str:
        return "".join(d.text for d in self.deltas if d.channel == ANALYSIS)

    @property
    def text(self) -> str:
        return "".join(d.text for d in self.deltas if d.channel == FINAL)


async def answer(
    client: RemoteClient,
    messages: Sequence[ChatMessage] = QUESTION,
    *,
    effort: ReasoningEffort = ReasoningEffort.MEDIUM,
    params: SamplingParams | None = None,
    **options: Any,
) -> Answer:
    """Stream one answer; checks the event contract (Deltas, then exactly one Done, last)."""
    events = [
        e
        async for e in client.stream(
            messages, effort=effort, instructions=None, params=params or SamplingParams(), **options
        )
    ]
    assert events and isinstance(events[-1], Done), events
    deltas = events[:-1]
    assert all(isinstance(d, Delta) for d in deltas), deltas
    return Answer([d for d in deltas if isinstance(d, Delta)], events[-1])


@pytest.fixture(scope="package")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from gpt_oss_desktop import engine
    from gpt_oss_desktop.engine.paths import DATA_DIR_ENV

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_DIR_ENV, str(tmp_path_factory.mktemp("user-data")))
        return engine.load_model("demo")


@pytest.fixture(scope="package")
def own_server(demo_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Our own ``serve`` (engine/server) on the demo model, with an API key, on a free loopback port."""
    from gpt_oss_desktop.engine.server.config import ServerConfig
    from gpt_oss_desktop.engine.server.runner import RunningServer

    store = tmp_path_factory.mktemp("store") / "responses.sqlite3"
    server = RunningServer(demo_model, ServerConfig(port=0, api_key=OWN_KEY, store_path=store), model_id="demo")
    server.start()
    yield server
    server.stop()


OWN_KEY = "own-server-key"
