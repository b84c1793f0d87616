"""MCP servers' header and environment values: in a real file keyring (keyrings.alt, in the test's folder) and out of
the settings entries; an older file's plain-text values moved over; no keyring (memory for this run, and a sentence
that says so); a refusing keyring; removal; the values kept out of reprs, logs and exception texts; and the values
reaching a real MCP server started from names-only settings."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest

from gpt_oss_desktop.app.backends.api_keys import SERVICE, KeySource, KeyStore, mcp_key_name
from gpt_oss_desktop.app.tools.mcp_secrets import IN_KEYRING, McpSecrets
from gpt_oss_desktop.app.tools.mcp_servers import McpServers, read_configs
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.engine.tools.mcp_config import McpConfigError, McpServerConfig
from tests.app.backends.test_api_keys import KEY, _LockedKeyring, file_keyring

TOKEN = "ghp-secret-token-5a4b3c2d1e"
BEARER = "Bearer sk-mcp-header-9f8e7d6c"
TOOLBOX = str(Path(__file__).resolve().parents[2] / "helpers" / "mcp_servers" / "toolbox.py")
SECRETS = (TOKEN, BEARER)
TOOLBOX_KEY = "sesame-7f6e"  # the toolbox is told it on its command line, so it is no secret here


@pytest.fixture(scope="module", autouse=True)
def gui_thread_gc() -> None:
    """Nothing here is Qt (replaces tests/app/conftest.py's fixture of that name)."""


def github() -> McpServerConfig:
    return McpServerConfig(name="github", command=("npx", "server-github"), env={"GITHUB_TOKEN": TOKEN, "MODE": "ro"})


def web() -> McpServerConfig:
    return McpServerConfig(
        name="web", transport="http", url="https://mcp.example.com/mcp", headers={"Authorization": BEARER}
    )


def no_keyring() -> McpSecrets:
    return McpSecrets(KeyStore(keyring.backends.fail.Keyring()))


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_values_go_to_the_keyring_and_the_entry_keeps_names_only(tmp_path: Path) -> None:
    backend = file_keyring(tmp_path)
    secrets = McpSecrets(KeyStore(backend))
    entries = [McpSecrets.settings_entry(config) for config in (github(), web())]
    assert all(secrets.store(config) for config in (github(), web()))
    stored = json.dumps(entries)
    assert_no_secret(stored)
    assert entries[0]["env"] == {"GITHUB_TOKEN": dict(IN_KEYRING), "MODE": dict(IN_KEYRING)}
    assert entries[1]["headers"] == {"Authorization": dict(IN_KEYRING)}
    # The keyring holds them, under the app's service and a name no saved connection can have.
    held = json.loads(backend.get_password(SERVICE, "mcp/github") or "")
    assert held["env"] == {"GITHUB_TOKEN": TOKEN, "MODE": "ro"}
    assert json.loads(backend.get_password(SERVICE, "mcp/web") or "")["headers"] == {"Authorization": BEARER}
    # A new run (a new store over the same keyring file) reads them back into the configs the host gets.
    again = McpSecrets(KeyStore(file_keyring(tmp_path)))
    configs, problems = read_configs(json.loads(stored), again)
    assert problems == [] and configs == [github(), web()]
    assert dict(configs[0].env)["GITHUB_TOKEN"] == TOKEN and dict(configs[1].headers) == {"Authorization": BEARER}


def test_a_server_without_values_leaves_nothing_in_the_keyring(tmp_path: Path) -> None:
    backend = file_keyring(tmp_path)
    secrets = McpSecrets(KeyStore(backend))
    assert secrets.store(github())
    assert secrets.store(McpServerConfig(name="github", command=("npx", "server-github")))  # edited: env removed
    assert backend.get_password(SERVICE, mcp_key_name("github")) is None


def test_mcp_values_and_a_connection_of_the_same_name_do_not_meet(tmp_path: Path) -> None:
    keys = KeyStore(file_keyring(tmp_path))
    secrets = McpSecrets(keys)
    keys.remember("web", KEY, KeySource.KEYRING)  # a saved server connection named "web"
    secrets.store(web())
    assert keys.key_for("web", KeySource.KEYRING) == KEY
    secrets.forget("web")
    assert keys.key_for("web", KeySource.KEYRING) == KEY
    assert secrets.resolve(McpSecrets.settings_entry(web())).missing == ("Authorization",)


def test_an_older_plain_text_file_is_moved_to_the_keyring(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = file_keyring(tmp_path)
    secrets = McpSecrets(KeyStore(backend))
    old = [github().to_dict(), web().to_dict(), {"name": "plain", "command": ["srv"]}]
    assert TOKEN in json.dumps(old)  # what an older version wrote
    with caplog.at_level(logging.DEBUG):
        migration = secrets.migrate(old)
    assert migration.changed and migration.notice is None
    assert_no_secret(json.dumps(migration.entries))
    assert migration.entries[2] == old[2]  # nothing secret: untouched
    assert json.loads(backend.get_password(SERVICE, "mcp/github") or "")["env"]["GITHUB_TOKEN"] == TOKEN
    assert "moved the values of GITHUB_TOKEN, MODE" in caplog.text
    assert_no_secret(caplog.text)
    # Read back in a new run: the same servers as before the move.
    configs, problems = read_configs(migration.entries, McpSecrets(KeyStore(file_keyring(tmp_path))))
    assert problems == [] and configs == [github(), web(), McpServerConfig(name="plain", command=("srv",))]
    # A second start finds nothing left to move.
    assert not secrets.migrate(migration.entries).changed


def test_a_half_moved_entry_keeps_the_values_already_in_the_keyring(tmp_path: Path) -> None:
    secrets = McpSecrets(KeyStore(file_keyring(tmp_path)))
    secrets.store(github())
    # Edited by hand: one more variable, in plain text, beside the names already moved.
    entry = McpSecrets.settings_entry(github())
    entry["env"] = {**entry["env"], "EXTRA": "x"}
    migration = secrets.migrate([entry])
    assert migration.entries[0]["env"]["EXTRA"] == IN_KEYRING
    config = secrets.resolve(migration.entries[0]).config
    assert dict(config.env) == {"GITHUB_TOKEN": TOKEN, "MODE": "ro", "EXTRA": "x"}


def test_without_a_keyring_values_leave_the_file_work_this_run_and_the_user_is_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = no_keyring()
    with caplog.at_level(logging.DEBUG):
        migration = secrets.migrate([github().to_dict()])
    assert_no_secret(json.dumps(migration.entries))
    notice = migration.notice or ""
    assert notice.startswith("MCP server 'github' (GITHUB_TOKEN, MODE): ")
    assert "memory until you quit" in notice and "no system keyring" in notice
    assert_no_secret(caplog.text)
    note = secrets.note()
    assert note is not None and "memory until you quit" in note and "keyring" in note
    # This run the server still gets its values...
    assert read_configs(migration.entries, secrets) == ([github()], [])
    # ...the next run cannot: the server is not started, and the sentence says which values and what to do.
    configs, problems = read_configs(migration.entries, no_keyring())
    assert configs == []
    assert problems == [
        "MCP server 'github' is not started: the values of GITHUB_TOKEN, MODE are not known (no system keyring is "
        "available on this computer). Enter them again in Tools ▸ Tool settings… ▸ Edit…"
    ]


def test_a_keyring_that_refuses_keeps_the_values_for_this_run(caplog: pytest.LogCaptureFixture) -> None:
    secrets = McpSecrets(KeyStore(_LockedKeyring()))
    with caplog.at_level(logging.DEBUG):
        assert secrets.store(web()) is False
        assert "refused" in (secrets.note() or "")
        assert secrets.resolve(McpSecrets.settings_entry(web())).config == web()
        secrets.forget("web")
    assert secrets.resolve(McpSecrets.settings_entry(web())).missing == ("Authorization",)
    assert_no_secret(caplog.text)


def test_an_unreadable_keyring_entry_is_a_missing_value_and_is_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = file_keyring(tmp_path)
    backend.set_password(SERVICE, "mcp/web", f"not json {BEARER}")
    with caplog.at_level(logging.DEBUG):
        resolved = McpSecrets(KeyStore(backend)).resolve(McpSecrets.settings_entry(web()))
    assert resolved.missing == ("Authorization",) and dict(resolved.config.headers) == {"Authorization": ""}
    assert "not readable" in caplog.text
    assert_no_secret(caplog.text)


def test_forget_removes_the_values(tmp_path: Path) -> None:
    backend = file_keyring(tmp_path)
    secrets = McpSecrets(KeyStore(backend))
    secrets.store(github())
    secrets.forget("github")
    assert backend.get_password(SERVICE, "mcp/github") is None
    assert secrets.resolve(McpSecrets.settings_entry(github())).missing == ("GITHUB_TOKEN", "MODE")


def test_no_repr_log_or_error_text_holds_a_value(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secrets = McpSecrets(KeyStore(file_keyring(tmp_path)))
    secrets.store(github())
    resolved = secrets.resolve(McpSecrets.settings_entry(github()))
    assert dict(resolved.config.env)["GITHUB_TOKEN"] == TOKEN  # the values are there...
    texts = [repr(github()), str(web()), repr(resolved), repr(ToolSettings(mcp_servers=(github().to_dict(),)))]
    for text in texts:
        assert_no_secret(text)  # ...and never in a repr
    assert "github" in texts[0] and "npx" in texts[0]
    bad = {**github().to_dict(), "command": "not a list"}
    with caplog.at_level(logging.DEBUG), pytest.raises(McpConfigError) as error:
        secrets.resolve(bad)
    assert_no_secret(str(error.value))
    assert_no_secret(caplog.text)


@pytest.fixture
def http_toolbox() -> Iterator[str]:
    """The toolbox over streamable HTTP, answering only requests with ``X-Toolbox-Key:`` :data:`TOOLBOX_KEY`."""
    server = subprocess.Popen(
        [sys.executable, TOOLBOX, "--http", "--key", TOOLBOX_KEY], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{int(server.stdout.readline())}/mcp"
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


def test_the_host_gets_the_values_of_names_only_settings(tmp_path: Path, http_toolbox: str) -> None:
    """Both servers refuse to start without their token; from names-only settings plus the keyring they start."""
    stdio = McpServerConfig(
        name="env-box", command=(sys.executable, TOOLBOX, "--key", TOOLBOX_KEY), env={"TOOLBOX_KEY": TOOLBOX_KEY}
    )
    http = McpServerConfig(name="web-box", transport="http", url=http_toolbox, headers={"X-Toolbox-Key": TOOLBOX_KEY})
    secrets = McpSecrets(KeyStore(file_keyring(tmp_path)))
    entries: list[dict[str, Any]] = []
    for config in (stdio, http):
        secrets.store(config)
        entries.append(McpSecrets.settings_entry(config))
    assert entries[0]["env"] == {"TOOLBOX_KEY": IN_KEYRING} and entries[1]["headers"] == {"X-Toolbox-Key": IN_KEYRING}
    configs, problems = read_configs(entries, McpSecrets(KeyStore(file_keyring(tmp_path))))
    assert problems == []
    servers = McpServers()
    try:
        started = asyncio.run(servers.apply(configs))
        assert [(status.name, status.running) for status in started] == [("env-box", True), ("web-box", True)]
    finally:
        servers.close()
    # Without the values neither would start: the test would fail had the host been given the markers.
    bare = McpServers()
    try:
        started = asyncio.run(
            bare.apply(
                [
                    McpServerConfig(name="env-box", command=stdio.command),
                    McpServerConfig(name="web-box", transport="http", url=http_toolbox),
                ]
            )
        )
        assert [status.running for status in started] == [False, False]
    finally:
        bare.close()
