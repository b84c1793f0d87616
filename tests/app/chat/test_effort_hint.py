"""Beside the effort selector: what the chosen effort has cost the loaded model here, read from a real history file
after every answer (and nothing while the history has no answer at that effort)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpt_oss_desktop.app.chat.effort_hint import BASE_TOOLTIP, cost_hint, costs_tooltip
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.history.effort_costs import EffortCost
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, next_emission, scripted_engine


def test_the_selector_shows_what_the_chosen_effort_cost_here(run: Any, make_window: Any, tmp_path: Path) -> None:
    store = ChatStore(tmp_path / "history.sqlite3")
    backend, _ = scripted_engine(harmony_reply("Let me see. " * 8, "Four."))
    window = make_window(backend, store=store)
    composer = window.composer
    composer.set_effort(ReasoningEffort.MEDIUM)

    async def body() -> None:
        await next_emission(window.effort_costs.refreshed, lambda: window.load_model("scripted"))
        assert not composer.effort_cost.isVisible()  # nothing answered yet
        assert composer.effort.toolTip() == BASE_TOOLTIP
        await next_emission(window.effort_costs.refreshed, lambda: window.send_message("2+2?"))
        assert composer.effort_cost.isVisible()
        assert composer.effort_cost.text().startswith("thinks ≈ ") and composer.effort_cost.text().endswith("here")
        tip = composer.effort.toolTip()
        assert "Medium: thinks" in tip and "(1 answer)" in tip and "High: no finished answers yet" in tip
        composer.set_effort(ReasoningEffort.HIGH)  # no answer at high yet: the line goes
        assert not composer.effort_cost.isVisible()
        composer.set_effort(ReasoningEffort.MEDIUM)
        assert composer.effort_cost.isVisible()

    try:
        run(body())
    finally:
        store.close()
    saved = [m for m in ChatStore(tmp_path / "history.sqlite3").get_chat(window.chat_id).messages if m.effort]
    assert saved and saved[0].stats["reasoning_tokens"] > 0  # what the line was read from


def test_without_a_history_nothing_is_shown(run: Any, make_window: Any) -> None:
    backend, _ = scripted_engine(harmony_reply("t", "a"))
    window = make_window(backend)

    async def body() -> None:
        await load(window)
        await next_emission(window.generation_finished, lambda: window.send_message("hi"))
        assert not window.composer.effort_cost.isVisible()

    run(body())


def test_the_wording() -> None:
    cost = EffortCost(answers=12, thinking_seconds=38.44, reasoning_tokens=1843)
    assert cost_hint(cost) == "thinks ≈ 38.4 s · 1,843 tokens here" and cost_hint(None) == ""
    tip = costs_tooltip("gpt-oss-20b", {"high": cost})
    assert tip.splitlines() == [
        f"{BASE_TOOLTIP}.",
        "On this computer, gpt-oss-20b's recent answers (medians):",
        "Low: no finished answers yet",
        "Medium: no finished answers yet",
        "High: thinks 38.4 s · 1,843 tokens (12 answers)",
    ]
    assert costs_tooltip("m", {}) == BASE_TOOLTIP
