"""An MCP server's tool as a harmony function tool: :class:`McpTool`, and the names the model calls them by.

MCP tool names may hold dashes, dots and slashes, and two servers may both offer ``search``; harmony recipients are
``functions.<identifier>``. So each tool gets a name ``<server>__<tool>`` cut down to ``[A-Za-z0-9_]`` and at most
:data:`MAX_FUNCTION_NAME` characters, made unique by a short hash where two would clash, and the tool keeps its
server and its original name: the reverse mapping is the object itself, never re-derived from the name (peers that
re-derive it lose calls: ollama/ollama#12187 "no reverse mapping found").
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from gpt_oss_desktop.engine.harmony import FunctionTool
from gpt_oss_desktop.engine.tools.arguments import BadArguments, bad_arguments_outcome, parse_arguments
from gpt_oss_desktop.engine.tools.base import ToolOutcome

FUNCTIONS_NAMESPACE: Final = "functions."
# OpenAI's limit on function names; the model has seen nothing longer.
MAX_FUNCTION_NAME: Final = 64
_HASH_CHARS: Final = 8
_NOT_IDENTIFIER: Final = re.compile(r"[^A-Za-z0-9_]")


class McpCaller(Protocol):
    """What runs a call on a server (:class:`~engine.tools.mcp_host.McpHost`)."""

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolOutcome: ...


def _sanitise(text: str) -> str:
    return _NOT_IDENTIFIER.sub("_", text) or "_"


def _hashed(base: str, server: str, tool: str) -> str:
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:_HASH_CHARS]
    return f"{base[: MAX_FUNCTION_NAME - _HASH_CHARS - 1]}_{digest}"


def function_names(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A function name for each (server, tool): a valid identifier, unique, at most :data:`MAX_FUNCTION_NAME` long.

    Deterministic for a given set of pairs (they are named in sorted order, so the first of two that clash keeps
    the plain name and the other gets a hash of its server and tool name)."""
    names: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for server, tool in sorted(set(pairs)):
        base = f"{_sanitise(server)}__{_sanitise(tool)}"
        if base[0].isdigit():
            base = "mcp_" + base
        name = base if len(base) <= MAX_FUNCTION_NAME else _hashed(base, server, tool)
        if name in taken:
            name = _hashed(base, server, tool)
        # Still taken only if a hash collides with another tool's plain name; count up (never seen in practice).
        suffix = 2
        while name in taken:
            name = f"{_hashed(base, server, tool)[: MAX_FUNCTION_NAME - 4]}_{suffix}"
            suffix += 1
        taken.add(name)
        names[(server, tool)] = name
    return names


@dataclass(frozen=True, slots=True)
class McpTool:
    """One tool of one MCP server, offered to the model as ``functions.<function name>``.

    Attributes:
        server: the server's configured name.
        tool: the tool's name on that server, exactly as it listed it (what the call sends).
        function: the harmony function the model sees (its name from :func:`function_names`; the tool's description
            and input schema).
        caller: runs the call (the host that holds the server's connection).
    """

    server: str
    tool: str
    function: FunctionTool
    caller: McpCaller

    @property
    def recipient(self) -> str:
        return FUNCTIONS_NAMESPACE + self.function.name

    @property
    def spec(self) -> FunctionTool | None:
        return self.function

    async def run(self, arguments: str) -> ToolOutcome:
        started = time.perf_counter()
        try:
            parsed = parse_arguments(arguments)
        except BadArguments as exc:
            return bad_arguments_outcome(exc, started)
        return await self.caller.call(self.server, self.tool, parsed)


def function_for(name: str, description: str | None, input_schema: Mapping[str, Any] | None) -> FunctionTool:
    """The harmony function for an MCP tool listed with ``description`` and ``input_schema``."""
    schema = dict(input_schema) if input_schema else {"type": "object", "properties": {}}
    return FunctionTool(name=name, description=(description or "").strip(), parameters=schema)
