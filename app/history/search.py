"""Turning a user's search box text into an FTS5 query, bounded snippets, and the scanning fallback used without FTS5.

Every function here does bounded work per call, whatever the size of a message: snippets look at the first
``SNIPPET_SCAN_CHARS`` characters only and mark at most ``MAX_MARKS`` matches, and the scanning match walks huge texts
in chunks. (FTS5's own snippet() scores every match of a message against every other, which took 35 s for a 100 KB
message of matches and never finished for 10 MB.)
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Final

SNIPPET_SCAN_CHARS: Final = 100_000  # how far into a message (or title) a snippet looks for a match
MAX_MARKS: Final = 8  # matches marked in one snippet
_SNIPPET_CHARS: Final = 40  # characters of context before the first match (twice that after it)
# Without a plain match, this many characters are compared with accents removed ("cafe" finds "café", as FTS5 does);
# it is a Python loop per character, so it looks less far.
_FOLD_SCAN_CHARS: Final = 20_000
# The scanning match decodes and case-folds this many bytes of a message at a time, so a 10 MB message never holds
# the GIL (and with it the GUI thread) for more than a millisecond or so.
_SCAN_CHUNK_BYTES: Final = 256 * 1024
# Case folding can turn one character into three ("ﬃ" -> "ffi"), and UTF-8 takes up to four bytes per character:
# chunks overlap by this many bytes per character of the longest term, so no match straddles a boundary unseen.
_OVERLAP_BYTES_PER_CHAR: Final = 4


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
def _pattern(term: str, word_start: bool) -> re.Pattern[str]:
    # Not preceded by a letter or digit: where FTS5's unicode61 tokenizer starts a token ("_" separates tokens too).
    prefix = r"(?<![^\W_])" if word_start else ""
    return re.compile(prefix + re.escape(term), re.IGNORECASE)


class ScanStopped(Exception):
    """Raised by contains_all when its ``stop`` callable says so (a newer search replaced this one)."""


def contains_all(text: str | bytes | None, *terms: str, stop: Callable[[], bool] | None = None) -> bool:
    """Case-insensitive substring test for every term; the scanning fallback's SQL function.

    SQLite's own LIKE folds only ASCII case, and a chat in any other script must still be findable, so this folds
    with str.casefold. The store passes message text as UTF-8 bytes (a BLOB), which is decoded a chunk at a time:
    converting and searching 10 MB at once would hold the GIL, and so stall the GUI thread, for a quarter second.
    ``stop`` is asked before each chunk: a cancelled search ends inside a huge message, not after it.
    """
    if not text or not terms:
        return False
    if isinstance(text, str):
        folded = text.casefold()
        return all(term.casefold() in folded for term in terms)
    wanted = {term.casefold() for term in terms}
    overlap = _OVERLAP_BYTES_PER_CHAR * max(len(term) for term in wanted)
    step = max(_SCAN_CHUNK_BYTES, 2 * overlap)
    for offset in range(0, len(text), step):
        if stop is not None and stop():
            raise ScanStopped
        # errors="ignore": a character cut at either end of the chunk is whole in the neighbouring, overlapping one.
        chunk = text[offset : offset + step + overlap].decode("utf-8", errors="ignore").casefold()
        wanted = {term for term in wanted if term not in chunk}
        if not wanted:
            return True
    return False


def _first_match(text: str, terms: list[str], word_start: bool) -> int | None:
    starts = [m.start() for m in (_pattern(t, word_start).search(text) for t in terms) if m]
    return min(starts, default=None)


def make_snippet(text: str, terms: list[str], start: str, end: str, *, word_start: bool = False) -> str | None:
    """An excerpt around the first match, with up to MAX_MARKS matches wrapped in start/end markers.

    Looks at the first SNIPPET_SCAN_CHARS characters only; None when no term occurs there. With ``word_start``,
    matches at the start of a word come first (as FTS5 prefix queries match), then matches anywhere.
    """
    window = text[:SNIPPET_SCAN_CHARS]
    first = _first_match(window, terms, True) if word_start else None
    if first is None:
        first = _first_match(window, terms, False)
    if first is None:
        return _accent_blind_snippet(text, terms, start, end)
    lo = max(0, first - _SNIPPET_CHARS)
    hi = min(len(text), first + _SNIPPET_CHARS * 2)
    excerpt = " ".join(text[lo:hi].split())  # newlines would break a one-line sidebar entry
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    combined = re.compile(rf"(?<![^\W_])(?:{alternatives})" if word_start else alternatives, re.IGNORECASE)
    marked = combined.sub(lambda m: f"{start}{m.group(0)}{end}", excerpt, count=MAX_MARKS)
    if marked == excerpt:  # the first match was inside a word; mark that kind
        anywhere = re.compile(alternatives, re.IGNORECASE)
        marked = anywhere.sub(lambda m: f"{start}{m.group(0)}{end}", excerpt, count=MAX_MARKS)
    return ("…" if lo > 0 else "") + marked + ("…" if hi < len(text) else "")


def _fold(text: str) -> tuple[str, list[int]]:
    """``text`` without accents and case-folded, with the index in ``text`` of each folded character."""
    folded: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text):
        for part in unicodedata.normalize("NFD", char):
            if not unicodedata.combining(part):
                piece = part.casefold()
                folded.append(piece)
                origins.extend([index] * len(piece))
    return "".join(folded), origins


def _accent_blind_snippet(text: str, terms: list[str], start: str, end: str) -> str | None:
    window = text[:_FOLD_SCAN_CHARS]
    if window.isascii():
        return None  # nothing to fold: the plain search already looked
    folded, origins = _fold(window)
    spans = []
    for term in terms:
        needle = _fold(term)[0]
        at = folded.find(needle) if needle else -1
        if at >= 0:
            spans.append((origins[at], origins[at + len(needle) - 1] + 1))
    if not spans:
        return None
    first, stop = min(spans)
    lo = max(0, first - _SNIPPET_CHARS)
    hi = min(len(text), first + _SNIPPET_CHARS * 2)
    marked = f"{text[lo:first]}{start}{text[first:stop]}{end}{text[stop : max(stop, hi)]}"
    return ("…" if lo > 0 else "") + " ".join(marked.split()) + ("…" if hi < len(text) else "")


def shorten(text: str) -> str:
    """The start of a text as one line of at most about three snippet widths."""
    limit = _SNIPPET_CHARS * 3
    flat = " ".join(text[: limit * 4].split())
    return flat if len(flat) <= limit and len(text) <= limit * 4 else flat[:limit] + "…"
