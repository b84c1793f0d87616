"""One page as the browser tool shows it to the model: its text in numbered lines, with the links it holds.

gpt-oss was trained on a browser that shows pages as numbered lines (``L12: …``) and writes each link inline as
``【{id}†{text}】`` (``【{id}†{text}†{domain}】`` when the link leaves the page's site), so the model can open a link by
its id and cite lines (``【3†L12-L15】``). A :class:`Page` holds that form of a document, of a list of search
results, or of the matches of a ``find``.
"""

from __future__ import annotations

import enum
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

# Wider lines would let one line hold more of a view's tokens; the trained browser wraps at 80 characters. The
# wrapping also breaks any long unbroken run, which the harmony encoder would take quadratic time to read
# (engine/harmony.check_encodable).
LINE_WIDTH: Final = 80
# A link marker the model reads and writes: 【id†text】 or 【id†text†domain】.
# A title longer than this is cut (with "…"): it heads every view of its page, unwrapped.
MAX_TITLE_CHARS: Final = 200
LINK_MARKER: Final = re.compile(r"【(?P<id>\d+)†(?P<text>[^†】]*)(?:†[^†】]*)?】")


class PageKind(enum.StrEnum):
    DOCUMENT = "document"  # a fetched page: its links open other pages
    SEARCH_RESULTS = "search_results"  # its links open the hits
    FIND_RESULTS = "find_results"  # its links jump to a line of the page searched


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """Where link ``id`` of a page leads: a URL, and the line to show first (find matches, search hits)."""

    url: str
    line: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    """A page's title, URL and wrapped lines, and its links by id (as written in the lines' markers)."""

    url: str
    title: str
    lines: tuple[str, ...]
    links: Mapping[str, LinkTarget] = field(default_factory=dict)
    kind: PageKind = PageKind.DOCUMENT

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        url: str,
        title: str,
        links: Mapping[str, LinkTarget] | None = None,
        kind: PageKind = PageKind.DOCUMENT,
    ) -> Page:
        return cls(url=url, title=short_title(title), lines=wrap_lines(text), links=dict(links or {}), kind=kind)


def short_title(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"


def wrap_lines(text: str, width: int = LINE_WIDTH) -> tuple[str, ...]:
    """``text``'s lines, each cut to at most ``width`` characters at spaces where it can be (a blank line stays, and
    a line's indentation, which code needs, carries over to its continuation lines up to half the width)."""
    out: list[str] = []
    for line in text.expandtabs(4).split("\n"):
        if not line.strip():
            out.append("")
            continue
        indent = " " * min(len(line) - len(line.lstrip(" ")), width // 2)
        out.extend(
            textwrap.wrap(
                line.strip(),
                width=width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
                replace_whitespace=True,
            )
        )
    return tuple(out)


# A marker the wrapping may have broken over lines: its text may hold a line break, its domain may not (a marker
# broken inside its domain stays as it is, which only costs ``find`` a match on the marker's raw form).
_WRAPPED_MARKER: Final = re.compile(r"【\d+†(?P<text>[^†】]*)(?:†[^†】\n]*)?】")


def strip_link_markers(text: str) -> str:
    """``text`` with each link marker replaced by its text (what ``find`` matches against); line breaks are kept."""
    return _WRAPPED_MARKER.sub(lambda match: match.group("text"), text)


def domain_of(url: str) -> str:
    return urlsplit(url).hostname or ""
