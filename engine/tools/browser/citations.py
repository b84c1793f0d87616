"""The browser's citations in an answer (``【3†L10-L12】``: page 3, lines 10 to 12) and the pages they point to.

Each browser result starts with its cursor and address (``[3] Title (https://…)``, engine/tools/browser/session.py),
so an answer's saved tool results are enough to know where its citations lead: nothing else has to be stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final

from gpt_oss_desktop.engine.tools.browser.page import domain_of

# 【cursor†L9-L11】 as the system message asks for it; models also write 【cursor†some title】 or 【cursor†title†site】.
CITATION: Final = re.compile(r"【(?P<cursor>\d+)†(?P<label>[^†】\n]{1,200})(?:†[^†】\n]{0,200})?】")
_HEADER: Final = re.compile(r"^\[(?P<cursor>\d+)\] .*\((?P<url>https?://[^\s()]+)\)$")


def cursor_urls(outputs: Iterable[str]) -> dict[int, str]:
    """The address of each cursor the browser results in ``outputs`` show (a search results page has none)."""
    urls: dict[int, str] = {}
    for output in outputs:
        first_line = output.split("\n", 1)[0]
        match = _HEADER.match(first_line)
        if match:
            urls[int(match.group("cursor"))] = match.group("url")
    return urls


def replace_citations(text: str, urls: dict[int, str], link: Callable[[str, str], str]) -> str:
    """``text`` with each citation of a known page replaced by ``link(label, url)`` (label: the page's site name);
    a citation of an unknown cursor stays as the model wrote it."""

    def one(match: re.Match[str]) -> str:
        url = urls.get(int(match.group("cursor")))
        return match.group(0) if url is None else link(domain_of(url) or url, url)

    return CITATION.sub(one, text)
