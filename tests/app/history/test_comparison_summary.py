"""The comparison summary (pure functions): answer normalisation, agreement groups, high-over-low ratios, wording."""

from __future__ import annotations

import pytest

from gpt_oss_desktop.app.history.comparison_summary import (
    ColumnOutcome,
    normalise_answer,
    outcome_from_record,
    summarise,
)

Seconds = tuple[float | None, ...]


def outcomes(
    *answers: str, tokens: tuple[int, ...] = (10, 40, 90), seconds: Seconds = (1.0, 2.0, 4.5)
) -> list[ColumnOutcome]:
    efforts = ("low", "medium", "high")
    return [ColumnOutcome(e, a, t, s) for e, a, t, s in zip(efforts, answers, tokens, seconds, strict=True)]


def test_normalise_ignores_case_markup_spacing_and_edge_punctuation() -> None:
    assert normalise_answer("**Yes.**") == normalise_answer("yes") == "yes"
    assert normalise_answer("  The answer is\n`42`!  ") == "the answer is 42"
    assert normalise_answer("Ｆｕｌｌ　width") == "full width"  # NFKC
    assert normalise_answer("7 x 13") != normalise_answer("7 x 31")
    assert normalise_answer("...") == ""


def test_all_agree_with_ratios() -> None:
    summary = summarise(outcomes("No.", "**no**", "NO"))
    assert summary.agree and summary.groups == (("low", "medium", "high"),)
    assert summary.token_ratio == pytest.approx(9.0) and summary.time_ratio == pytest.approx(4.5)
    assert summary.text() == "All answers agree · high took 9.0× the tokens and 4.5× the time of low"


def test_partial_and_full_disagreement() -> None:
    summary = summarise(outcomes("91 is 7 x 13", "Yes", "91 is 7 x 13."))
    assert not summary.agree and summary.groups == (("low", "high"), ("medium",))
    assert summary.agreement_text() == "low and high agree; medium differs"
    assert summarise(outcomes("a", "b", "c")).agreement_text() == "All answers differ"


def test_empty_answers_never_agree() -> None:
    summary = summarise(outcomes("", "", "x"))
    assert summary.groups == (("low",), ("medium",), ("high",))


def test_unmeasurable_ratios_are_left_out() -> None:
    summary = summarise(outcomes("a", "a", "a", tokens=(0, 5, 7), seconds=(None, 1.0, 2.0)))
    assert summary.token_ratio is None and summary.time_ratio is None
    assert summary.text() == "All answers agree"
    with pytest.raises(ValueError):
        summarise([])


def test_outcome_from_saved_stats() -> None:
    saved = {"reasoning_tokens": 30, "final_tokens": 5, "completion_tokens": 40, "total_s": 2.5}
    assert outcome_from_record("high", "x", saved) == ColumnOutcome("high", "x", 40, 2.5)
    # Older records (no totals) fall back to the parts; odd values are ignored rather than raising.
    old = {"reasoning_tokens": 30, "final_tokens": 5, "thinking_s": 1.5, "answer_s": 0.5, "tok_s": True}
    assert outcome_from_record("low", "y", old) == ColumnOutcome("low", "y", 35, 2.0)
    assert outcome_from_record("low", "y", {"total_s": "soon"}) == ColumnOutcome("low", "y", 0, None)
