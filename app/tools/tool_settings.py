"""The user's tool choices, as stored in the settings (no Qt here): the python tool on or off, the browser (on or off,
its search provider, whether it may open local hosts), functions switched off, each tool's policy, and the MCP
servers.

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
from gpt_oss_desktop.engine.tools.browser.names import BROWSER_NAMESPACE, is_browser_call
from gpt_oss_desktop.engine.tools.browser.search import SearchKind
from gpt_oss_desktop.engine.tools.builtin_functions import BUILTIN_FUNCTIONS

logger = logging.getLogger(__name__)

# The built-in functions only read the clock or do arithmetic: nothing to approve. The python tool runs code the
# model wrote, and an MCP server's tools can do anything the server can: those ask first.
_ALWAYS_BY_DEFAULT: Final = frozenset(tool.recipient for tool in BUILTIN_FUNCTIONS)


def default_policy(recipient: str) -> ToolPolicy:
    return ToolPolicy.ALWAYS if recipient in _ALWAYS_BY_DEFAULT else ToolPolicy.ASK


def setting_key(recipient: str) -> str:
    """The name a tool's switch and policy are kept under: the browser's three calls share ``browser``."""
    recipient = recipient.strip()
    return BROWSER_NAMESPACE if is_browser_call(recipient) else recipient


@dataclass(frozen=True, slots=True)
class ToolSettings:
    """Args:
    python_enabled: offer the sandboxed python tool.
    browser_enabled: offer the browser (off until the user turns it on: it reaches the network).
    search_kind: the browser's web search provider (its key, where it needs one, is in the keyring).
    search_url: the address of a SearXNG instance.
    browse_local_hosts: let the browser open hosts on this computer and the local network.
    disabled: recipients of function tools the user switched off (built-in or MCP).
    policies: each tool's policy by recipient where it differs from :func:`default_policy`.
    mcp_servers: the MCP servers, each as its config's dict (engine/tools/mcp_config.py) with the header and
        environment values left out (app/tools/mcp_secrets.py keeps those in the keyring).
    """

    python_enabled: bool = True
    browser_enabled: bool = False
    search_kind: SearchKind = SearchKind.DUCKDUCKGO
    search_url: str = ""
    browse_local_hosts: bool = False
    disabled: frozenset[str] = frozenset()
    policies: Mapping[str, ToolPolicy] = field(default_factory=dict)
    # Not in the repr: a settings file from an older version holds the values in plain text until they are moved.
    mcp_servers: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    def policy(self, recipient: str) -> ToolPolicy:
        key = setting_key(recipient)
        return self.policies.get(key, default_policy(key))

    def with_policy(self, recipient: str, policy: ToolPolicy) -> ToolSettings:
        return replace(self, policies={**self.policies, setting_key(recipient): policy})

    def enabled(self, recipient: str) -> bool:
        key = setting_key(recipient)
        if key == PYTHON_TOOL:
            return self.python_enabled
        if key == BROWSER_NAMESPACE:
            return self.browser_enabled
        return recipient not in self.disabled

    def with_enabled(self, recipient: str, enabled: bool) -> ToolSettings:
        key = setting_key(recipient)
        if key == PYTHON_TOOL:
            return replace(self, python_enabled=enabled)
        if key == BROWSER_NAMESPACE:
            return replace(self, browser_enabled=enabled)
        disabled = self.disabled - {recipient} if enabled else self.disabled | {recipient}
        return replace(self, disabled=frozenset(disabled))

    def to_json(self) -> str:
        return json.dumps(
            {
                "python_enabled": self.python_enabled,
                "browser_enabled": self.browser_enabled,
                "search_kind": self.search_kind.value,
                "search_url": self.search_url,
                "browse_local_hosts": self.browse_local_hosts,
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
        try:
            search_kind = SearchKind(data.get("search_kind", SearchKind.DUCKDUCKGO.value))
        except ValueError:
            logger.warning("unknown search provider %r; DuckDuckGo instead", data.get("search_kind"))
            search_kind = SearchKind.DUCKDUCKGO
        search_url = data.get("search_url")
        return cls(
            python_enabled=python_enabled if isinstance(python_enabled, bool) else True,
            browser_enabled=data.get("browser_enabled") is True,
            search_kind=search_kind,
            search_url=search_url if isinstance(search_url, str) else "",
            browse_local_hosts=data.get("browse_local_hosts") is True,
            disabled=frozenset(str(n) for n in disabled) if isinstance(disabled, list) else frozenset(),
            policies=policies,
            mcp_servers=tuple(s for s in servers if isinstance(s, dict)) if isinstance(servers, list) else (),
        )
