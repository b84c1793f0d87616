"""A file name for an exported chat that keeps its title readable: only what a file system forbids is taken out.

"Arithmetic test (renamed)" stays "Arithmetic test (renamed).md". What goes, so the name works on Linux, macOS and
Windows (a file exported to a USB stick or a synced folder may end up on any of them):

- the characters Windows forbids, ``/ \\ : * ? " < > |`` (``/`` alone on Linux and macOS), and control characters
  (tabs, newlines): each run becomes one space;
- dots and spaces at the end (Windows drops them silently) and dots at the start (a hidden file on Linux and macOS);
- a name Windows reserves for a device (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with any extension) gets a ``_``;
- and the name is capped (in characters, and in UTF-8 bytes: most file systems allow 255 bytes), ending in "…".
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

MAX_NAME_CHARS: Final = 120  # the stem; a readable title never needs more
MAX_NAME_BYTES: Final = 255  # the whole name, suffix included: ext4, APFS, NTFS (UTF-16 units there, fewer)
_FORBIDDEN: Final = frozenset('/\\:*?"<>|')
_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
)
_SPACES: Final = re.compile(r"\s+")


def _forbidden(char: str) -> bool:
    # Cc: C0 and C1 control characters and DEL; none can be typed in a name, and Windows refuses 0-31.
    return char in _FORBIDDEN or unicodedata.category(char) == "Cc"


def _trim(stem: str) -> str:
    return stem.strip(" ").rstrip(". ").lstrip(".").strip(" ")


def _fit(stem: str, budget_bytes: int) -> str:
    """``stem`` cut (with "…") to at most MAX_NAME_CHARS characters and ``budget_bytes`` UTF-8 bytes."""
    if len(stem) <= MAX_NAME_CHARS and len(stem.encode("utf-8")) <= budget_bytes:
        return stem
    ellipsis = "…"
    cut = stem[: MAX_NAME_CHARS - 1]
    while cut and len((cut + ellipsis).encode("utf-8")) > budget_bytes:
        cut = cut[:-1]
    cut = _trim(cut)
    return cut + ellipsis if cut else ""


def export_file_name(title: str, suffix: str, fallback: str = "chat") -> str:
    """``title`` + ``suffix`` (".md") as a file name every common file system accepts; ``fallback`` when nothing of
    the title is left (an empty title, or one of forbidden characters only)."""
    cleaned = "".join(" " if _forbidden(c) else c for c in title)
    stem = _trim(_SPACES.sub(" ", cleaned))
    stem = _fit(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8"))) or fallback
    head, dot, rest = stem.partition(".")
    if head.rstrip(" ").upper() in _RESERVED:  # "con" and "Nul.notes" both name a device: "con_", "Nul_.notes"
        stem = f"{head.rstrip(' ')}_{dot}{rest}"
    return stem + suffix
