"""The live MCP connections: :class:`McpHost` starts servers, lists their tools, runs calls, and watches them die.

The ``mcp`` SDK is built on anyio: each connection is a stack of nested context managers and task groups that must
be entered and left in one task. The app's qasync loop is a poor home for those, so every session runs on one
private asyncio loop in a daemon thread owned by the host; the public ``async`` methods hand their work to that loop
and await it through :func:`asyncio.wrap_future`, so any loop (qasync, plain asyncio, the tests') can call them.
Cancelling the awaiting task cancels the work on the private loop too (``run_coroutine_threadsafe`` chains it).

Policy:
- One task per server (the *runner*) enters the SDK's client and stays inside it until the server is stopped or
  its transport ends; calls run as their own tasks on the same loop, through that client.
- A call never raises (except cancellation): a dead server gives ``UNAVAILABLE``, a slow tool ``TIMEOUT``, an
  ``isError`` result ``ERROR``, each with text the model can read and, where the user may have to act, a notice.
- A server that stops on its own is restarted by the next call to it, once per :meth:`McpHost.start`; if it dies
  again, calls stay ``UNAVAILABLE`` until the user starts it again (so a crash loop does not run on every call).
- After a call times out the server gets a quick request: a server that answers keeps its session (the tool was slow,
  and the SDK has told the server to cancel it); one that does not is hung, and is torn down like a dead one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import IO, Any, Final, TypeVar

import anyio
import httpx2
import mcp_types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage

from gpt_oss_desktop.engine.tools.base import ToolOutcome, ToolStatus
from gpt_oss_desktop.engine.tools.mcp_config import McpServerConfig
from gpt_oss_desktop.engine.tools.mcp_tool import McpTool, function_for, function_names

logger = logging.getLogger(__name__)

# What the model receives of one result at most; tools that dump files would otherwise fill the context.
MAX_OUTPUT_CHARS: Final = 64_000
# How long a server that timed out a call has to answer a tool listing before it counts as hung.
PROBE_TIMEOUT_S: Final = 5.0
# A stopping server gets this long before its runner is abandoned (the SDK's own shutdown is bounded at ~6 s).
STOP_TIMEOUT_S: Final = 10.0
_LIST_PAGES_CAP: Final = 100
_STDERR_TAIL_BYTES: Final = 4096
# Connect 30 s; a read may wait long because a server may hold its event stream open (the SDK's own defaults).
_HTTP_TIMEOUT: Final = httpx2.Timeout(30.0, read=300.0)

# What a broken connection raises under a call (besides the SDK's CONNECTION_CLOSED error).
_CONNECTION_ERRORS: Final = (httpx2.HTTPError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)

_T = TypeVar("_T")


class McpServerState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"  # it did not start, or it stopped on its own (died, hung)
    STOPPED = "stopped"  # stopped on purpose


@dataclass(frozen=True, slots=True)
class McpServerStatus:
    """Where one server stands, for the settings page and the notices.

    Attributes:
        name: the server's configured name.
        state: see :class:`McpServerState`.
        message: why it failed or stopped ("command not found: foo"), for the user; empty while it runs.
        tools: the names of the tools it offers (as it lists them), while it runs.
    """

    name: str
    state: McpServerState
    message: str = ""
    tools: tuple[str, ...] = ()

    @property
    def running(self) -> bool:
        return self.state is McpServerState.RUNNING


StatusListener = Callable[[McpServerStatus], None]


class _TransportEnded(Exception):
    """The server's side of the connection closed (its process exited, or it shut the stream)."""


