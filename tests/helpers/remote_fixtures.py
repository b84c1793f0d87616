"""Fixtures for the app's remote-server tests: the demo model served by the app's own server, and the provider test
server (tests/helpers/provider_server.py), each on a free loopback port, stopped after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop import engine
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.server.config import ServerConfig
from gpt_oss_desktop.engine.server.runner import RunningServer
from tests.helpers.provider_server import ProviderServer


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_DIR_ENV, str(tmp_path_factory.mktemp("user-data")))
        return engine.load_model("demo")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """``start_server(model, model_id="demo", **config)``: the app's server over ``model``, started."""
    servers: list[RunningServer] = []

    def start(model: Any, model_id: str = "demo", **options: Any) -> RunningServer:
        options.setdefault("store_path", tmp_path / "responses.sqlite3")
        server = RunningServer(model, ServerConfig(port=0, **options), model_id=model_id)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def provider() -> Iterator[Callable[..., ProviderServer]]:
    """``provider(flavor="vllm", **options)``: a provider test server, started."""
    started: list[ProviderServer] = []

    def start(flavor: str = "vllm", **options: Any) -> ProviderServer:
        server = ProviderServer(flavor, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
