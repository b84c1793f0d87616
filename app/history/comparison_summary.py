"""What an effort comparison's summary row says: do the answers agree, and what did high effort cost over low.

Pure functions (no Qt, no torch), shared by the compare view and the Markdown export.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Markup and punctuation that change how an answer looks, not what it says.
_MARKUP = re.compile(r"[*_`~#>]+")
_EDGE_PUNCTUATION = " \t\n.,;:!?\"'()[]{}"


def normalise_answer(text: str) -> str:
    """Answer text reduced for comparison: Unicode NFKC, case-folded, Markdown emphasis and code marks removed,
    whitespace collapsed, punctuation trimmed at both ends ("**Yes.**" and "yes" compare equal)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    plain = _MARKUP.sub("", folded)
    return " ".join(plain.split()).strip(_EDGE_PUNCTUATION)


@dataclass(frozen=True, slots=True)
class ColumnOutcome:
    """One column's result as the summary needs it."""

    effort: str
    answer: str
    tokens: int  # completion tokens: reasoning + answer (+ any other)
    seconds: float | None  # from the start of the comparison to this column's end


@dataclass(frozen=True, slots=True)
class ComparisonSummary:
    """``groups``: efforts whose normalised answers are equal, in column order (one group = all agree).
    ``token_ratio``/``time_ratio``: last column (high) over first (low); None when not measurable."""

    groups: tuple[tuple[str, ...], ...]
    token_ratio: float | None
    time_ratio: float | None

    @property
    def agree(self) -> bool:
        return len(self.groups) == 1

    def agreement_text(self) -> str:
        if self.agree:
            return "All answers agree" if len(self.groups[0]) != 2 else "Both answers agree"
        if all(len(group) == 1 for group in self.groups):
            return "All answers differ"
        parts = []
        for group in self.groups:
            if len(group) > 1:
                parts.append(f"{' and '.join(group)} agree")
            else:
                parts.append(f"{group[0]} differs")
        return "; ".join(parts)

    def cost_text(self, first: str = "low", last: str = "high") -> str:
        """E.g. "high took 6.2× the tokens and 5.8× the time of low"."""
        parts = []
        if self.token_ratio is not None:
            parts.append(f"{self.token_ratio:.1f}× the tokens")
        if self.time_ratio is not None:
            parts.append(f"{self.time_ratio:.1f}× the time")
        if not parts:
            return ""
        return f"{last} took {' and '.join(parts)} of {first}"

    def text(self, first: str = "low", last: str = "high") -> str:
        cost = self.cost_text(first, last)
        return f"{self.agreement_text()} · {cost}" if cost else self.agreement_text()


def summarise(outcomes: Sequence[ColumnOutcome]) -> ComparisonSummary:
    """Group equal answers (normalised; an empty answer equals nothing) and compare the last column with the first."""
    if not outcomes:
        raise ValueError("a comparison summary needs at least one column")
    groups: list[list[str]] = []
    keys: list[str] = []
    for outcome in outcomes:
        key = normalise_answer(outcome.answer)
        if key and key in keys:
            groups[keys.index(key)].append(outcome.effort)
        else:
            keys.append(key if key else f"\0{len(keys)}")  # never equal to another answer
            groups.append([outcome.effort])
    first, last = outcomes[0], outcomes[-1]
    token_ratio = last.tokens / first.tokens if first.tokens > 0 and len(outcomes) > 1 else None
    time_ratio = (
        last.seconds / first.seconds
        if first.seconds is not None and last.seconds is not None and first.seconds > 0 and len(outcomes) > 1
        else None
    )
    return ComparisonSummary(tuple(tuple(g) for g in groups), token_ratio, time_ratio)


def outcome_from_record(effort: str, answer: str, stats: Mapping[str, Any]) -> ColumnOutcome:
    """A saved column (history stats JSON, see :meth:`app.chat.stats.AnswerStats.to_record`) as a ColumnOutcome."""

    def number(key: str) -> float | None:
        value = stats.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    tokens = number("completion_tokens")
    if tokens is None:
        tokens = (number("reasoning_tokens") or 0.0) + (number("final_tokens") or 0.0)
    seconds = number("total_s")
    if seconds is None:
        thinking, answering = number("thinking_s"), number("answer_s")
        seconds = None if thinking is None and answering is None else (thinking or 0.0) + (answering or 0.0)
    return ColumnOutcome(effort=effort, answer=answer, tokens=int(tokens), seconds=seconds)
