"""What "Test connection" found: each step passed, failed or was skipped, with a one-line detail."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

# The steps of RemoteClient.check, in order.
REACHABLE: Final = "reachable"
AUTHORISED: Final = "authorised"
MODEL_LISTED: Final = "model listed"
STREAMING: Final = "streaming"
REASONING_FIELD: Final = "reasoning field"
EFFORT_HONOURED: Final = "effort honoured"
STEPS: Final = (REACHABLE, AUTHORISED, MODEL_LISTED, STREAMING, REASONING_FIELD, EFFORT_HONOURED)


class CheckStatus(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # an earlier step failed, so this one could not be tried


@dataclass(frozen=True, slots=True)
class CheckStep:
    name: str  # one of STEPS
    status: CheckStatus
    detail: str  # one line: what was seen ("3 models", "field 'reasoning'", "HTTP 401: ...")

    @property
    def ok(self) -> bool:
        return self.status is CheckStatus.OK

    def line(self) -> str:
        mark = {CheckStatus.OK: "ok", CheckStatus.FAILED: "FAILED", CheckStatus.SKIPPED: "skipped"}[self.status]
        return f"{self.name}: {mark} - {self.detail}"


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """Every step of :data:`STEPS`, in order.

    ``reasoning_field`` is the field the server streams its reasoning in (``reasoning``, ``reasoning_content``, or
    ``content (raw harmony)``), None when it sent none; ``models`` is what it lists.
    """

    steps: tuple[CheckStep, ...]
    reasoning_field: str | None = None
    models: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def step(self, name: str) -> CheckStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def lines(self) -> list[str]:
        return [step.line() for step in self.steps]
