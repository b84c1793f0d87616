"""MCP servers in the app: started from the tool settings, their tools offered in a chat and called through the
real loop (the model is the ScriptedModel test double; the server is the real toolbox MCP server over stdio), a
server that cannot start named in a notice, and the Tool settings dialog."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import keyring.backends.fail
from PySide6.QtWidgets import QDialog

from gpt_oss_desktop.app.backends.api_keys import KeyStore
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.mcp_secrets import McpSecrets
from gpt_oss_desktop.app.tools.mcp_server_dialog import McpServerDialog
from gpt_oss_desktop.app.tools.mcp_servers import McpServers, read_configs
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.app.tools.tools_dialog import POLICY_LABELS, ToolsDialog
from gpt_oss_desktop.engine.harmony import PYTHON_TOOL
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply, harmony_tool_call
from gpt_oss_desktop.engine.tools.base import ToolPolicy, ToolStatus
from gpt_oss_desktop.engine.tools.mcp_config import McpServerConfig
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.conftest import load, next_emission

TOOLBOX = str(Path(__file__).resolve().parents[2] / "helpers" / "mcp_servers" / "toolbox.py")


def toolbox_server(name: str = "toolbox", *args: str) -> dict[str, Any]:
    return McpServerConfig(name=name, command=(sys.executable, TOOLBOX, *args)).to_dict()


def memory_secrets() -> McpSecrets:
    """Values in memory only (these servers have none; the keyring tests are in test_mcp_secrets*.py)."""
    return McpSecrets(KeyStore(keyring.backends.fail.Keyring()))


def test_an_mcp_tool_is_offered_called_and_its_result_answered(make_window: Any, run: Any) -> None:
    call = harmony_tool_call("Add with the server.", "functions.toolbox__add", '{"a": 19, "b": 23}')
    model = ScriptedModel.tool_loop(call, harmony_reply("It said 42.", "19 + 23 = 42."), token_seconds=0.001)
    backend = LocalEngine(loader=lambda _ref, _progress: model, max_context=8192)
    servers = McpServers()
    settings = ToolSettings(mcp_servers=(toolbox_server(),)).with_policy("functions.toolbox__add", ToolPolicy.ALWAYS)
    tools = AppTools(settings, save=lambda _s: None, extra_tools=servers.tools)
    try:
        configs, problems = read_configs(settings.mcp_servers, memory_secrets())
        assert problems == []
        started = run(servers.apply(configs))
        assert [status.running for status in started] == [True]
        assert "functions.toolbox__add" in [tool.recipient for tool in tools.toolbox().tools]
        window = make_window(backend, tools=tools)
        run(load(window))
        run(next_emission(window.generation_finished, lambda: window.send_message("What is 19 + 23?")))
        first = get_encoding().decode(model.prompts[0])
        assert "type toolbox__add" in first and "Add two integers." in first
        assert "<|start|>functions.toolbox__add to=assistant<|channel|>commentary<|message|>42<|end|>" in (
            get_encoding().decode(model.prompts[1])
        )
        answer = [m for m in window.chat.messages() if isinstance(m, AssistantMessage)][-1]
        card = answer.tool_cards[0]
        assert card.call is not None and card.call.status is ToolStatus.OK and card.call.output == "42"
        assert "19 + 23 = 42." in answer.answer_text
        # switched off in the settings: stopped, its tools no longer offered
        run(servers.apply([McpServerConfig.from_dict({**toolbox_server(), "enabled": False})]))
        assert "functions.toolbox__add" not in [tool.recipient for tool in tools.toolbox().tools]
    finally:
        servers.close()


def test_a_server_that_cannot_start_is_named_in_a_notice(run: Any) -> None:
    notices: list[str] = []
    servers = McpServers(notice=notices.append)
    try:
        ghost = McpServerConfig(name="ghost", command=("no-such-mcp-server-xyz",)).to_dict()
        configs, _ = read_configs([ghost], memory_secrets())
        started = run(servers.apply(configs))
        assert not started[0].running

        async def told() -> None:
            while not notices:
                await asyncio.sleep(0.01)

        run(told(), 10)
        assert notices[0].startswith("MCP server 'ghost' failed:") and "no-such-mcp-server-xyz" in notices[0]
        assert servers.tools() == []
    finally:
        servers.close()


def test_settings_with_a_broken_server_entry_keep_it_and_say_why() -> None:
    configs, problems = read_configs([{"name": "x", "command": "not a list"}, toolbox_server("ok")], memory_secrets())
    assert [config.name for config in configs] == ["ok"]
    assert problems == ["MCP server 'x': the command must be a list: the program, then its arguments"]


def test_the_settings_dialog_edits_a_copy_until_ok(qtbot: Any, monkeypatch: Any) -> None:
    saved: list[ToolSettings] = []
    tools = AppTools(ToolSettings(), save=saved.append)
    secrets = memory_secrets()
    dialog = ToolsDialog(tools, secrets=secrets)
    qtbot.addWidget(dialog)
    assert dialog.sandbox_summary.text()  # the sandbox in plain words (bubblewrap or the fallback)
    assert not dialog.enabled_boxes[PYTHON_TOOL].isEnabled()  # no python tool was given to this AppTools
    dialog.enabled_boxes["functions.get_current_time"].setChecked(False)
    dialog.policy_boxes["functions.convert_units"].setCurrentIndex(list(POLICY_LABELS).index(ToolPolicy.NEVER))

    def fill_and_accept(server_dialog: McpServerDialog) -> QDialog.DialogCode:
        server_dialog.name.setText("files")
        server_dialog.command.setText(f"{sys.executable} '{TOOLBOX}' --flag")
        server_dialog.env.setPlainText("TOOLBOX_KEY=abc")
        server_dialog._accept()
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(McpServerDialog, "exec", fill_and_accept)
    dialog._edit_server(None)
    assert saved == [] and tools.settings == ToolSettings()  # nothing applies before OK
    dialog._accept()
    result = dialog.result_settings
    assert not result.enabled("functions.get_current_time")
    assert result.policy("functions.convert_units") is ToolPolicy.NEVER
    (server,) = read_configs(result.mcp_servers, secrets)[0]
    assert server.command == (sys.executable, TOOLBOX, "--flag") and dict(server.env) == {"TOOLBOX_KEY": "abc"}


def test_the_server_form_refuses_what_the_engine_would_refuse(qtbot: Any) -> None:
    form = McpServerDialog()
    qtbot.addWidget(form)
    form.name.setText("web")
    form.http.setChecked(True)
    form.url.setText("ftp://example.com/mcp")
    form._accept()
    assert form.config is None and "not an http:// or https:// address" in form.error.text()
    form.url.setText("http://127.0.0.1:8000/mcp")
    form.headers.setPlainText("Authorization: Bearer x")
    form._accept()
    assert form.config is not None and dict(form.config.headers) == {"Authorization": "Bearer x"}
