"""The suggested file name of an export keeps the chat's title readable and removes only what file systems forbid."""

from __future__ import annotations

import pytest

from gpt_oss_desktop.app.history.file_names import MAX_NAME_BYTES, MAX_NAME_CHARS, export_file_name


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Arithmetic test (renamed)", "Arithmetic test (renamed).md"),  # was "Arithmetic test _renamed_.md"
        ("Café, naïve & co. — 2+2=4 [draft] {x} #1 'quoted' 50% ~home", None),  # all allowed: kept as is
        ("Q: what is 2/3?", "Q what is 2 3.md"),
        ('a\\b*c"d<e>f|g', "a b c d e f g.md"),
        ("tab\there\nnew line\x00nul\x7fdel", "tab here new line nul del.md"),
        ("  spaced   out  ", "spaced out.md"),
        ("ends with dots...", "ends with dots.md"),
        (".hidden", "hidden.md"),
        ("CON", "CON_.md"),
        ("nul.notes", "nul_.notes.md"),
        ("com1 ", "com1_.md"),
        ("Console", "Console.md"),
        ("LPT10", "LPT10.md"),
        ("", "chat.md"),
        (":/?*", "chat.md"),
        ("...", "chat.md"),
    ],
)
def test_titles_become_readable_file_names(title: str, expected: str | None) -> None:
    assert export_file_name(title, ".md") == (expected if expected is not None else title + ".md")


def test_the_fallback_names_an_untitled_comparison() -> None:
    assert export_file_name("", ".md", "comparison") == "comparison.md"


@pytest.mark.parametrize("title", ["x" * 500, "é" * 300, "😀" * 200, "a. " * 100])
def test_long_titles_are_capped_with_an_ellipsis(title: str) -> None:
    name = export_file_name(title, ".json")
    stem = name.removesuffix(".json")
    assert name.endswith("….json")
    assert len(stem) <= MAX_NAME_CHARS and len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert title.startswith(stem.removesuffix("…").rstrip(". "))


def test_a_title_at_the_limit_is_kept_whole() -> None:
    title = "y" * MAX_NAME_CHARS
    assert export_file_name(title, ".md") == title + ".md"
