"""The tools offered to the model for one answer, and running a call the model made to one of them.

Whoever runs a tool loop (the app's chat session, a command-line chat) asks the toolbox what to render into the
prompt (:attr:`Toolbox.python_tool`, :attr:`Toolbox.function_specs`) and hands it each call. Every call ends in a
:class:`~engine.tools.base.ToolOutcome`, never an exception, so a misbehaving tool or a confused model cannot end
the answer: an unknown tool, a tool that raises or one that overruns its time all become results the model reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Final

from gpt_oss_desktop.engine.harmony import PYTHON_TOOL, FunctionTool
from gpt_oss_desktop.engine.tools.base import Tool, ToolOutcome, ToolStatus
from gpt_oss_desktop.engine.tools.browser.names import is_browser_call
from gpt_oss_desktop.engine.tools.builtin_functions import FUNCTIONS_NAMESPACE

logger = logging.getLogger(__name__)

# A last guard around every call: tools keep their own, shorter limits (the sandbox's seconds, an MCP server's call
# timeout); this only catches a tool that forgets to.
CALL_DEADLINE_S: Final = 300.0


def _key(recipient: str) -> str:
    """Recipients as models write them: ``functions.x``, sometimes a bare ``x``, with stray spaces."""
    return recipient.strip()


class Toolbox:
    """An immutable set of tools, looked up by the recipient the model addresses.

    Args:
        tools: the tools; a recipient may appear once.
        deadline_s: the most any call may take before it is abandoned (see :data:`CALL_DEADLINE_S`).
    """

    def __init__(self, tools: Iterable[Tool], *, deadline_s: float = CALL_DEADLINE_S) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.recipient in self._tools:
                raise ValueError(f"two tools are named {tool.recipient!r}")
            self._tools[tool.recipient] = tool
        self._deadline_s = deadline_s

    @property
    def tools(self) -> tuple[Tool, ...]:
        return tuple(self._tools.values())

    @property
    def python_tool(self) -> bool:
        """Whether the built-in python tool is offered (rendered in the system message)."""
        return PYTHON_TOOL in self._tools

    @property
    def browser_tool(self) -> bool:
        """Whether the built-in browser is offered (rendered in the system message): any of its recipients is here."""
        return any(is_browser_call(recipient) for recipient in self._tools)

    @property
    def function_specs(self) -> tuple[FunctionTool, ...]:
        """The function tools, for the developer message, in the order they were given."""
        return tuple(tool.spec for tool in self._tools.values() if tool.spec is not None)

    def __bool__(self) -> bool:
        return bool(self._tools)

    def find(self, recipient: str) -> Tool | None:
        """The tool ``recipient`` names: exactly, or a function named without its ``functions.`` namespace."""
        key = _key(recipient)
        tool = self._tools.get(key)
        if tool is None and not key.startswith(FUNCTIONS_NAMESPACE):
            tool = self._tools.get(FUNCTIONS_NAMESPACE + key)
        return tool

    def unknown(self, recipient: str) -> ToolOutcome:
        """The result for a call to a tool that is not offered: it names the ones that are, so the model can retry."""
        names = ", ".join(sorted(self._tools)) or "none"
        return ToolOutcome(
            ToolStatus.UNKNOWN_TOOL, f"Error: there is no tool named {_key(recipient)!r}. Available tools: {names}."
        )

    async def run(self, recipient: str, arguments: str) -> ToolOutcome:
        """Run one call. Cancelling the awaiting task cancels the tool (which cleans up) and propagates."""
        tool = self.find(recipient)
        if tool is None:
            return self.unknown(recipient)
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(tool.run(arguments), self._deadline_s)
        except TimeoutError:
            return ToolOutcome(
                ToolStatus.TIMEOUT,
                f"Error: {tool.recipient} did not finish within {self._deadline_s:.0f} s and was stopped.",
                seconds=time.perf_counter() - started,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a tool's bug must not end the answer: the model and the log get it
            logger.exception("tool %s raised", tool.recipient)
            return ToolOutcome(
                ToolStatus.ERROR,
                f"Error: {tool.recipient} failed ({type(exc).__name__}: {exc}).",
                seconds=time.perf_counter() - started,
            )
