"""What a chat session needs to run tools: the tools on offer now, each tool's policy, and where a new policy is
remembered (no Qt here; the window builds one from the settings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gpt_oss_desktop.app.chat.tool_calls import MAX_TOOL_CALLS
from gpt_oss_desktop.engine.tools.base import ToolPolicy
from gpt_oss_desktop.engine.tools.toolbox import Toolbox


@dataclass(frozen=True, slots=True)
class ToolAccess:
    """Args:
    toolbox: the tools to offer for the next answer (read at each answer's start, so a settings change applies to
        the next answer, never to one half-way through its loop); None offers none.
    policy: a tool's policy, by recipient (``python``, ``functions.get_current_time``).
    remember: store a tool's new policy ("Always allow" on an approval card).
    max_calls: calls per answer before the loop is stopped.
    """

    toolbox: Callable[[], Toolbox | None]
    policy: Callable[[str], ToolPolicy]
    remember: Callable[[str, ToolPolicy], None]
    max_calls: int = MAX_TOOL_CALLS
