"""What every tool is and returns: the :class:`Tool` protocol and the :class:`ToolOutcome` of one call.

A tool never raises for something that went wrong in the call: errors, timeouts and refusals are outcomes, and the
outcome's ``output`` goes back to the model as the tool's message (so the model can read what happened and go on).
Only cancellation propagates (``asyncio.CancelledError``): Stop cancels the task that awaits :meth:`Tool.run`, and
the tool cleans up (kills its process, abandons its request) on the way out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gpt_oss_desktop.engine.harmony import FunctionTool


class ToolStatus(enum.StrEnum):
    """How a call ended."""

    OK = "ok"
    ERROR = "error"  # the tool ran and failed (an exception, a non-zero exit, a server's error)
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"  # Stop was pressed while it ran
    DENIED = "denied"  # the user (or the tool's policy) refused it
    UNKNOWN_TOOL = "unknown_tool"
    BAD_ARGUMENTS = "bad_arguments"  # the model's arguments were not valid JSON, or not what the tool takes
    UNAVAILABLE = "unavailable"  # the tool's server died or is not running


class ToolPolicy(enum.StrEnum):
    """Whether a call to a tool runs without asking the user (per tool; the app's settings hold them)."""

    ASK = "ask"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """The result of one call.

    Attributes:
        status: how it ended.
        output: the text the model receives as the tool's message.
        notice: a short line for the user when something went wrong that they may want to fix (a dead MCP server,
            no sandbox); empty otherwise.
        seconds: how long the call ran.
        truncated: the output was cut to the tool's cap.
    """

    status: ToolStatus
    output: str
    notice: str = ""
    seconds: float = 0.0
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.status is ToolStatus.OK


@runtime_checkable
class Tool(Protocol):
    """One callable tool.

    ``recipient`` is the harmony recipient the model addresses it by (``python``, ``functions.get_current_time``);
    ``spec`` is what the developer message shows for a function tool (None for the built-in python tool, which the
    system message describes). ``run`` takes the model's raw argument text (JSON for functions, code for python).
    """

    @property
    def recipient(self) -> str: ...

    @property
    def spec(self) -> FunctionTool | None: ...

    async def run(self, arguments: str) -> ToolOutcome: ...
