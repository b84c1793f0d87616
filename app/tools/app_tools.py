"""The tools of the app's own chats (no Qt here): each answer's :class:`~engine.tools.toolbox.Toolbox` built from the
user's :class:`~app.tools.tool_settings.ToolSettings`, and the policies the chat session reads and remembers.

Each answer gets a browser of its own (engine/tools/browser): its pages and cursors belong to that answer.

The local server never goes through here: a client of the server runs its own tools (issue: the app executes tools
only for its own chats).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.engine.tools.base import Tool, ToolPolicy
from gpt_oss_desktop.engine.tools.browser.fetcher import FetchLimits, PageFetcher
from gpt_oss_desktop.engine.tools.browser.search import SearchKind, SearchProvider, make_provider
from gpt_oss_desktop.engine.tools.browser.session import BrowserSession, browser_tools
from gpt_oss_desktop.engine.tools.builtin_functions import BUILTIN_FUNCTIONS
from gpt_oss_desktop.engine.tools.toolbox import Toolbox

logger = logging.getLogger(__name__)

SaveSettings = Callable[[ToolSettings], None]
# A search provider's API key (None: none stored).
SearchKey = Callable[[SearchKind], str | None]


class AppTools:
    """Args:
    settings: the user's choices now.
    save: writes changed settings (the window's QSettings).
    python_tool: the sandboxed python tool (None where it cannot run).
    extra_tools: more tools, read at each answer (the MCP servers' tools while they run).
    search_key: reads the search provider's API key (the keyring), at each answer that offers the browser.
    """

    def __init__(
        self,
        settings: ToolSettings,
        *,
        save: SaveSettings,
        python_tool: Tool | None = None,
        extra_tools: Callable[[], Sequence[Tool]] | None = None,
        search_key: SearchKey | None = None,
    ) -> None:
        self._settings = settings
        self._save = save
        self.python_tool = python_tool
        self._extra_tools = extra_tools
        self._search_key = search_key

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
        if self._settings.browser_enabled:
            tools.extend(browser_tools(self.new_browser()))
        tools.extend(BUILTIN_FUNCTIONS)
        if self._extra_tools is not None:
            tools.extend(self._extra_tools())
        return tools

    def new_browser(self) -> BrowserSession:
        """A browser for one answer, as the settings describe it."""
        limits = FetchLimits(allow_private_hosts=self._settings.browse_local_hosts)
        return BrowserSession(PageFetcher(limits), self.search_provider())

    def search_provider(self) -> SearchProvider | None:
        """The web search the settings choose, or None (none chosen, or its address or key is missing: logged)."""
        kind = self._settings.search_kind
        key = self._search_key(kind) if self._search_key is not None and kind.needs_key else None
        try:
            return make_provider(kind, base_url=self._settings.search_url, api_key=key or "")
        except ValueError as exc:
            logger.warning("web search is off: %s", exc)
            return None

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
