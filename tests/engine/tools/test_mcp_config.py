"""McpServerConfig: what the settings store round-trips, and bad settings fail with a message naming the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gpt_oss_desktop.engine.tools.mcp_config import McpConfigError, McpServerConfig, configs_from_mcp_json


def test_a_stdio_config_round_trips_through_json() -> None:
    config = McpServerConfig(
        name="files", command=("npx", "-y", "server-files", "/tmp"), env={"TOKEN": "x"}, call_timeout_s=5
    )
    again = McpServerConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.command == ("npx", "-y", "server-files", "/tmp") and dict(again.env) == {"TOKEN": "x"}
    assert again.call_timeout_s == 5.0 and again.start_timeout_s == 20.0 and again.enabled


def test_an_http_config_round_trips_and_keeps_its_headers() -> None:
    config = McpServerConfig(
        name="web", transport="http", url="https://mcp.example.com/mcp", headers={"Authorization": "Bearer k"}
    )
    again = McpServerConfig.from_dict(config.to_dict())
    assert again == config and dict(again.headers) == {"Authorization": "Bearer k"}


def test_the_config_is_frozen_and_does_not_share_the_callers_dict() -> None:
    env = {"A": "1"}
    config = McpServerConfig(name="s", command=("x",), env=env)
    env["A"] = "2"
    assert dict(config.env) == {"A": "1"}
    with pytest.raises(TypeError):
        config.env["A"] = "3"  # type: ignore[index]
    with pytest.raises(AttributeError):
        config.name = "t"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "command": ["x"]}, "needs a name"),
        ({"name": "s", "command": []}, "the command is empty"),
        ({"name": "s", "command": "npx server"}, "must be a list"),
        ({"name": "s", "command": ["x", 3]}, "must be a list"),
        ({"name": "s", "transport": "sse", "command": ["x"]}, "transport must be 'stdio' or 'http'"),
        ({"name": "s", "transport": "http", "url": "ftp://host/mcp"}, "not an http:// or https:// address"),
        ({"name": "s", "transport": "http", "url": ""}, "not an http:// or https:// address"),
        ({"name": "s", "command": ["x"], "env": {"A": 1}}, "env must map names to text values"),
        ({"name": "s", "command": ["x"], "call_timeout_s": 0}, "call_timeout_s must be a number of seconds"),
        ({"name": "s", "command": ["x"], "start_timeout_s": "20"}, "start_timeout_s must be a number of seconds"),
        ({"name": "s", "command": ["x"], "enabled": "yes"}, "enabled must be true or false"),
        ({"name": "s", "command": ["x"], "colour": "red"}, "unknown setting(s) colour"),
        (["s"], "must be a JSON object"),
    ],
)
def test_bad_settings_raise_a_message_that_names_the_server_and_the_fix(data: Any, message: str) -> None:
    with pytest.raises(McpConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        McpServerConfig.from_dict(data)


def test_an_mcp_json_from_another_app_becomes_configs() -> None:
    pasted = {
        "mcpServers": {
            "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me"]},
            "search": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer k"}},
            "old": {"command": "uvx", "args": ["weather"], "env": {"UNITS": "metric"}, "disabled": True},
        }
    }
    files, search, old = configs_from_mcp_json(pasted)
    assert (files.name, files.transport, files.command) == (
        "files",
        "stdio",
        ("npx", "-y", "@modelcontextprotocol/server-filesystem", "/home/me"),
    )
    assert (search.transport, search.url, dict(search.headers)) == (
        "http",
        "https://mcp.example.com/mcp",
        {"Authorization": "Bearer k"},
    )
    assert dict(old.env) == {"UNITS": "metric"} and not old.enabled and files.enabled


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"servers": {}}, "mcpServers"),
        ({"mcpServers": {"s": {"type": "sse", "url": "http://h/sse"}}}, "SSE transport is not supported"),
        ({"mcpServers": {"s": {"command": "x", "args": "y"}}}, '"args" a list'),
        ({"mcpServers": {"s": {}}}, "the command is empty"),
    ],
)
def test_a_bad_mcp_json_says_what_is_wrong(data: Any, message: str) -> None:
    with pytest.raises(McpConfigError, match=message):
        configs_from_mcp_json(data)
