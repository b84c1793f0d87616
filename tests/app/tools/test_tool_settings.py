"""Tool settings: defaults, round trip through their JSON, tolerant reading, and the toolbox they choose."""

from __future__ import annotations

import pytest

from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings, default_policy
from gpt_oss_desktop.engine.harmony import FunctionTool
from gpt_oss_desktop.engine.tools.base import ToolOutcome, ToolPolicy, ToolStatus


@pytest.fixture(scope="module", autouse=True)
def gui_thread_gc() -> None:
    """Nothing here is Qt (replaces tests/app/conftest.py's fixture of that name)."""


class NamedTool:
    def __init__(self, recipient: str) -> None:
        self._recipient = recipient

    @property
    def recipient(self) -> str:
        return self._recipient

    @property
    def spec(self) -> FunctionTool | None:
        return None if self._recipient == "python" else FunctionTool(self._recipient.split(".")[-1], "d")

    async def run(self, arguments: str) -> ToolOutcome:
        return ToolOutcome(ToolStatus.OK, arguments)


def test_defaults_ask_for_code_and_servers_and_run_the_harmless_builtins() -> None:
    settings = ToolSettings()
    assert settings.policy("python") is ToolPolicy.ASK
    assert settings.policy("functions.files_read") is ToolPolicy.ASK
    assert settings.policy("functions.get_current_time") is ToolPolicy.ALWAYS
    assert default_policy("functions.convert_units") is ToolPolicy.ALWAYS
    assert settings.enabled("python") and settings.enabled("functions.anything")


def test_round_trip_through_json() -> None:
    settings = (
        ToolSettings(mcp_servers=({"name": "files", "command": ["srv"]},))
        .with_policy("python", ToolPolicy.ALWAYS)
        .with_policy("functions.files_delete", ToolPolicy.NEVER)
        .with_enabled("functions.get_current_time", False)
        .with_enabled("python", False)
    )
    back = ToolSettings.from_json(settings.to_json())
    assert back == settings
    assert not back.enabled("python") and not back.enabled("functions.get_current_time")
    assert back.with_enabled("functions.get_current_time", True).enabled("functions.get_current_time")


@pytest.mark.parametrize(
    "text",
    [None, "", "not json", "[1, 2]", '{"policies": {"python": "sometimes"}, "disabled": "x", "mcp_servers": [3]}'],
)
def test_unreadable_settings_give_the_defaults_for_what_they_do_not_say_clearly(text: str | None) -> None:
    settings = ToolSettings.from_json(text)
    assert settings.policy("python") is ToolPolicy.ASK and settings.python_enabled
    assert settings.disabled == frozenset() and settings.mcp_servers == ()


def test_the_toolbox_holds_the_tools_switched_on_and_remembers_policies() -> None:
    saved: list[ToolSettings] = []
    extra = [NamedTool("functions.files_read"), NamedTool("functions.files_read"), NamedTool("functions.files_write")]
    tools = AppTools(
        ToolSettings().with_enabled("functions.files_write", False),
        save=saved.append,
        python_tool=NamedTool("python"),
        extra_tools=lambda: extra,
    )
    box = tools.toolbox()
    recipients = [tool.recipient for tool in box.tools]
    assert recipients == ["python", "functions.get_current_time", "functions.convert_units", "functions.files_read"]
    assert box.python_tool and [spec.name for spec in box.function_specs][-1] == "files_read"
    tools.remember("python", ToolPolicy.ALWAYS)
    assert tools.policy("python") is ToolPolicy.ALWAYS and saved[-1].policy("python") is ToolPolicy.ALWAYS
    tools.update(tools.settings.with_enabled("python", False))
    assert not tools.toolbox().python_tool
