"""What each effort has cost on this computer, shown beside the effort selector before a question is sent.

:func:`~app.history.effort_costs.effort_costs` reads the medians of the loaded model's recent answers from the
history; :class:`EffortCostsRefresher` runs it on a worker thread whenever a model loads or an answer finishes, and
hands the result to the composer, which words it with :func:`cost_hint` and :func:`costs_tooltip`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from gpt_oss_desktop.app.chat.stats import count, seconds
from gpt_oss_desktop.app.history import HistoryError
from gpt_oss_desktop.app.history.effort_costs import EffortCost, effort_costs
from gpt_oss_desktop.engine.harmony import ReasoningEffort

logger = logging.getLogger(__name__)

BASE_TOOLTIP = "How long the model reasons before answering"


def cost_hint(cost: EffortCost | None) -> str:
    """The line beside the selector for the chosen effort: 'thinks ≈ 12.3 s · 610 tokens here', or '' if unknown."""
    if cost is None:
        return ""
    return f"thinks ≈ {seconds(cost.thinking_seconds)} · {count(cost.reasoning_tokens)} tokens here"


def costs_tooltip(model: str, costs: Mapping[str, EffortCost]) -> str:
    """The selector's tooltip: what it does, then each effort's medians for ``model`` (or that none are known)."""
    if not costs:
        return BASE_TOOLTIP
    lines = [f"{BASE_TOOLTIP}.", f"On this computer, {model}'s recent answers (medians):"]
    for effort in ReasoningEffort:
        cost = costs.get(effort.value)
        name = effort.value.capitalize()
        if cost is None:
            lines.append(f"{name}: no finished answers yet")
        else:
            noun = "answer" if cost.answers == 1 else "answers"
            lines.append(
                f"{name}: thinks {seconds(cost.thinking_seconds)} · {count(cost.reasoning_tokens)} tokens "
                f"({cost.answers} {noun})"
            )
    return "\n".join(lines)


class EffortCostsRefresher(QObject):
    """Reads the effort costs of the loaded model off the GUI thread and passes them on; the newest read wins.

    Args:
        history_path: the history file now (None while the history is off or not open).
        show: called on the GUI thread with the model's name and its costs ({} when none are known or the history
            cannot be read).

    Signals:
        refreshed(str): the model whose costs were just shown (for tests and for anyone who waits on them).
    """

    refreshed = Signal(str)

    def __init__(
        self,
        history_path: Callable[[], Path | None],
        show: Callable[[str, Mapping[str, EffortCost]], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._history_path = history_path
        self._show = show
        self._model: str | None = None
        self._task: asyncio.Task[None] | None = None

    def model_changed(self, model: str | None) -> None:
        """A model loaded (its name), or none is loaded (None: nothing to show)."""
        self._model = model
        self.refresh()

    def refresh(self) -> None:
        """Read again (an answer finished); a read still running is cancelled."""
        if self._task is not None:
            self._task.cancel()
        model, path = self._model, self._history_path()
        if model is None or path is None:
            self._show(model or "", {})
            return
        self._task = asyncio.ensure_future(self._read(model, path))

    async def _read(self, model: str, path: Path) -> None:
        costs: Mapping[str, EffortCost] = {}
        try:
            costs = await asyncio.to_thread(effort_costs, path, model)
        except HistoryError as exc:  # a damaged or missing file: the selector shows no costs, the history says why
            logger.warning("effort costs not read: %s", exc.reason)
        with contextlib.suppress(RuntimeError):  # the window closed meanwhile
            self._show(model, costs)
            self.refreshed.emit(model)
