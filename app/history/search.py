"""Turning a user's search box text into an FTS5 query, and the scanning fallback used without FTS5."""

from __future__ import annotations

import functools
import re

SNIPPET_WORDS = 12  # FTS5 snippet length in tokens
_SNIPPET_CHARS = 40  # fallback: characters of context on each side of the first match


def query_terms(query: str) -> list[str]:
    """Whitespace-separated terms that contain at least one letter or digit.

    Pure punctuation is dropped because FTS5 tokenises it away, and an empty phrase would match nothing (or fail)
    while the user most likely expects the other words to still count.
    """
    return [term for term in query.split() if any(ch.isalnum() for ch in term)]


def fts_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression: every term as a quoted prefix phrase, all required.

    Quoting makes user text inert (no accidental AND/OR/NEAR/column filters or syntax errors); the trailing ``*``
    lets a half-typed word match, as users expect from a search-as-you-type box.
    """
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)


@functools.lru_cache(maxsize=64)
def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(re.escape(term), re.IGNORECASE)


def contains_all(text: str | None, *terms: str) -> bool:
    """Case-insensitive substring test for every term.

    Registered as an SQL function for the fallback because SQLite's own LIKE folds only ASCII case, and a chat in
    any other script must still be findable. re.IGNORECASE is used rather than casefold() so match offsets stay
    valid for building snippets.
    """
    if not text:
        return False
    return all(_pattern(term).search(text) for term in terms)


def make_snippet(text: str, terms: list[str], start: str, end: str) -> str:
    """An excerpt around the first match with every match in the excerpt wrapped in start/end markers."""
    first = min((m.start() for m in (_pattern(t).search(text) for t in terms) if m), default=None)
    if first is None:
        return _shorten(text)
    lo = max(0, first - _SNIPPET_CHARS)
    hi = min(len(text), first + _SNIPPET_CHARS * 2)
    excerpt = " ".join(text[lo:hi].split())  # newlines would break a one-line sidebar entry
    combined = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    marked = combined.sub(lambda m: f"{start}{m.group(0)}{end}", excerpt)
    return ("…" if lo > 0 else "") + marked + ("…" if hi < len(text) else "")


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS * 3 else flat[: _SNIPPET_CHARS * 3] + "…"
