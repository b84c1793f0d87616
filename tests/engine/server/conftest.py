"""Fixtures for the server tests: the demo model, and real servers on loopback (a free port each)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gpt_oss_desktop import engine
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.server.config import ServerConfig
from gpt_oss_desktop.engine.server.runner import RunningServer

StartServer = Callable[..., RunningServer]


@pytest.fixture(scope="package")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_DIR_ENV, str(tmp_path_factory.mktemp("user-data")))
        return engine.load_model("demo")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """``start_server(model, model_id="demo", **config)``: a started server, stopped after the test."""
    servers: list[RunningServer] = []

    def start(model: Any, *, model_id: str = "demo", max_context: int | None = None, **options: Any) -> RunningServer:
        options.setdefault("store_path", tmp_path / "responses.sqlite3")
        server = RunningServer(model, ServerConfig(port=0, **options), model_id=model_id, max_context=max_context)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def demo_server(demo_model: Any, start_server: StartServer) -> RunningServer:
    return start_server(demo_model)


def client_for(server: RunningServer, api_key: str = "unused") -> openai.OpenAI:
    # No retries: a test must see the server's first answer, not the SDK's second try.
    return openai.OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0, timeout=120)


@pytest.fixture
def client(demo_server: RunningServer) -> openai.OpenAI:
    return client_for(demo_server)
