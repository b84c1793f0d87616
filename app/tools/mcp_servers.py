"""The MCP servers of the app's chats (no Qt here): started and stopped on one
:class:`~engine.tools.mcp_host.McpHost` as the settings change, their tools offered to the model, their troubles
reported to the window.

The host (and its thread) is made only once a server is enabled, so a user without MCP servers pays nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gpt_oss_desktop.app.tools.mcp_secrets import McpSecrets
from gpt_oss_desktop.engine.tools.base import Tool
from gpt_oss_desktop.engine.tools.mcp_config import McpConfigError, McpServerConfig
from gpt_oss_desktop.engine.tools.mcp_host import McpHost, McpServerState, McpServerStatus

logger = logging.getLogger(__name__)

Notice = Callable[[str], None]


def read_configs(raw: Sequence[Mapping[str, Any]], secrets: McpSecrets) -> tuple[list[McpServerConfig], list[str]]:
    """The servers the settings hold, their header and environment values from ``secrets``, and a sentence for each
    one that cannot start: unreadable, or a value not known this run. It is skipped, not lost: the settings keep it
    as written."""
    configs: list[McpServerConfig] = []
    problems: list[str] = []
    for entry in raw:
        try:
            resolved = secrets.resolve(entry)
        except McpConfigError as exc:
            problems.append(str(exc))
            continue
        if resolved.missing:  # without its token a server fails later, in words that do not say why
            problems.append(secrets.missing_sentence(resolved.config.name, resolved.missing))
        else:
            configs.append(resolved.config)
    return configs, problems


class McpServers:
    """Args:
    notice: told, on the loop that called :meth:`apply`, when a server fails to start or stops on its own.
    host_factory: makes the host (tests may pass their own).
    """

    def __init__(self, notice: Notice | None = None, host_factory: Callable[[], McpHost] = McpHost) -> None:
        self._notice = notice
        self._host_factory = host_factory
        self._host: McpHost | None = None
        self._running: dict[str, McpServerConfig] = {}  # by name: the config each started server runs with
        self._lock = asyncio.Lock()

    def set_notice(self, notice: Notice) -> None:
        self._notice = notice

    @property
    def host(self) -> McpHost | None:
        return self._host

    def tools(self) -> list[Tool]:
        """The running servers' tools (function tools named ``functions.<server>_<tool>``)."""
        return list(self._host.all_tools()) if self._host is not None else []

    def status(self, name: str) -> McpServerStatus | None:
        return self._host.status(name) if self._host is not None else None

    async def apply(self, configs: Sequence[McpServerConfig]) -> list[McpServerStatus]:
        """Run exactly the enabled servers of ``configs``: stop the ones removed, disabled or changed, start the new
        and changed ones. Returns the statuses of the servers it started."""
        async with self._lock:
            wanted = {config.name: config for config in configs if config.enabled}
            host = self._host
            for name in [n for n, running in self._running.items() if wanted.get(n) != running]:
                del self._running[name]
                if host is not None:
                    await host.stop(name)
            started: list[McpServerStatus] = []
            for name, config in wanted.items():
                if name in self._running:
                    continue
                host = self._ensure_host()
                self._running[name] = config  # before the start: its failure is reported by _on_status
                started.append(await host.start(config))
            return started

    def close(self) -> None:
        """Stop every server (at app exit); safe twice."""
        if self._host is not None:
            self._host.close()
            self._host = None
        self._running.clear()

    def _ensure_host(self) -> McpHost:
        if self._host is None:
            self._host = self._host_factory()
            self._host.add_listener(self._on_status)
        return self._host

    def _on_status(self, status: McpServerStatus) -> None:
        # A server that did not start, or that died or hung later (the host restarts it once at the next call).
        if status.state is McpServerState.FAILED and status.name in self._running:
            self._tell(f"MCP server '{status.name}' failed: {status.message or 'no reason given'}")

    def _tell(self, message: str) -> None:
        logger.warning("%s", message)
        if self._notice is not None:
            self._notice(message)
