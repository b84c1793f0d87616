"""The tools of the app's own chats (no Qt here): each answer's :class:`~engine.tools.toolbox.Toolbox` built from the
user's :class:`~app.tools.tool_settings.ToolSettings`, and the policies the chat session reads and remembers.

The local server never goes through here: a client of the server runs its own tools (issue: the app executes tools
only for its own chats).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.engine.tools.base import Tool, ToolPolicy
from gpt_oss_desktop.engine.tools.builtin_functions import BUILTIN_FUNCTIONS
from gpt_oss_desktop.engine.tools.toolbox import Toolbox

logger = logging.getLogger(__name__)

SaveSettings = Callable[[ToolSettings], None]


class AppTools:
    """Args:
    settings: the user's choices now.
    save: writes changed settings (the window's QSettings).
    python_tool: the sandboxed python tool (None where it cannot run).
    extra_tools: more tools, read at each answer (the MCP servers' tools while they run).
    """

    def __init__(
        self,
        settings: ToolSettings,
        *,
        save: SaveSettings,
        python_tool: Tool | None = None,
        extra_tools: Callable[[], Sequence[Tool]] | None = None,
    ) -> None:
        self._settings = settings
        self._save = save
        self.python_tool = python_tool
        self._extra_tools = extra_tools

    @property
    def settings(self) -> ToolSettings:
        return self._settings

    def update(self, settings: ToolSettings) -> None:
        """New choices (the Tools dialog, "Always run"): saved at once, used from the next answer on."""
        self._settings = settings
        self._save(settings)

    def available(self) -> list[Tool]:
        """Every tool the app could offer now, on or off: python, the built-in functions, running MCP servers' tools."""
        tools: list[Tool] = [self.python_tool] if self.python_tool is not None else []
        tools.extend(BUILTIN_FUNCTIONS)
        if self._extra_tools is not None:
            tools.extend(self._extra_tools())
        return tools

    def toolbox(self) -> Toolbox:
        """The tools switched on, for the next answer."""
        seen: set[str] = set()
        chosen: list[Tool] = []
        for tool in self.available():
            if tool.recipient in seen:  # two MCP servers with one tool name: the first wins, and the log says so
                logger.warning("two tools are named %s; offering the first", tool.recipient)
                continue
            seen.add(tool.recipient)
            if self._settings.enabled(tool.recipient):
                chosen.append(tool)
        return Toolbox(chosen)

    def policy(self, recipient: str) -> ToolPolicy:
        return self._settings.policy(recipient)

    def remember(self, recipient: str, policy: ToolPolicy) -> None:
        self.update(self._settings.with_policy(recipient, policy))