@dataclass(eq=False)
class _Connection:
    """One session with a server, from its start to its end; a restart makes a new one (so a teardown still running
    in the background never touches its successor)."""

    # Wakes the runner: set on stop, on a hung server, and when the transport ends.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    client: Client | None = None
    runner: asyncio.Task[None] | None = None
    stderr: IO[str] | None = None
    stopping: bool = False
    transport_ended: bool = False
    # http: the last error status the server answered ("HTTP 401 Unauthorized"); the SDK's error does not carry it.
    http_error: str = ""

    def stderr_tail(self) -> str:
        """The last non-empty line the server wrote to stderr (its own words on why it stopped), or ''."""
        if self.stderr is None or self.stderr.closed:
            return ""
        try:
            # pread: the server shares this file's offset (its stderr is a dup of our descriptor); never move it.
            descriptor = self.stderr.fileno()
            size = os.fstat(descriptor).st_size
            start = max(0, size - _STDERR_TAIL_BYTES)
            tail = os.pread(descriptor, size - start, start).decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        return lines[-1] if lines else ""


@dataclass(eq=False)
class _Server:
    """One configured server; touched only on the host's loop (fields read from other threads are replaced whole,
    never mutated in place)."""

    config: McpServerConfig
    state: McpServerState = McpServerState.STOPPED
    message: str = ""
    listed: tuple[mcp_types.Tool, ...] = ()
    conn: _Connection = field(default_factory=_Connection)
    restarts_left: int = 1
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def status(self) -> McpServerStatus:
        tools = tuple(tool.name for tool in self.listed) if self.state is McpServerState.RUNNING else ()
        return McpServerStatus(self.config.name, self.state, self.message, tools)


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside the exception groups anyio's task groups wrap errors in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe_failure(server: _Server, exc: BaseException) -> str:
    """Why a server could not start or stopped, in words a user can act on."""
    exc = _leaf(exc)
    command = server.config.command[0] if server.config.command else ""
    if isinstance(exc, FileNotFoundError) and server.config.transport == "stdio":
        return f"command not found: {command}"
    if isinstance(exc, PermissionError) and server.config.transport == "stdio":
        return f"cannot run {command}: permission denied"
    if server.config.transport == "http" and server.conn.http_error:
        return f"{server.conn.http_error} from {server.config.url} (check the URL and the headers)"
    if isinstance(exc, _TransportEnded | MCPError | anyio.EndOfStream | anyio.BrokenResourceError):
        if server.config.transport == "stdio":
            said = server.conn.stderr_tail()
            return f"the server exited: {said}" if said else "the server exited"
        return "the server closed the connection"
    if isinstance(exc, httpx2.HTTPError | OSError):
        return f"cannot reach {server.config.url}: {exc or type(exc).__name__}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def result_text(result: mcp_types.CallToolResult) -> str:
    """A tool result as text for the model: text parts as they are, anything else named in brackets."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent):
            parts.append(f"[image: {block.mime_type}]")
        elif isinstance(block, mcp_types.AudioContent):
            parts.append(f"[audio: {block.mime_type}]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[resource: {block.uri}]")
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                parts.append(f"[resource: {resource.uri}]\n{resource.text}")
            else:
                parts.append(f"[resource: {resource.uri} ({resource.mime_type or 'binary'})]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


@contextlib.asynccontextmanager
async def _watched(
    transport: contextlib.AbstractAsyncContextManager[Any], on_end: Callable[[], None]
) -> AsyncIterator[tuple[Any, Any]]:
    """``transport`` with its read stream passed through a pump that calls ``on_end`` when the server's side closes:
    the SDK fails the calls in flight then, but a server that dies between calls would otherwise go unnoticed."""
    async with transport as (read_stream, write_stream):
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def pump() -> None:
            async with send:
                with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                    async for item in read_stream:
                        await send.send(item)
            on_end()

        async with anyio.create_task_group() as group:
            group.start_soon(pump)
            try:
                async with receive:
                    yield receive, write_stream
            finally:
                group.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _http_transport(config: McpServerConfig, conn: _Connection) -> AsyncIterator[Any]:
    """Streamable HTTP through an httpx client of our own: the SDK's default one cannot carry the headers, and a
    response hook keeps the status of a refusal for the message."""

    async def note_error(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            conn.http_error = f"HTTP {response.status_code} {response.reason_phrase}".strip()

    hooks = {"response": [note_error]}
    async with (
        httpx2.AsyncClient(headers=dict(config.headers), timeout=_HTTP_TIMEOUT, event_hooks=hooks) as http,
        streamable_http_client(config.url, http_client=http) as streams,
    ):
        yield streams


class McpHost:
    """The MCP servers of one app: their sessions on a private loop, and the calls to them.

    Create one, :meth:`start` each enabled server, offer :meth:`all_tools` to the model, and :meth:`close` at exit.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._servers: dict[str, _Server] = {}
        self._listeners: list[tuple[StatusListener, asyncio.AbstractEventLoop | None]] = []
        self._listeners_lock = threading.Lock()
        self._closed = False
        self._teardowns: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run_loop, name="mcp-host", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public API (any thread or loop)

    async def start(self, config: McpServerConfig) -> McpServerStatus:
        """Connect to the server (stopping the one of that name first), initialize, and list its tools.

        A config that is not enabled is not started: the answer is ``STOPPED`` (and a running one of that name is
        stopped)."""
        if self._closed:
            return McpServerStatus(config.name, McpServerState.FAILED, "the MCP host is closed")
        if not config.enabled:
            await self.stop(config.name)
            return McpServerStatus(config.name, McpServerState.STOPPED, "disabled in the settings")
        return await self._submit(self._start(config, restarts_left=1))

    async def stop(self, name: str) -> None:
        """Stop the server and forget it (its tools are gone from :meth:`all_tools`)."""
        if not self._closed:
            await self._submit(self._stop(name, forget=True))

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Call ``tool`` (its name as the server lists it) on ``server``; never raises but for cancellation."""
        if self._closed:
            return ToolOutcome(ToolStatus.UNAVAILABLE, f"The MCP server '{server}' is not running.")
        return await self._submit(self._call(server, tool, arguments))

    def status(self, name: str) -> McpServerStatus | None:
        server = self._servers.get(name)
        return server.status() if server is not None else None

    def statuses(self) -> list[McpServerStatus]:
        return [server.status() for server in list(self._servers.values())]

    def all_tools(self) -> list[McpTool]:
        """The tools of every running server, to offer the model (named as :meth:`resolve` finds them)."""
        running = {name for name, server in list(self._servers.items()) if server.state is McpServerState.RUNNING}
        return [tool for tool in self._named_tools() if tool.server in running]

    def tools(self, name: str) -> list[McpTool]:
        """The tools of one running server (named as in :meth:`all_tools`, so they stay unique beside the others)."""
        return [tool for tool in self.all_tools() if tool.server == name]

    def resolve(self, recipient: str) -> McpTool | None:
        """The tool the model addressed as ``recipient`` (``functions.<name>``), or None.

        A server that failed after it ran keeps its tools here (under the same names), so a call the model makes
        to it after it died gets its ``UNAVAILABLE`` result (or restarts it) rather than "unknown tool"."""
        return next((tool for tool in self._named_tools() if tool.recipient == recipient), None)

    def _named_tools(self) -> list[McpTool]:
        # Named over running and failed servers together: a server dying does not rename the others' tools.
        listed = [
            (server.config.name, tool)
            for server in list(self._servers.values())
            if server.state in (McpServerState.RUNNING, McpServerState.FAILED)
            for tool in server.listed
        ]
        names = function_names((name, tool.name) for name, tool in listed)
        return [
            McpTool(name, tool.name, function_for(names[(name, tool.name)], tool.description, tool.input_schema), self)
            for name, tool in listed
        ]

    def add_listener(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener`` with each status change (starting, running, failed, stopped); returns its remover.

        Added from a running event loop, it is called on that loop (so a Qt slot runs on the GUI thread); otherwise
        on the host's thread."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        entry = (listener, loop)
        with self._listeners_lock:
            self._listeners.append(entry)

        def remove() -> None:
            with self._listeners_lock, contextlib.suppress(ValueError):
                self._listeners.remove(entry)

        return remove

    async def aclose(self) -> None:
        """:meth:`close` for a caller on an event loop: the servers stop without blocking that loop."""
        if not self._closed:
            await self._submit(self._stop_all())
        self.close()  # nothing left to stop: only the thread to end

    def close(self) -> None:
        """Stop every server and end the thread; safe to call twice. Blocks up to a few seconds per dying server."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("McpHost.close() called from its own thread")
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._stop_all(), self._loop)
            try:
                future.result(timeout=STOP_TIMEOUT_S + 5)
            except (concurrent.futures.TimeoutError, Exception):
                logger.warning("MCP servers did not all stop in time", exc_info=True)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=STOP_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    # ------------------------------------------------------------------ plumbing

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        # Let the last cancelled tasks finish their cleanup before the loop closes.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())

    async def _submit(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return await asyncio.wrap_future(future)

    def _notify(self, server: _Server) -> None:
        status = server.status()
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener, loop in listeners:
            if loop is None:
                self._call_listener(listener, status)
            else:
                with contextlib.suppress(RuntimeError):  # that loop has closed
                    loop.call_soon_threadsafe(self._call_listener, listener, status)

    @staticmethod
    def _call_listener(listener: StatusListener, status: McpServerStatus) -> None:
        try:
            listener(status)
        except Exception:
            logger.exception("an MCP status listener failed")

    def _set_state(self, server: _Server, state: McpServerState, message: str = "") -> None:
        server.state, server.message = state, message
        logger.info("MCP server %r: %s%s", server.config.name, state.value, f" ({message})" if message else "")
        self._notify(server)

    # ------------------------------------------------------------------ on the host's loop

    def _transport(self, config: McpServerConfig, conn: _Connection) -> contextlib.AbstractAsyncContextManager[Any]:
        if config.transport == "stdio":
            # stderr goes to a file: the server's last words explain a crash ("missing API key"), and a pipe nobody
            # reads would block a chatty server.
            conn.stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
            program, *args = config.command
            params = StdioServerParameters(command=program, args=args, env=dict(config.env))
            return stdio_client(params, errlog=conn.stderr)
        return _http_transport(config, conn)

    async def _runner(self, server: _Server, conn: _Connection, ready: asyncio.Future[None]) -> None:
        """Holds one connection open from the handshake to the stop (or the server's end)."""

        def ended() -> None:
            conn.transport_ended = True
            conn.wake.set()

        try:
            async with Client(_watched(self._transport(server.config, conn), ended)) as client:
                listed: list[mcp_types.Tool] = []
                cursor: str | None = None
                for _ in range(_LIST_PAGES_CAP):
                    page = await client.list_tools(cursor=cursor)
                    listed += page.tools
                    cursor = page.next_cursor
                    if cursor is None:
                        break
                server.listed, conn.client = tuple(listed), client
                ready.set_result(None)
                await conn.wake.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            elif not conn.stopping:
                logger.warning("MCP server %r: session ended with an error", server.config.name, exc_info=True)
        finally:
            conn.client = None
            # The server ended on its own, between calls: say so now (a call would find out only when made).
            if not conn.stopping and server.conn is conn and server.state is McpServerState.RUNNING:
                said = conn.stderr_tail() if server.config.transport == "stdio" else ""
                self._set_state(server, McpServerState.FAILED, f"the server exited: {said}" if said else "it exited")

    async def _start(self, config: McpServerConfig, restarts_left: int) -> McpServerStatus:
        if config.name in self._servers:
            await self._stop(config.name, forget=True)
        server = _Server(config, restarts_left=restarts_left)
        self._servers[config.name] = server
        async with server.lock:
            await self._connect(server)
        return server.status()

    async def _connect(self, server: _Server) -> None:
        """Start a new connection to ``server`` and wait for its tools (or its failure); the caller holds the lock."""
        conn = server.conn = _Connection()
        self._set_state(server, McpServerState.STARTING)
        ready: asyncio.Future[None] = self._loop.create_future()
        # Read even when nobody awaits it any more (a start that timed out), so asyncio logs no "never retrieved".
        ready.add_done_callback(lambda future: future.cancelled() or future.exception())
        conn.runner = self._loop.create_task(self._runner(server, conn, ready), name=f"mcp:{server.config.name}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout=server.config.start_timeout_s)
        except TimeoutError:
            await self._abandon(conn)
            self._set_state(server, McpServerState.FAILED, f"did not answer within {server.config.start_timeout_s:g} s")
        except asyncio.CancelledError:
            await self._abandon(conn)
            self._set_state(server, McpServerState.STOPPED, "cancelled while starting")
            raise
        except Exception as exc:
            reason = _describe_failure(server, exc)  # before _abandon closes the stderr it quotes
            await self._abandon(conn)
            self._set_state(server, McpServerState.FAILED, reason)
        else:
            if conn.transport_ended:
                reason = _describe_failure(server, _TransportEnded())
                await self._abandon(conn)
                self._set_state(server, McpServerState.FAILED, reason)
            else:
                self._set_state(server, McpServerState.RUNNING)

    async def _abandon(self, conn: _Connection) -> None:
        """End a connection's runner (politely when it is connected, else by cancelling it); close its stderr."""
        conn.stopping = True
        conn.wake.set()
        runner = conn.runner
        if runner is not None and not runner.done():
            # A runner still in the handshake never reaches its wait: cancel it at once (the SDK's transport still
            # closes the server's stdin and kills it if need be, shielded from the cancellation).
            connected = conn.client is not None
            done, _ = await asyncio.wait({runner}, timeout=STOP_TIMEOUT_S / 2) if connected else (set(), set())
            if not done:
                runner.cancel()
                await asyncio.wait({runner}, timeout=STOP_TIMEOUT_S / 2)
        if conn.stderr is not None:
            conn.stderr.close()

    async def _stop(self, name: str, forget: bool) -> None:
        server = self._servers.get(name)
        if server is None:
            return
        if forget:
            del self._servers[name]
        await self._abandon(server.conn)
        self._set_state(server, McpServerState.STOPPED)

    async def _stop_all(self) -> None:
        await asyncio.gather(*(self._stop(name, forget=True) for name in list(self._servers)), *self._teardowns)

    def _unavailable(self, server: _Server, started: float, reason: str) -> ToolOutcome:
        name = server.config.name
        return ToolOutcome(
            ToolStatus.UNAVAILABLE,
            f"The MCP server '{name}' stopped ({reason}); its tools cannot be used now.",
            notice=f"MCP server '{name}' stopped: {reason}",
            seconds=time.perf_counter() - started,
        )

    async def _ensure_running(self, server: _Server, started: float) -> ToolOutcome | None:
        """None when ``server`` runs (restarting it once if it stopped on its own); else the outcome to return."""
        async with server.lock:
            conn = server.conn
            if server.state is McpServerState.RUNNING and conn.client is not None and not conn.transport_ended:
                return None
            if server.state is McpServerState.RUNNING:  # its transport just ended; the runner is winding down
                reason = _describe_failure(server, _TransportEnded())
                await self._abandon(conn)
                self._set_state(server, McpServerState.FAILED, reason)
            if server.state is not McpServerState.FAILED or server.restarts_left <= 0:
                return self._unavailable(server, started, server.message or "it is not running")
            server.restarts_left -= 1
            logger.info("MCP server %r: restarting after: %s", server.config.name, server.message)
            await self._abandon(conn)
            await self._connect(server)
            if not server.status().running:  # (through status(): mypy would keep the narrowing from above)
                return self._unavailable(server, started, f"it could not be restarted: {server.message}")
            return None

    async def _call(self, name: str, tool: str, arguments: dict[str, Any]) -> ToolOutcome:
        started = time.perf_counter()
        server = self._servers.get(name)
        if server is None:
            return ToolOutcome(ToolStatus.UNAVAILABLE, f"There is no MCP server named '{name}'.")
        refused = await self._ensure_running(server, started)
        if refused is not None:
            return refused
        conn = server.conn
        client = conn.client
        if client is None:  # stopped while we waited for the lock
            return self._unavailable(server, started, server.message or "it was stopped")
        if tool not in {listed.name for listed in server.listed}:
            return ToolOutcome(
                ToolStatus.UNKNOWN_TOOL,
                f"The MCP server '{name}' has no tool named {tool!r}.",
                seconds=time.perf_counter() - started,
            )
        timeout = server.config.call_timeout_s
        try:
            result = await client.call_tool(tool, arguments, read_timeout_seconds=timeout)
        except MCPError as exc:
            if exc.error.code == mcp_types.REQUEST_TIMEOUT:
                await self._check_alive(server, conn, client)
                return ToolOutcome(
                    ToolStatus.TIMEOUT,
                    f"Error: the tool {tool!r} of the MCP server '{name}' did not answer within {timeout:g} s.",
                    seconds=time.perf_counter() - started,
                )
            if exc.error.code == mcp_types.CONNECTION_CLOSED or conn.transport_ended:
                return await self._died(server, conn, started, exc)
            # The server refused the request (bad parameters, an internal error): the model may fix its call.
            return ToolOutcome(ToolStatus.ERROR, f"Error: {exc.error.message}", seconds=time.perf_counter() - started)
        except _CONNECTION_ERRORS as exc:
            return await self._died(server, conn, started, exc)
        text = result_text(result)
        truncated = len(text) > MAX_OUTPUT_CHARS
        if truncated:
            text = text[:MAX_OUTPUT_CHARS] + "\n[output truncated]"
        if result.is_error:
            text = text if text.lower().startswith("error") else f"Error: {text or 'the tool failed'}"
            return ToolOutcome(ToolStatus.ERROR, text, seconds=time.perf_counter() - started, truncated=truncated)
        return ToolOutcome(ToolStatus.OK, text, seconds=time.perf_counter() - started, truncated=truncated)

    async def _died(self, server: _Server, conn: _Connection, started: float, exc: BaseException) -> ToolOutcome:
        """The connection broke under a call: wind the session down, mark the server failed, tell the model."""
        reason = _describe_failure(server, _TransportEnded() if server.config.transport == "stdio" else exc)
        async with server.lock:
            if server.conn is conn and server.state is McpServerState.RUNNING:
                await self._abandon(conn)
                self._set_state(server, McpServerState.FAILED, reason)
        return self._unavailable(server, started, server.message or reason)

    async def _check_alive(self, server: _Server, conn: _Connection, client: Client) -> None:
        """After a timeout: a server that does not answer a quick request either is hung, and is torn down.

        The request is a fresh tool listing: ``ping`` is gone from the 2026-07-28 protocol, every server lists."""
        timeout = server.config.call_timeout_s
        probe = client.list_tools(cache_mode="refresh")
        try:
            await asyncio.wait_for(probe, timeout=min(PROBE_TIMEOUT_S, timeout))
            return
        except (TimeoutError, MCPError, *_CONNECTION_ERRORS):
            pass
        if server.conn is conn and server.state is McpServerState.RUNNING:
            # Failed now, so the next call restarts it; torn down in the background, so the model gets its timeout
            # without waiting for the SDK to kill a frozen process (seconds).
            self._set_state(server, McpServerState.FAILED, f"it stopped answering (a call ran past {timeout:g} s)")
            teardown = self._loop.create_task(self._abandon(conn), name=f"mcp-teardown:{server.config.name}")
            self._teardowns.add(teardown)
            teardown.add_done_callback(self._teardowns.discard)
