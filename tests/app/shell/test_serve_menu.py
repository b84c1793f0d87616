"""Model ▸ Serve on localhost: the loaded model answers the ``openai`` SDK from outside the window, the URL shows in
the status bar, each request appears in the log pane, and loading another model stops the server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import pytest
from PySide6.QtGui import QGuiApplication

from gpt_oss_desktop.app.settings import SERVER_PORT_KEY
from gpt_oss_desktop.app.shell.serve_menu import format_record
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from gpt_oss_desktop.engine.server.request_log import RequestRecord
from tests.app.conftest import load, next_emission, scripted_engine, until


@pytest.fixture(autouse=True)
def private_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))  # the Responses store lives under the data folder


def test_serving_the_loaded_model(run: Any, make_window: Any, settings: Any) -> None:
    settings.setValue(SERVER_PORT_KEY, 0)  # any free port
    backend, model = scripted_engine(harmony_reply("Add them.", "5"), harmony_reply("Again.", "5"))
    window = make_window(backend)
    control = window.serving
    assert not control.action.isEnabled()  # nothing to serve before a model is loaded

    async def body() -> None:
        await load(window)
        assert control.action.isEnabled() and not control.action.isChecked()
        url = await next_emission(control.serving_changed, lambda: control.action.setChecked(True))
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert control.url_label.isVisible() and url in control.url_label.text()
        assert control.dock.isVisible()
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=30)
        reply = await asyncio.to_thread(
            client.chat.completions.create, model="scripted", messages=[{"role": "user", "content": "2+3?"}]
        )
        assert reply.choices[0].message.content == "5"
        assert (reply.choices[0].message.model_extra or {}).get("reasoning") == "Add them."
        await until(lambda: "POST /v1/chat/completions  200" in control.log.toPlainText())
        assert "reasoning" in control.log.toPlainText()
        control.copy_action.trigger()
        assert QGuiApplication.clipboard().text() == url
        # Loading a model replaces the one being served: the server stops with it.
        await load(window)
        await until(lambda: not control.action.isChecked())
        assert backend.server_url is None and not control.url_label.isVisible()
        try:
            await asyncio.to_thread(client.models.list)
        except openai.APIConnectionError:
            return
        raise AssertionError("the server still answers after the model it served was replaced")

    run(body(), timeout=60)
    assert model.prompts  # the scripted model really answered the SDK's request (no second copy was loaded)


def test_a_taken_port_is_reported_and_the_action_unchecks(run: Any, make_window: Any, settings: Any) -> None:
    import socket

    backend, _ = scripted_engine(harmony_reply("t", "a"))
    window = make_window(backend)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        settings.setValue(SERVER_PORT_KEY, taken.getsockname()[1])

        async def body() -> None:
            await load(window)
            url = await next_emission(window.serving.serving_changed, lambda: window.serving.action.setChecked(True))
            assert url == ""

        run(body(), timeout=30)
    assert not window.serving.action.isChecked()
    assert "already in use" in window.statusBar().currentMessage()


def test_log_lines_say_what_happened_without_bodies() -> None:
    record = RequestRecord("POST", "/v1/chat/completions", 200, "127.0.0.1:5000", 1.234, 74, 26, 12)
    line = format_record(record, when=0)
    assert "POST /v1/chat/completions  200  1.23 s  74 → 26 tokens (12 reasoning)  from 127.0.0.1:5000" in line
