"""The python tool: what the model reads for each way a program ends, fences stripped, and one real run."""

from __future__ import annotations

import asyncio

import pytest

from gpt_oss_desktop.engine.harmony import PYTHON_TOOL
from gpt_oss_desktop.engine.tools.base import Tool, ToolStatus
from gpt_oss_desktop.engine.tools.python_sandbox import PythonSandbox, SandboxLimits, SandboxRun
from gpt_oss_desktop.engine.tools.python_tool import NO_OUTPUT, PythonTool, strip_code_fence


class ScriptedSandbox(PythonSandbox):
    """Returns a fixed run and records the code it was given (no process)."""

    def __init__(self, result: SandboxRun) -> None:
        super().__init__(SandboxLimits(timeout_s=3.0), force_fallback=True)
        self.result = result
        self.codes: list[str] = []

    async def run(self, code: str) -> SandboxRun:
        self.codes.append(code)
        return self.result


def call(result: SandboxRun, code: str = "print(1)") -> tuple[ToolStatus, str, bool, list[str]]:
    sandbox = ScriptedSandbox(result)
    outcome = asyncio.run(PythonTool(sandbox).run(code))
    return outcome.status, outcome.output, outcome.truncated, sandbox.codes


def test_it_is_the_harmony_python_tool() -> None:
    tool = PythonTool(ScriptedSandbox(SandboxRun("", 0)))
    assert isinstance(tool, Tool) and tool.recipient == PYTHON_TOOL and tool.spec is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\nprint(2)\n```", "print(2)\n"),
        ("```\nx = 1\nprint(x)\n```\n", "x = 1\nprint(x)\n"),
        ("print('```')", "print('```')"),  # a fence inside the code is code
        ("```js\nconsole.log(1)\n```", "```js\nconsole.log(1)\n```"),  # not python: left for the error to say so
    ],
)
def test_a_code_fence_is_stripped(text: str, code: str) -> None:
    assert strip_code_fence(text) == code


def test_output_goes_back_and_empty_output_gets_a_hint() -> None:
    assert call(SandboxRun("42\n", 0))[:2] == (ToolStatus.OK, "42\n")
    assert call(SandboxRun("", 0))[:2] == (ToolStatus.OK, NO_OUTPUT)


def test_a_failure_sends_the_traceback() -> None:
    traceback = 'Traceback (most recent call last):\n  File "/sandbox/main.py", line 1\nNameError: x\n'
    assert call(SandboxRun(traceback, 1))[:2] == (ToolStatus.ERROR, traceback)
    status, output, _, _ = call(SandboxRun("", 3))
    assert status is ToolStatus.ERROR and "exited with status 3" in output


def test_a_timeout_says_so_after_what_was_printed() -> None:
    status, output, _, _ = call(SandboxRun("partial\n", None, timed_out=True))
    assert status is ToolStatus.TIMEOUT
    assert output == "partial\nThe program was stopped: it ran longer than the time limit of 3 seconds."


def test_cut_output_is_flagged_and_memory_and_signals_are_named() -> None:
    status, output, truncated, _ = call(SandboxRun("x" * 10 + "\n[output truncated at 64 KiB]", None, False, True))
    assert status is ToolStatus.OK and truncated and output.endswith("[output truncated at 64 KiB]")
    status, output, _, _ = call(SandboxRun("MemoryError\n", 86, memory_exceeded=True))
    assert status is ToolStatus.ERROR and "ran out of memory" in output
    status, output, _, _ = call(SandboxRun("", None, killed_by="SIGSEGV"))
    assert status is ToolStatus.ERROR and output == "The program was killed by SIGSEGV."


def test_no_code_is_bad_arguments_and_runs_nothing() -> None:
    status, _, _, codes = call(SandboxRun("", 0), code="```python\n```")
    assert status is ToolStatus.BAD_ARGUMENTS and codes == []


def test_a_real_call_in_the_sandbox() -> None:
    tool = PythonTool(PythonSandbox(SandboxLimits(timeout_s=5.0)))
    outcome = asyncio.run(tool.run("```python\nprint(sum(range(101)) * 37)\n```"))
    assert outcome.ok and outcome.output == "186850\n" and outcome.seconds > 0
