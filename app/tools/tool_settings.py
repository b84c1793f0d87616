"""The user's tool choices, as stored in the settings (no Qt here): the python tool on or off, functions switched
off, each tool's policy, and the MCP servers.

Stored as one JSON value, read tolerantly: a settings file from an older or newer version, or edited by hand, gives
the defaults for what it does not say clearly, never an error at startup.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from gpt_oss_desktop.engine.harmony import PYTHON_TOOL
from gpt_oss_desktop.engine.tools.base import ToolPolicy
from gpt_oss_desktop.engine.tools.builtin_functions import BUILTIN_FUNCTIONS

logger = logging.getLogger(__name__)

# The built-in functions only read the clock or do arithmetic: nothing to approve. The python tool runs code the
# model wrote, and an MCP server's tools can do anything the server can: those ask first.
_ALWAYS_BY_DEFAULT: Final = frozenset(tool.recipient for tool in BUILTIN_FUNCTIONS)


def default_policy(recipient: str) -> ToolPolicy:
    return ToolPolicy.ALWAYS if recipient in _ALWAYS_BY_DEFAULT else ToolPolicy.ASK


@dataclass(frozen=True, slots=True)
class ToolSettings:
    """Args:
    python_enabled: offer the sandboxed python tool.
    disabled: recipients of function tools the user switched off (built-in or MCP).
    policies: each tool's policy by recipient where it differs from :func:`default_policy`.
    mcp_servers: the MCP servers, each as its config's dict (engine/tools/mcp_config.py) with the header and
        environment values left out (app/tools/mcp_secrets.py keeps those in the keyring).
    """

    python_enabled: bool = True
    disabled: frozenset[str] = frozenset()
    policies: Mapping[str, ToolPolicy] = field(default_factory=dict)
    # Not in the repr: a settings file from an older version holds the values in plain text until they are moved.
    mcp_servers: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    def policy(self, recipient: str) -> ToolPolicy:
        return self.policies.get(recipient, default_policy(recipient))

    def with_policy(self, recipient: str, policy: ToolPolicy) -> ToolSettings:
        return replace(self, policies={**self.policies, recipient: policy})

    def enabled(self, recipient: str) -> bool:
        if recipient == PYTHON_TOOL:
            return self.python_enabled
        return recipient not in self.disabled

    def with_enabled(self, recipient: str, enabled: bool) -> ToolSettings:
        if recipient == PYTHON_TOOL:
            return replace(self, python_enabled=enabled)
        disabled = self.disabled - {recipient} if enabled else self.disabled | {recipient}
        return replace(self, disabled=frozenset(disabled))

    def to_json(self) -> str:
        return json.dumps(
            {
                "python_enabled": self.python_enabled,
                "disabled": sorted(self.disabled),
                "policies": {name: policy.value for name, policy in sorted(self.policies.items())},
                "mcp_servers": [dict(server) for server in self.mcp_servers],
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> ToolSettings:
        """The settings ``text`` holds; the defaults for anything missing or unreadable (logged, never raised)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            logger.warning("tool settings are not JSON (%s); using the defaults", exc.msg)
            return cls()
        if not isinstance(data, dict):
            logger.warning("tool settings are not a JSON object; using the defaults")
            return cls()
        policies: dict[str, ToolPolicy] = {}
        raw_policies = data.get("policies")
        for name, value in raw_policies.items() if isinstance(raw_policies, dict) else ():
            try:
                policies[str(name)] = ToolPolicy(value)
            except ValueError:
                logger.warning("unknown policy %r for tool %r; asking instead", value, name)
        disabled = data.get("disabled")
        servers = data.get("mcp_servers")
        python_enabled = data.get("python_enabled", True)
        return cls(
            python_enabled=python_enabled if isinstance(python_enabled, bool) else True,
            disabled=frozenset(str(n) for n in disabled) if isinstance(disabled, list) else frozenset(),
            policies=policies,
            mcp_servers=tuple(s for s in servers if isinstance(s, dict)) if isinstance(servers, list) else (),
        )
