"""What the app stores about one MCP server: :class:`McpServerConfig`, to and from the JSON of the settings.

A config is checked when it is built, so a typo in the settings becomes a :class:`McpConfigError` that names the
server and the field ("MCP server 'files': the command is empty") rather than a failure deep in the SDK later.
"""

from __future__ import annotations

import math
import types
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

Transport = Literal["stdio", "http"]
TRANSPORTS: Final[tuple[Transport, ...]] = ("stdio", "http")
MAX_NAME_LENGTH: Final = 64
DEFAULT_CALL_TIMEOUT_S: Final = 60.0
DEFAULT_START_TIMEOUT_S: Final = 20.0


class McpConfigError(ValueError):
    """A server's settings are not usable; the message says which server, which field, and what to write."""


def _command_error(server: object) -> str:
    return f"MCP server {server!r}: the command must be a list: the program, then its arguments"


def _string_map(value: object, what: str, server: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise McpConfigError(f"MCP server {server!r}: {what} must map names to text values")
    if any(not key for key in value):
        raise McpConfigError(f"MCP server {server!r}: {what} has an empty name")
    # A read-only copy: the config is frozen, and the caller's dict may change after.
    return types.MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    """One MCP server as the user configured it.

    Attributes:
        name: what the user calls it; unique in the settings, shown in notices, and the prefix of its tools' names.
        transport: ``stdio`` (the app runs ``command`` and talks over its stdin/stdout) or ``http`` (streamable HTTP
            at ``url``).
        command: stdio: the program and its arguments.
        env: stdio: variables added to the small safe environment the SDK passes on (PATH, HOME, ...).
        url: http: the endpoint, e.g. ``http://127.0.0.1:8000/mcp``.
        headers: http: sent with every request (e.g. ``Authorization``).

    The values of ``env`` and ``headers`` are secrets (``GITHUB_TOKEN=…``, ``Authorization: Bearer …``): they are
    left out of the repr, and :meth:`to_dict` is the engine's whole config, values included, so the app keeps them
    in the keyring rather than the settings file (app/tools/mcp_secrets.py).
        enabled: off: kept in the settings but never started.
        call_timeout_s: a call that has not answered by then ends as a timeout.
        start_timeout_s: a server that has not answered the handshake and the tool list by then has failed to start.
    """

    name: str
    transport: Transport = "stdio"
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    enabled: bool = True
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise McpConfigError("an MCP server needs a name")
        if len(self.name) > MAX_NAME_LENGTH or not self.name.isprintable():
            raise McpConfigError(
                f"MCP server {self.name[:MAX_NAME_LENGTH]!r}: the name must be printable and at most "
                f"{MAX_NAME_LENGTH} characters"
            )
        if self.transport not in TRANSPORTS:
            raise McpConfigError(
                f"MCP server {self.name!r}: transport must be 'stdio' or 'http', not {self.transport!r}"
            )
        command: object = self.command  # settings JSON may hold anything here
        if not isinstance(command, tuple | list) or not all(isinstance(part, str) for part in command):
            raise McpConfigError(_command_error(self.name))
        object.__setattr__(self, "command", tuple(command))
        object.__setattr__(self, "env", _string_map(self.env, "env", self.name))
        object.__setattr__(self, "headers", _string_map(self.headers, "headers", self.name))
        if self.transport == "stdio" and (not self.command or not self.command[0].strip()):
            raise McpConfigError(f"MCP server {self.name!r}: the command is empty; give the program to run")
        if self.transport == "http":
            parsed = urllib.parse.urlsplit(self.url) if isinstance(self.url, str) else None
            if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise McpConfigError(
                    f"MCP server {self.name!r}: the URL {self.url!r} is not an http:// or https:// address"
                )
        if not isinstance(self.enabled, bool):
            raise McpConfigError(f"MCP server {self.name!r}: enabled must be true or false")
        for label, value in (("call_timeout_s", self.call_timeout_s), ("start_timeout_s", self.start_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise McpConfigError(f"MCP server {self.name!r}: {label} must be a number of seconds above 0")
            object.__setattr__(self, label, float(value))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists and plain dicts) that :meth:`from_dict` reads back to an equal config."""
        return {
            "name": self.name,
            "transport": self.transport,
            "command": list(self.command),
            "env": dict(self.env),
            "url": self.url,
            "headers": dict(self.headers),
            "enabled": self.enabled,
            "call_timeout_s": self.call_timeout_s,
            "start_timeout_s": self.start_timeout_s,
        }

    @classmethod
    def from_dict(cls, data: object) -> McpServerConfig:
        """The config stored as ``data`` (what :meth:`to_dict` wrote; missing fields take their defaults)."""
        if not isinstance(data, Mapping):
            raise McpConfigError(f"an MCP server's settings must be a JSON object, not {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(str(key) for key in data if key not in known)
        name = data.get("name", "")
        if unknown:
            raise McpConfigError(f"MCP server {name!r}: unknown setting(s) {', '.join(unknown)}")
        command = data.get("command", [])
        if not isinstance(command, list | tuple):
            raise McpConfigError(_command_error(name))
        fields = {key: value for key, value in data.items() if key != "command"}
        for text_field in ("name", "transport", "url"):
            if text_field in fields and not isinstance(fields[text_field], str):
                raise McpConfigError(f"MCP server {name!r}: {text_field} must be text")
        return cls(command=tuple(command), **cast(dict[str, Any], fields))


def configs_from_mcp_json(data: object) -> list[McpServerConfig]:
    """The servers of an ``mcp.json`` as Claude Desktop, LM Studio and Cursor write it, so a user can paste theirs:
    ``{"mcpServers": {"<name>": {"command": "npx", "args": [...], "env": {...}}}}`` for stdio, or ``{"url": ...,
    "headers": {...}}`` for streamable HTTP (``"disabled": true`` is kept as not enabled)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("mcpServers"), Mapping):
        raise McpConfigError('an mcp.json must be a JSON object with "mcpServers": {"<name>": {...}}')
    configs: list[McpServerConfig] = []
    for name, entry in data["mcpServers"].items():
        if not isinstance(entry, Mapping):
            raise McpConfigError(f"MCP server {name!r}: its entry must be a JSON object")
        kind = entry.get("type", "http" if "url" in entry else "stdio")
        if kind == "sse":
            raise McpConfigError(f"MCP server {name!r}: the old SSE transport is not supported; use streamable HTTP")
        enabled = not entry.get("disabled", False)
        if kind in ("http", "streamable-http", "streamableHttp"):
            configs.append(
                McpServerConfig.from_dict(
                    {"name": name, "transport": "http", "url": entry.get("url", ""),
                     "headers": entry.get("headers", {}), "enabled": enabled}
                )
            )  # fmt: skip
            continue
        if kind != "stdio":
            raise McpConfigError(f"MCP server {name!r}: unknown type {kind!r} (stdio or http)")
        program, args = entry.get("command", ""), entry.get("args", [])
        if not isinstance(program, str) or not isinstance(args, list):
            raise McpConfigError(f'MCP server {name!r}: "command" must be text and "args" a list')
        configs.append(
            McpServerConfig.from_dict(
                {"name": name, "command": [program, *args], "env": entry.get("env", {}), "enabled": enabled}
            )
        )
    return configs
