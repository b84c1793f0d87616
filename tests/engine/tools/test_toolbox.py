"""The toolbox: finding the tool a call names, and every way a call can go wrong ending as a result."""

from __future__ import annotations

import asyncio

import pytest

from gpt_oss_desktop.engine.harmony import FunctionTool
from gpt_oss_desktop.engine.tools.base import ToolOutcome, ToolStatus
from gpt_oss_desktop.engine.tools.builtin_functions import BUILTIN_FUNCTIONS
from gpt_oss_desktop.engine.tools.toolbox import Toolbox


class Misbehaving:
    """A function tool that raises, or sleeps, or reports its cancellation."""

    def __init__(self, name: str, *, raises: bool = False, sleeps: float = 0.0) -> None:
        self.name = name
        self.raises = raises
        self.sleeps = sleeps
        self.cancelled = False

    @property
    def recipient(self) -> str:
        return f"functions.{self.name}"

    @property
    def spec(self) -> FunctionTool:
        return FunctionTool(self.name, "misbehaves")

    async def run(self, arguments: str) -> ToolOutcome:
        if self.raises:
            raise RuntimeError("boom")
        try:
            await asyncio.sleep(self.sleeps)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return ToolOutcome(ToolStatus.OK, "slept")


def test_calls_find_their_tool_with_or_without_the_namespace() -> None:
    box = Toolbox(BUILTIN_FUNCTIONS)
    assert box.find("functions.convert_units") is BUILTIN_FUNCTIONS[1]
    assert box.find(" convert_units ") is BUILTIN_FUNCTIONS[1]
    assert box.find("python") is None and not box.python_tool
    assert [spec.name for spec in box.function_specs] == ["get_current_time", "convert_units"]
    with pytest.raises(ValueError, match="two tools"):
        Toolbox([*BUILTIN_FUNCTIONS, BUILTIN_FUNCTIONS[0]])


def test_an_unknown_tool_is_a_result_naming_the_tools_there_are() -> None:
    outcome = asyncio.run(Toolbox(BUILTIN_FUNCTIONS).run("assistant<|channel|>analysis", "{}"))
    assert outcome.status is ToolStatus.UNKNOWN_TOOL
    assert "'assistant<|channel|>analysis'" in outcome.output
    assert "functions.convert_units, functions.get_current_time" in outcome.output
    assert "Available tools: none" in asyncio.run(Toolbox([]).run("x", "")).output


def test_a_tool_that_raises_or_overruns_becomes_a_result() -> None:
    box = Toolbox([Misbehaving("bad", raises=True), Misbehaving("slow", sleeps=5)], deadline_s=0.05)
    failed = asyncio.run(box.run("functions.bad", "{}"))
    assert failed.status is ToolStatus.ERROR and "RuntimeError: boom" in failed.output
    late = asyncio.run(box.run("functions.slow", "{}"))
    assert late.status is ToolStatus.TIMEOUT and "did not finish" in late.output


def test_cancelling_the_caller_cancels_the_tool() -> None:
    slow = Misbehaving("slow", sleeps=30)

    async def body() -> None:
        task = asyncio.ensure_future(Toolbox([slow]).run("functions.slow", "{}"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(body())
    assert slow.cancelled
