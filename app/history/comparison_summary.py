"""What an effort comparison's summary row says: do the answers agree, and what did high effort cost over low.

Agreement is about substance, not wording: "4" and "The answer is 4." agree, as do "No." and "**No**, 91 = 7 × 13".
Each answer is reduced to a key (:func:`answer_key`) and answers with equal keys agree.

Pure functions (no Qt, no torch), shared by the compare view and the Markdown export.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

# Markup and punctuation that change how an answer looks, not what it says.
_MARKUP = re.compile(r"[*_`~#>]+")
_EDGE_PUNCTUATION = " \t\n.,;:!?\"'()[]{}"
# A number as answers write it: "4", "-3", "0.05", "1,000" (commas only as thousands separators), a Unicode minus.
# Not part of a word or a longer number ("x2", "v1.5", the "-02" of "2026-02-30").
_NUMBER = re.compile(r"(?<![\w.,\-])[-\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")
# Markdown strong emphasis, where a model puts the answer it settles on ("The ball costs **$0.05**").
_STRONG = re.compile(r"\*\*(.+?)\*\*|__(.+?)__", re.DOTALL)
# A yes/no answer's verdict: its first word.
_VERDICT = re.compile(r"(yes|no)\b")


def normalise_answer(text: str) -> str:
    """Answer text reduced for comparison: Unicode NFKC, case-folded, Markdown emphasis and code marks removed,
    whitespace collapsed, punctuation trimmed at both ends ("**Yes.**" and "yes" compare equal)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    plain = _MARKUP.sub("", folded)
    return " ".join(plain.split()).strip(_EDGE_PUNCTUATION)


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "").replace("\u2212", "-"))
    except InvalidOperation:  # pragma: no cover - the pattern only matches valid decimals
        return None


def _numbers(text: str) -> list[Decimal]:
    return [n for n in (_number(m.group()) for m in _NUMBER.finditer(text)) if n is not None]


def final_number(text: str) -> Decimal | None:
    """The number an answer settles on, if it is clear which: the first number in bold (models bold their final
    answer), else the only number it contains (written once or repeated). None when there are several different
    numbers and none is bold, or none at all."""
    nfkc = unicodedata.normalize("NFKC", text)
    for match in _STRONG.finditer(nfkc):
        if numbers := _numbers(match.group(1) or match.group(2) or ""):
            return numbers[0]
    distinct = set(_numbers(nfkc))  # Decimal: 4, 4.0 and 4.00 are one number
    return distinct.pop() if len(distinct) == 1 else None


def answer_key(text: str) -> tuple[str, object] | None:
    """What two answers must share to agree, in order of precedence:

    - a yes/no answer's verdict ("No.", "**No**: 91 = 7 × 13" and "no, it is not prime" all give ``("verdict",
      "no")``);
    - else the number it settles on (:func:`final_number`: "4", "The answer is 4." and "**4.0**" agree);
    - else its normalised text (:func:`normalise_answer`).

    None for an empty answer, which agrees with nothing.
    """
    plain = normalise_answer(text)
    if not plain:
        return None
    if verdict := _VERDICT.match(plain):
        return ("verdict", verdict.group(1))
    number = final_number(text)
    if number is not None:
        return ("number", number)
    return ("text", plain)


@dataclass(frozen=True, slots=True)
class ColumnOutcome:
    """One column's result as the summary needs it."""

    effort: str
    answer: str
    tokens: int | None  # completion tokens: reasoning + answer (+ any other); None where they were not recorded
    seconds: float | None  # from the start of the comparison to this column's end


@dataclass(frozen=True, slots=True)
class ComparisonSummary:
    """``groups``: efforts whose answers agree (equal :func:`answer_key`), in column order (one group = all agree).
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
    """Group agreeing answers (:func:`answer_key`; an empty answer agrees with nothing) and compare the last column
    with the first."""
    if not outcomes:
        raise ValueError("a comparison summary needs at least one column")
    groups: list[list[str]] = []
    keys: list[tuple[str, object] | None] = []
    for outcome in outcomes:
        key = answer_key(outcome.answer)
        if key is not None and key in keys:
            groups[keys.index(key)].append(outcome.effort)
        else:
            keys.append(key)  # None never matches: `key is not None` above
            groups.append([outcome.effort])
    first, last = outcomes[0], outcomes[-1]
    token_ratio = (
        last.tokens / first.tokens
        if first.tokens is not None and last.tokens is not None and first.tokens > 0 and len(outcomes) > 1
        else None
    )
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
        # Both parts or no total: a missing count is unknown, and a sum without it would pass for the total.
        reasoning, final = number("reasoning_tokens"), number("final_tokens")
        tokens = None if reasoning is None or final is None else reasoning + final
    seconds = number("total_s")
    if seconds is None:
        thinking, answering = number("thinking_s"), number("answer_s")
        seconds = None if thinking is None and answering is None else (thinking or 0.0) + (answering or 0.0)
    return ColumnOutcome(effort=effort, answer=answer, tokens=None if tokens is None else int(tokens), seconds=seconds)
