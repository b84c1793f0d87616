"""Remote servers in the real window: the Connect dialog's Refresh and Test connection against the app's own server,
a connection that drops mid-answer (partial answer saved, the error shown, Retry), a rejected key re-entered in place,
and a key that never reaches the data folder, the settings, the logs or an exported chat."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from gpt_oss_desktop.app.backends.api_keys import KeySource
from gpt_oss_desktop.app.backends.remote_presets import PresetId
from gpt_oss_desktop.app.backends.saved_connection import SavedConnection, server_ref
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.stats import readable
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.main import attach_app_log
from gpt_oss_desktop.app.models.connect_dialog import ConnectDialog
from gpt_oss_desktop.app.models.saved_servers import SavedServers
from gpt_oss_desktop.engine.events import FinishReason
from gpt_oss_desktop.engine.remote.report import STEPS, CheckStatus
from tests.app.conftest import load, next_emission, until
from tests.app.models.conftest import remote_window
from tests.helpers.provider_server import Fault

KEY = "sk-window-test-a1b2c3d4e5f6"


def test_dialog_refresh_and_test_connection_against_the_app_server(
    run: Any, qtbot: Any, servers: SavedServers, start_server: Any, demo_model: Any
) -> None:
    server = start_server(demo_model)
    dialog = ConnectDialog(servers)
    qtbot.addWidget(dialog)
    dialog.set_preset(PresetId.THIS_APP)
    dialog.url_edit.setText(server.base_url)
    dialog.model_box.setEditText("")

    async def body() -> None:
        await dialog.refresh_models()
        assert [dialog.model_box.itemText(i) for i in range(dialog.model_box.count())] == ["demo"]
        assert dialog.model_box.currentText() == "demo" and "1 model" in dialog.status.text()
        await dialog.test_connection()

    run(body(), timeout=120)
    lines = [dialog.checks.item(i).text() for i in range(dialog.checks.count())]
    assert [line.split(":")[0] for line in lines] == list(STEPS)  # every step, in order, with its detail
    statuses = [dialog.checks.item(i).data(0x0100) for i in range(dialog.checks.count())]
    assert statuses[:4] == [CheckStatus.OK.value] * 4  # reachable, authorised, model listed, streaming


def test_dialog_reports_a_wrong_url_and_a_rejected_key_in_place(
    run: Any, qtbot: Any, servers: SavedServers, provider: Any
) -> None:
    server = provider(api_key=KEY)
    dialog = ConnectDialog(servers)
    qtbot.addWidget(dialog)
    dialog.set_preset(PresetId.VLLM)
    dialog.url_edit.setText(server.base_url)
    assert dialog.key_source is KeySource.NONE  # a local vLLM needs no key, unless started with one

    run(dialog.refresh_models(), timeout=30)
    assert "key" in dialog.status.text()
    # Re-enter it right here: the key field is ready (and where the key goes switched to the keyring).
    assert dialog.key_edit.isEnabled() and dialog.key_edit.text() == "" and dialog.key_source is KeySource.KEYRING
    dialog.key_edit.setText(KEY)
    run(dialog.refresh_models(), timeout=30)
    assert dialog.model_box.findText(server.state.model) >= 0


def assert_connection_lost(message: Any) -> None:
    """The answer says what happened (the error under it, "connection lost" in its stats line, not "failed") and
    offers Retry."""
    assert isinstance(message, AssistantMessage)
    assert not message.error.isHidden() and "connection lost" in message.error.text()
    line = readable(message.stats.text())
    assert "connection lost" in line and "failed" not in line
    assert message.regenerate_button.isVisible() and message.regenerate_button.text() == "Retry"


def test_a_dropped_connection_keeps_the_partial_answer_with_retry(
    run: Any, make_window: Any, servers: SavedServers, provider: Any, data_dir: Path
) -> None:
    server = provider(faults=[Fault("cut", after_chunks=5)])
    servers.save(SavedConnection("flaky", PresetId.VLLM, server.base_url, server.state.model))
    with ChatStore(data_dir / "history.sqlite3") as store:
        window = remote_window(make_window, servers, store)

        async def body() -> None:
            await load(window, server_ref("flaky"))
            done = await next_emission(window.generation_finished, lambda: window.send_message("17*23?"))
            assert done.finish_reason is FinishReason.ERROR and done.error.startswith("connection lost")
            assert_connection_lost(window._last_assistant())
            chat_id = window.chat_id
            saved = store.get_chat(chat_id).thread()[-1]
            assert saved.role == "assistant" and (saved.analysis or saved.text)  # what arrived is kept
            assert saved.stats["finish_reason"] == FinishReason.ERROR.value
            assert saved.stats["error"] == done.error
            # Reopened from the history (another chat in between), it still says so, with Retry.
            window.new_chat()
            assert window.open_chat(chat_id)
            reopened = window._last_assistant()
            assert reopened is not None
            await until(reopened.regenerate_button.isVisible)  # new widgets show on the next loop turn
            assert_connection_lost(reopened)
            assert reopened.answer_text == saved.text
            retried = await next_emission(window.generation_finished, lambda: reopened.regenerate_button.click())
            assert retried.finish_reason is FinishReason.STOP
            assert window.conversation.last.answer == "The answer is 391."
            answer = store.get_chat(chat_id).thread()[-1]
            assert answer.text == "The answer is 391." and "error" not in answer.stats

        run(body(), timeout=60)


def test_a_rejected_key_is_asked_again_in_place(
    run: Any, make_window: Any, servers: SavedServers, provider: Any
) -> None:
    server = provider(api_key=KEY)
    servers.save(SavedConnection("hosted", PresetId.TOGETHER, server.base_url, server.state.model, KeySource.KEYRING))
    servers.keys.remember("hosted", "sk-expired", KeySource.KEYRING)
    window = remote_window(make_window, servers)

    async def body() -> None:
        error = await next_emission(window.load_failed, lambda: window.load_model(server_ref("hosted")))
        assert "key" in str(error)
        prompt = window.connections.key_prompt
        assert prompt is not None and prompt.isVisible() and "rejected" in prompt.message.text()
        prompt.key_edit.setText(KEY)
        info = await next_emission(window.model_loaded, prompt._accept)
        assert info.name == f"{server.state.model} @ hosted"

    run(body(), timeout=30)
    assert servers.keys.key_for("hosted", KeySource.KEYRING) == KEY  # the keyring now has the new one


def test_the_key_never_reaches_data_settings_logs_or_exports(
    run: Any,
    make_window: Any,
    servers: SavedServers,
    start_server: Any,
    demo_model: Any,
    data_dir: Path,
    settings: QSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = start_server(demo_model, api_key=KEY)
    handler = attach_app_log(verbose=True)  # the app's own log file, at DEBUG, in the data folder
    try:
        with caplog.at_level(logging.DEBUG), ChatStore(data_dir / "history.sqlite3") as store:
            window = remote_window(make_window, servers, store)
            dialog = window.connections.open_dialog()
            dialog.set_preset(PresetId.VLLM)
            dialog.name_edit.setText("secured")
            dialog.url_edit.setText(server.base_url)
            dialog.model_box.setEditText("demo")
            dialog.set_key_source(KeySource.KEYRING)  # this vLLM was started with --api-key
            dialog.key_edit.setText(KEY)

            async def body() -> None:
                await dialog.refresh_models()
                info = await next_emission(window.model_loaded, dialog.connect_button.click)
                assert info.name == "demo @ secured"
                window.composer.sampling.max_tokens.setValue(24)
                await next_emission(window.generation_finished, lambda: window.send_message("Hello"))
                await until(lambda: window.chat_id is not None)

            run(body(), timeout=90)
            assert window.export_chat(tmp_path / "export.md", "markdown")
            assert window.export_chat(tmp_path / "export.json", "json")
            window.close()
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
    settings.sync()
    assert (data_dir / "logs" / "app.log").stat().st_size > 0  # the log was written
    searched = [*data_dir.rglob("*"), Path(settings.fileName()), tmp_path / "export.md", tmp_path / "export.json"]
    files = [path for path in searched if path.is_file()]
    assert len(files) >= 5
    leaks = [str(path) for path in files if KEY.encode() in path.read_bytes()]
    assert leaks == []
    assert KEY not in caplog.text
    assert servers.keys.key_for("secured", KeySource.KEYRING) == KEY  # it is in the keyring, and only there


def test_compare_view_sends_three_concurrent_requests(
    run: Any, make_window: Any, servers: SavedServers, provider: Any
) -> None:
    server = provider(faults=[Fault("slow", delay_s=0.1)] * 3)  # every answer takes 0.8 s or more
    servers.save(SavedConnection("box", PresetId.VLLM, server.base_url, server.state.model))
    window = remote_window(make_window, servers)

    async def body() -> None:
        await load(window, server_ref("box"))
        window.set_compare_mode(True)
        task = window.compare.start("17*23?")
        assert task is not None
        await task

    run(body(), timeout=60)
    bodies = server.state.bodies
    assert sorted(body["reasoning_effort"] for body in bodies) == ["high", "low", "medium"]
    arrivals = sorted(server.state.arrivals)
    assert arrivals[-1] - arrivals[0] < 0.5  # all three went out at once, not one after another
    columns = [window.compare.column_thread(i)[-1] for i in range(3)]
    assert all(message.text == "The answer is 391." for message in columns)
    # The provider's reasoning follows the effort it read: each column got its own.
    assert len(columns[0].analysis) < len(columns[1].analysis) < len(columns[2].analysis)
