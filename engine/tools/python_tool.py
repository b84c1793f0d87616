"""harmony's built-in ``python`` tool: the model's code runs in :class:`PythonSandbox`, and how it ended goes back
to the model as text it can act on (the output, a traceback, a sentence on a time limit or a cut)."""

from __future__ import annotations

from typing import Final

from gpt_oss_desktop.engine.harmony import PYTHON_TOOL, FunctionTool
from gpt_oss_desktop.engine.tools.base import ToolOutcome, ToolStatus
from gpt_oss_desktop.engine.tools.python_sandbox import PythonSandbox, SandboxRun

NO_OUTPUT: Final = "(no output) The program printed nothing; print() the values you need."
_FENCE: Final = "```"


def strip_code_fence(code: str) -> str:
    """The code inside a Markdown fence (```python ... ```) the model may wrap it in; other text as it is."""
    body = code.strip()
    if not body.startswith(_FENCE):
        return code
    first_line, _, rest = body.partition("\n")
    if first_line[len(_FENCE) :].strip() not in ("", "python", "py", "python3"):
        return code
    if rest.rstrip().endswith(_FENCE):
        rest = rest.rstrip()[: -len(_FENCE)]
    return rest


def _seconds(value: float) -> str:
    return f"{value:g} second" + ("" if value == 1 else "s")


def outcome_of(run: SandboxRun, timeout_s: float) -> ToolOutcome:
    """What the model reads for one sandboxed run."""
    output = run.output
    if run.timed_out:
        text = (output.rstrip("\n") + "\n" if output.strip() else "") + (
            f"The program was stopped: it ran longer than the time limit of {_seconds(timeout_s)}."
        )
        return ToolOutcome(ToolStatus.TIMEOUT, text, seconds=run.seconds, truncated=run.output_truncated)
    if run.output_truncated:
        # Cut, and killed, for printing too much: the model gets what fits and the note at its end.
        return ToolOutcome(ToolStatus.OK, output, seconds=run.seconds, truncated=True)
    if run.memory_exceeded:
        text = output.rstrip("\n") + "\nThe program ran out of memory (the python tool's memory limit)."
        return ToolOutcome(ToolStatus.ERROR, text, seconds=run.seconds)
    if run.killed_by:
        text = (output.rstrip("\n") + "\n" if output.strip() else "") + f"The program was killed by {run.killed_by}."
        return ToolOutcome(ToolStatus.ERROR, text, seconds=run.seconds)
    if run.exit_code != 0:
        text = output if output.strip() else f"The program exited with status {run.exit_code} and printed nothing."
        return ToolOutcome(ToolStatus.ERROR, text, seconds=run.seconds)
    return ToolOutcome(ToolStatus.OK, output if output.strip() else NO_OUTPUT, seconds=run.seconds)


class PythonTool:
    """The ``python`` recipient: each call runs the model's code as a new, stateless program in the sandbox."""

    def __init__(self, sandbox: PythonSandbox | None = None) -> None:
        self.sandbox = sandbox or PythonSandbox()

    @property
    def recipient(self) -> str:
        return PYTHON_TOOL

    @property
    def spec(self) -> FunctionTool | None:
        return None  # the system message describes it (harmony.PYTHON_TOOL_DESCRIPTION)

    async def run(self, arguments: str) -> ToolOutcome:
        code = strip_code_fence(arguments)
        if not code.strip():
            return ToolOutcome(ToolStatus.BAD_ARGUMENTS, "Error: no code was sent; send the Python program to run.")
        try:
            run = await self.sandbox.run(code)
        except OSError as exc:  # the interpreter or bwrap could not be started (moved, deleted, out of processes)
            return ToolOutcome(
                ToolStatus.UNAVAILABLE,
                f"Error: the python tool could not start ({exc.strerror or exc}).",
                notice=f"The python tool could not start a sandboxed process: {exc}",
            )
        return outcome_of(run, self.sandbox.limits.timeout_s)
