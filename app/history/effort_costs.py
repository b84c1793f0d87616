"""What each reasoning effort has cost on this computer, from the user's own recent answers (no Qt here).

Effort is the knob gpt-oss users cannot judge in advance: "high" may mean ten seconds or four minutes depending on the
machine. The history already holds, per answer, its effort, its thinking time and its reasoning tokens, so the
medians of the recent answers of one model say what to expect before a question is sent.

Only answers that say something about the effort count: finished normally (``stop``), in a normal chat (a
comparison runs three answers at once, each slower than alone), without tool calls (their time is in the thinking
time) and not cut by a thinking budget. Chats in the trash do not count.

The query runs on a read-only connection of its own, so the app can run it on a worker thread while the store's
connection goes on saving (WAL: readers see the last commit and block nobody).
"""

from __future__ import annotations

import sqlite3
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gpt_oss_desktop.app.history.searcher import translated_errors

RECENT_ANSWERS: Final = 20  # per effort: recent enough to follow a new machine or settings, enough for a median
BUSY_TIMEOUT_S: Final = 2.0

_QUERY: Final = """
SELECT effort, thinking_s, reasoning_tokens FROM (
    SELECT m.effort AS effort,
           json_extract(m.stats_json, '$.thinking_s') AS thinking_s,
           json_extract(m.stats_json, '$.reasoning_tokens') AS reasoning_tokens,
           ROW_NUMBER() OVER (PARTITION BY m.effort ORDER BY m.created_at DESC, m.id DESC) AS age
    FROM messages AS m JOIN chats AS c ON c.id = m.chat_id
    WHERE c.model = :model AND c.kind = 'chat' AND c.deleted_at IS NULL
      AND m.role = 'assistant' AND m.complete = 1 AND m.effort IS NOT NULL
      AND json_extract(m.stats_json, '$.finish_reason') = 'stop'
      AND json_type(m.stats_json, '$.thinking_s') IN ('real', 'integer')
      AND json_type(m.stats_json, '$.reasoning_tokens') = 'integer'
      AND coalesce(json_extract(m.stats_json, '$.tool_calls'), 0) = 0
      AND coalesce(json_extract(m.stats_json, '$.reasoning_cut'), 0) = 0
)
WHERE age <= :recent
"""


@dataclass(frozen=True, slots=True)
class EffortCost:
    """The medians over the ``answers`` most recent qualifying answers at one effort."""

    answers: int
    thinking_seconds: float  # from sending to the first answer token
    reasoning_tokens: int


def effort_costs(path: Path, model: str, *, recent: int = RECENT_ANSWERS) -> dict[str, EffortCost]:
    """``{"low" | "medium" | "high": EffortCost}`` for ``model``'s recent answers in the history at ``path``; an
    effort without a qualifying answer is absent. Raises :class:`~app.history.HistoryError` when the file cannot be
    read."""
    rows: dict[str, list[tuple[float, int]]] = {}
    with translated_errors(path):
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            for effort, seconds, tokens in conn.execute(_QUERY, {"model": model, "recent": recent}):
                rows.setdefault(str(effort), []).append((float(seconds), int(tokens)))
        finally:
            conn.close()
    return {
        effort: EffortCost(
            answers=len(samples),
            thinking_seconds=statistics.median(s for s, _ in samples),
            reasoning_tokens=round(statistics.median(t for _, t in samples)),
        )
        for effort, samples in rows.items()
    }
