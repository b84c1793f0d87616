"""McpHost against real MCP servers (tests/helpers/mcp_servers/toolbox.py, written with the SDK's server API): over
stdio as a child process and over streamable HTTP on loopback; calls that need escaping, errors, a server that dies,
hangs, freezes, never starts; cancellation. Every host is closed, and no thread or child process outlives a test."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from gpt_oss_desktop.engine.tools.base import ToolStatus
from gpt_oss_desktop.engine.tools.mcp_config import McpServerConfig
from gpt_oss_desktop.engine.tools.mcp_host import McpHost, McpServerState, McpServerStatus
from gpt_oss_desktop.engine.tools.mcp_tool import McpTool

TOOLBOX = str(Path(__file__).resolve().parents[2] / "helpers" / "mcp_servers" / "toolbox.py")
TOOL_NAMES = ("echo", "add", "weird-name.v2", "fail", "picture", "sleep", "pid", "die", "freeze")

_T = TypeVar("_T")


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


def stdio(name: str, *args: str, **options: Any) -> McpServerConfig:
    return McpServerConfig(name=name, command=(sys.executable, TOOLBOX, *args), **options)


def tool(host: McpHost, recipient: str) -> McpTool:
    found = host.resolve(recipient)
    assert found is not None, f"{recipient} not among {[t.recipient for t in host.all_tools()]}"
    return found


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _children() -> list[psutil.Process]:
    return [child for child in psutil.Process().children(recursive=True) if child.status() != psutil.STATUS_ZOMBIE]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture()
def new_host() -> Iterator[Callable[[], McpHost]]:
    """Hosts for one test; each is closed after it, and then no host thread and no server process may be left."""
    before = {child.pid for child in _children()}
    threads_before = set(threading.enumerate())
    hosts: list[McpHost] = []

    def make() -> McpHost:
        hosts.append(McpHost())
        return hosts[-1]

    yield make
    for host in hosts:
        host.close()
        host.close()  # safe twice
    assert not [t for t in threading.enumerate() if t.name == "mcp-host" and t not in threads_before]
    wait_until(lambda: not [child for child in _children() if child.pid not in before], timeout=10)


@pytest.fixture(scope="module")
def toolbox() -> Iterator[McpHost]:
    """One host with the toolbox over stdio, shared by the tests that leave it running."""
    host = McpHost()
    try:
        status = run(host.start(stdio("toolbox")))
        assert status.state is McpServerState.RUNNING, status
        yield host
    finally:
        host.close()


def test_the_servers_tools_become_function_specs(toolbox: McpHost) -> None:
    tools = {t.tool: t for t in toolbox.tools("toolbox")}
    assert tuple(tools) == TOOL_NAMES
    echo = tools["echo"]
    assert echo.recipient == "functions.toolbox__echo"
    assert echo.spec is not None and echo.spec.description == "Return the text unchanged."
    assert echo.spec.parameters is not None and echo.spec.parameters["properties"]["text"]["type"] == "string"
    assert echo.spec.parameters["required"] == ["text"]
    weird = tool(toolbox, "functions.toolbox__weird_name_v2")
    assert (weird.server, weird.tool) == ("toolbox", "weird-name.v2")
    status = toolbox.status("toolbox")
    assert status is not None and status.running and status.tools == TOOL_NAMES


@pytest.mark.parametrize(
    "text",
    ['say "hi" \\ there', "line one\nline two\r\n\ttabbed", "unicode: é ß 中文 🙂 \u2028", "{not: json}", ""],
)
def test_arguments_that_need_escaping_arrive_intact(toolbox: McpHost, text: str) -> None:
    outcome = run(tool(toolbox, "functions.toolbox__echo").run(json.dumps({"text": text})))
    assert outcome.status is ToolStatus.OK, outcome
    assert outcome.output == text


def test_a_tool_whose_name_is_not_an_identifier_is_called_by_its_own_name(toolbox: McpHost) -> None:
    outcome = run(tool(toolbox, "functions.toolbox__weird_name_v2").run('{"value": "x.y-z"}'))
    assert (outcome.status, outcome.output) == (ToolStatus.OK, "weird got x.y-z")


def test_malformed_arguments_are_salvaged_or_reported_to_the_model(toolbox: McpHost) -> None:
    add = tool(toolbox, "functions.toolbox__add")
    salvaged = run(add.run('```json\n{"a": 2, "b": 40}\n``` and then some'))
    assert (salvaged.status, salvaged.output) == (ToolStatus.OK, "42")
    broken = run(add.run('{"a": 2, "b": '))
    assert broken.status is ToolStatus.BAD_ARGUMENTS and "send a JSON object" in broken.output
    wrong_types = run(add.run('{"a": "two"}'))  # valid JSON the server's schema refuses: the server says why
    assert wrong_types.status is ToolStatus.ERROR and "a" in wrong_types.output and "b" in wrong_types.output


def test_unknown_tools_and_servers(toolbox: McpHost) -> None:
    assert toolbox.resolve("functions.toolbox__nope") is None
    unknown = run(toolbox.call("toolbox", "nope", {}))
    assert unknown.status is ToolStatus.UNKNOWN_TOOL and "'nope'" in unknown.output
    nowhere = run(toolbox.call("elsewhere", "echo", {"text": "x"}))
    assert nowhere.status is ToolStatus.UNAVAILABLE and "'elsewhere'" in nowhere.output


def test_a_tool_that_raises_is_an_error_the_model_reads(toolbox: McpHost) -> None:
    outcome = run(tool(toolbox, "functions.toolbox__fail").run('{"message": "disk \\"full\\""}'))
    assert outcome.status is ToolStatus.ERROR
    assert outcome.output.startswith("Error") and 'disk "full"' in outcome.output


def test_non_text_content_is_summarised(toolbox: McpHost) -> None:
    outcome = run(tool(toolbox, "functions.toolbox__picture").run(""))
    assert (outcome.status, outcome.output) == (ToolStatus.OK, "a red pixel\n[image: image/png]")


def test_a_slow_tool_times_out_and_the_server_goes_on(new_host: Callable[[], McpHost]) -> None:
    host = new_host()
    assert run(host.start(stdio("slow", call_timeout_s=0.5))).running
    started = time.monotonic()
    outcome = run(tool(host, "functions.slow__sleep").run('{"seconds": 30}'))
    assert outcome.status is ToolStatus.TIMEOUT and "0.5 s" in outcome.output
    assert time.monotonic() - started < 5
    # It still answered a quick request: the session stays (the tool was slow, not the server).
    assert run(tool(host, "functions.slow__echo").run('{"text": "still here"}')).output == "still here"


def test_a_frozen_server_times_out_is_torn_down_and_restarted(new_host: Callable[[], McpHost]) -> None:
    host = new_host()
    statuses: list[McpServerStatus] = []
    host.add_listener(statuses.append)  # no running loop: called on the host's thread
    assert run(host.start(stdio("ice", call_timeout_s=0.5))).running
    pid = int(run(tool(host, "functions.ice__pid").run("")).output)
    started = time.monotonic()
    outcome = run(tool(host, "functions.ice__freeze").run(""))
    assert outcome.status is ToolStatus.TIMEOUT
    assert time.monotonic() - started < 3  # the teardown of the frozen process does not hold the answer
    wait_until(lambda: any(s.state is McpServerState.FAILED for s in statuses))
    failed = next(s for s in statuses if s.state is McpServerState.FAILED)
    assert "stopped answering" in failed.message
    wait_until(lambda: _gone(pid))
    again = run(tool(host, "functions.ice__echo").run('{"text": "thawed"}'))  # the one restart
    assert (again.status, again.output) == (ToolStatus.OK, "thawed")


def test_a_server_that_dies_mid_call_is_unavailable_then_restarted_once(new_host: Callable[[], McpHost]) -> None:
    host = new_host()

    async def scenario() -> list[McpServerStatus]:
        seen: list[McpServerStatus] = []
        host.add_listener(seen.append)  # from this loop: delivered on it
        assert (await host.start(stdio("mortal"))).running
        die, echo = tool(host, "functions.mortal__die"), tool(host, "functions.mortal__echo")
        first = await die.run("")
        assert first.status is ToolStatus.UNAVAILABLE
        assert "'mortal' stopped" in first.output and "dying on request" in first.output
        assert "dying on request" in first.notice
        restarted = await echo.run('{"text": "back"}')
        assert (restarted.status, restarted.output) == (ToolStatus.OK, "back")
        assert (await die.run("")).status is ToolStatus.UNAVAILABLE
        started = time.monotonic()
        no_more = await echo.run('{"text": "again"}')  # a second death: no second restart
        assert no_more.status is ToolStatus.UNAVAILABLE and time.monotonic() - started < 1
        await asyncio.sleep(0.05)  # the last notices arrive through this loop
        return seen

    states = [(s.state, s.message) for s in run(scenario())]
    assert [state for state, _ in states] == [
        McpServerState.STARTING,
        McpServerState.RUNNING,
        McpServerState.FAILED,
        McpServerState.STARTING,
        McpServerState.RUNNING,
        McpServerState.FAILED,
    ]
    assert "dying on request" in states[2][1]


def test_a_server_killed_between_calls_is_noticed_without_a_call(new_host: Callable[[], McpHost]) -> None:
    host = new_host()
    statuses: list[McpServerStatus] = []
    host.add_listener(statuses.append)
    assert run(host.start(stdio("victim"))).running
    os.kill(int(run(tool(host, "functions.victim__pid").run("")).output), signal.SIGKILL)
    wait_until(lambda: bool(statuses) and statuses[-1].state is McpServerState.FAILED, timeout=5)
    assert host.all_tools() == []  # nothing offered while it is down...
    echo = tool(host, "functions.victim__echo")  # ...but a call already made still finds it, and restarts it
    assert run(echo.run('{"text": "revived"}')).output == "revived"


def test_servers_that_never_start_say_why(new_host: Callable[[], McpHost]) -> None:
    host = new_host()
    missing = run(host.start(McpServerConfig(name="ghost", command=("no-such-mcp-server-xyz", "--flag"))))
    assert (missing.state, missing.message) == (McpServerState.FAILED, "command not found: no-such-mcp-server-xyz")
    crashed = run(host.start(stdio("crashy", "--crash")))
    assert crashed.state is McpServerState.FAILED
    assert crashed.message == "the server exited: toolbox: missing API key TOOLBOX_KEY"
    started = time.monotonic()
    silent = run(host.start(stdio("mute", "--silent", start_timeout_s=1)))
    assert (silent.state, silent.message) == (McpServerState.FAILED, "did not answer within 1 s")
    assert time.monotonic() - started < 5
    assert host.all_tools() == []
    outcome = run(host.call("ghost", "echo", {}))
    assert outcome.status is ToolStatus.UNAVAILABLE and "command not found" in outcome.output


def test_cancelling_a_call_abandons_it_promptly(new_host: Callable[[], McpHost]) -> None:
    host = new_host()

    async def scenario() -> float:
        assert (await host.start(stdio("patient"))).running
        task = asyncio.ensure_future(tool(host, "functions.patient__sleep").run('{"seconds": 30}'))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        elapsed = time.monotonic() - started
        after = await tool(host, "functions.patient__echo").run('{"text": "next"}')
        assert after.output == "next"  # the session survived the cancellation
        return elapsed

    assert run(scenario()) < 1.0


def test_stop_forgets_the_server_and_its_tools(new_host: Callable[[], McpHost]) -> None:
    host = new_host()
    assert run(host.start(stdio("brief"))).running
    run(host.stop("brief"))
    assert host.status("brief") is None and host.all_tools() == []
    disabled = run(host.start(stdio("brief", enabled=False)))
    assert (disabled.state, disabled.message) == (McpServerState.STOPPED, "disabled in the settings")
    assert run(host.call("brief", "echo", {"text": "x"})).status is ToolStatus.UNAVAILABLE


@pytest.fixture()
def http_toolbox() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The toolbox over streamable HTTP on a free loopback port, behind the key ``sesame``."""
    server = subprocess.Popen(
        [sys.executable, TOOLBOX, "--http", "--key", "sesame"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        yield f"http://127.0.0.1:{port}/mcp", server
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


def test_an_http_server_works_beside_a_stdio_one_with_unique_names(
    new_host: Callable[[], McpHost], http_toolbox: tuple[str, subprocess.Popen[str]]
) -> None:
    url, server = http_toolbox
    host = new_host()
    web = McpServerConfig(name="my.tools", transport="http", url=url, headers={"X-Toolbox-Key": "sesame"})
    assert run(host.start(web)).running
    assert run(host.start(stdio("my-tools"))).running
    # Both names cut down to my_tools: the second in sorted order gets a hashed name, each maps back exactly.
    tools = {(t.server, t.tool): t for t in host.all_tools()}
    echoes = {server: tools[(server, "echo")] for server in ("my.tools", "my-tools")}
    assert echoes["my-tools"].recipient == "functions.my_tools__echo"
    assert echoes["my.tools"].recipient != echoes["my-tools"].recipient
    assert len({t.recipient for t in tools.values()}) == len(tools) == 2 * len(TOOL_NAMES)
    pids = {name: run(tool(host, tools[(name, "pid")].recipient).run("")).output for name in echoes}
    assert pids["my.tools"] == str(server.pid) and pids["my-tools"] != str(server.pid)
    text = 'quote " backslash \\ newline \n unicode é🙂'
    assert run(tool(host, echoes["my.tools"].recipient).run(json.dumps({"text": text}))).output == text
    failed = run(host.call("my.tools", "fail", {"message": "nope"}))
    assert failed.status is ToolStatus.ERROR and "nope" in failed.output
    server.kill()
    server.wait()
    gone = run(host.call("my.tools", "echo", {"text": "x"}))
    assert gone.status is ToolStatus.UNAVAILABLE and "'my.tools'" in gone.output and gone.notice


def test_an_http_server_that_refuses_says_how(
    new_host: Callable[[], McpHost], http_toolbox: tuple[str, subprocess.Popen[str]]
) -> None:
    url, _ = http_toolbox
    host = new_host()
    no_key = run(host.start(McpServerConfig(name="locked", transport="http", url=url)))
    assert no_key.state is McpServerState.FAILED and no_key.message.startswith("HTTP 401 Unauthorized")
    wrong_path = run(host.start(McpServerConfig(name="lost", transport="http", url=url + "/nowhere")))
    assert wrong_path.state is McpServerState.FAILED and "HTTP 40" in wrong_path.message
    closed = run(host.start(McpServerConfig(name="closed", transport="http", url="http://127.0.0.1:9/mcp")))
    assert closed.state is McpServerState.FAILED and closed.message.startswith("cannot reach http://127.0.0.1:9/mcp")


def test_the_host_serves_a_qasync_loop_and_notifies_on_the_gui_thread(qapp: Any) -> None:
    """The app's loop: qasync over Qt. Calls, cancellation and notices work there as on plain asyncio."""
    import qasync  # the engine never imports Qt; only this test drives the host from the app's kind of loop

    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    host = McpHost()
    try:

        async def scenario() -> list[tuple[McpServerStatus, bool]]:
            seen: list[tuple[McpServerStatus, bool]] = []
            host.add_listener(
                lambda status: seen.append((status, threading.current_thread() is threading.main_thread()))
            )
            assert (await host.start(stdio("qt"))).running
            echo = await tool(host, "functions.qt__echo").run('{"text": "on qasync"}')
            assert (echo.status, echo.output) == (ToolStatus.OK, "on qasync")
            slow = asyncio.ensure_future(tool(host, "functions.qt__sleep").run('{"seconds": 30}'))
            await asyncio.sleep(0.2)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            await host.aclose()
            await asyncio.sleep(0.05)
            return seen

        seen = loop.run_until_complete(asyncio.wait_for(scenario(), 30))
    finally:
        host.close()
        asyncio.set_event_loop(None)
        loop.close()
    assert [status.state for status, _ in seen] == [
        McpServerState.STARTING,
        McpServerState.RUNNING,
        McpServerState.STOPPED,
    ]
    assert all(on_gui_thread for _, on_gui_thread in seen)
