"""The comparison summary (pure functions): answer normalisation, agreement groups, high-over-low ratios, wording."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gpt_oss_desktop.app.history.comparison_summary import (
    ColumnOutcome,
    answer_key,
    final_number,
    normalise_answer,
    outcome_from_record,
    summarise,
)

Seconds = tuple[float | None, ...]


def outcomes(
    *answers: str, tokens: tuple[int | None, ...] = (10, 40, 90), seconds: Seconds = (1.0, 2.0, 4.5)
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
    # Counts that were not recorded are unknown: not 0, and not a part passed off as the total.
    assert outcome_from_record("low", "y", {"total_s": "soon"}) == ColumnOutcome("low", "y", None, None)
    assert outcome_from_record("low", "y", {"reasoning_tokens": 30}) == ColumnOutcome("low", "y", None, None)


def test_unknown_token_counts_leave_the_token_ratio_out() -> None:
    for tokens in ((10, 40, None), (None, 40, 90)):
        summary = summarise(outcomes("a", "a", "a", tokens=tokens))
        assert summary.token_ratio is None
        assert summary.text() == "All answers agree · high took 4.5× the time of low"


def test_answers_that_agree_in_substance_agree() -> None:
    # The same number, worded differently: the case that read "All answers differ".
    assert summarise(outcomes("4", "The answer is 4.", "**4**")).agreement_text() == "All answers agree"
    assert summarise(outcomes("4", "It is 4.0", "Four")).groups == (("low", "medium"), ("high",))
    # The bold number is the one the answer settles on, whatever else it mentions.
    summary = summarise(
        outcomes(
            "The ball costs **$0.10**.",
            "The ball costs **$0.05** (the bat $1.05): together $1.10.",
            "The ball costs **$0.05** and the bat $1.05. The tempting answer, $0.10, fails the check.",
        )
    )
    assert summary.agreement_text() == "low differs; medium and high agree"
    # A yes/no verdict, whatever follows it.
    summary = summarise(outcomes("No.", "**No**: 91 = 7 × 13.", "no, it is not prime"))
    assert summary.agree


def test_answers_that_differ_in_substance_still_differ() -> None:
    assert summarise(outcomes("4", "The answer is 5.", "5")).groups == (("low",), ("medium", "high"))
    assert summarise(outcomes("Yes", "No", "Yes.")).agreement_text() == "low and high agree; medium differs"
    # Several different numbers and none in bold: no number to go by, so the text decides.
    summary = summarise(outcomes("91 is 7 x 13", "13 x 7 is 91", "91 is 7 x 13."))
    assert summary.groups == (("low", "high"), ("medium",))
    assert summarise(outcomes("x = 3", "x = -3", "x = −3")).groups == (("low",), ("medium", "high"))


def test_final_number_and_answer_key() -> None:
    assert final_number("The answer is 4.") == Decimal(4)
    assert final_number("1,000 or 1,000.0, the same") == Decimal(1000)
    assert final_number("Between 3 and 4") is None
    assert final_number("**Roughly 2.5** (not 3)") == Decimal("2.5")
    assert final_number("On 2026-02-30 at v1.5") == Decimal(2026)  # not "-02" or "1.5" (parts of other tokens)
    assert final_number("no digits") is None
    assert answer_key("") is None and answer_key("...") is None
    assert answer_key("Nope") == ("text", "nope") and answer_key("None of them") == ("text", "none of them")
    assert answer_key("YES!") == ("verdict", "yes")
