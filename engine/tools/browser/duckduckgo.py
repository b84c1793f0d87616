"""DuckDuckGo as the browser's web search, with no key and nothing to set up: its HTML results page
(``html.duckduckgo.com/html``, the one made for browsers without JavaScript) read for each hit's title, address and
snippet.

It is a page for people, not an API: DuckDuckGo may answer a burst of automated searches with a challenge instead of
results (then the model is told to try again later, or the user can choose a provider with an API), and a change to
the page's markup would show as "no results were found in DuckDuckGo's answer" rather than as wrong hits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Final
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2

from gpt_oss_desktop.engine.tools.browser.search import SearchError, SearchHit

DUCKDUCKGO_URL: Final = "https://html.duckduckgo.com/html/"


@dataclass(slots=True)
class _Hit:
    url: str
    title: list[str] = field(default_factory=list)
    snippet: list[str] = field(default_factory=list)


def _classes(attrs: list[tuple[str, str | None]]) -> set[str]:
    return set((dict(attrs).get("class") or "").split())


def _target(href: str, base: str) -> str:
    """The hit's own address: DuckDuckGo links through ``/l/?uddg=<address>``."""
    absolute = urljoin(base, href)
    parts = urlsplit(absolute)
    if parts.path.startswith("/l/"):
        return parse_qs(parts.query).get("uddg", [""])[0]
    return absolute


class _ResultsParser(HTMLParser):
    """Collects ``a.result__a`` (title and link) and ``.result__snippet`` (text) of the results, ads left out."""

    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.hits: list[_Hit] = []
        self._in: str | None = None  # "title" or "snippet" while inside one
        self._depth = 0
        self._ad_depth = 0  # > 0 inside an ad's block
        self.challenged = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = _classes(attrs)
        if self._ad_depth:
            self._ad_depth += tag not in ("br", "img", "input", "meta", "link")
            return
        if "result--ad" in classes:
            self._ad_depth = 1
            return
        if "anomaly-modal" in " ".join(classes) or (tag == "form" and "challenge-form" in classes):
            self.challenged = True
        if self._in is not None:
            self._depth += 1
        elif tag == "a" and "result__a" in classes:
            self.hits.append(_Hit(_target(dict(attrs).get("href") or "", self.base)))
            self._in, self._depth = "title", 1
        elif "result__snippet" in classes and self.hits:
            self._in, self._depth = "snippet", 1

    def handle_endtag(self, tag: str) -> None:
        if self._ad_depth:
            self._ad_depth -= 1
            return
        if self._in is not None:
            self._depth -= 1
            if self._depth == 0:
                self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.hits[-1].title.append(data)
        elif self._in == "snippet":
            self.hits[-1].snippet.append(data)


@dataclass(frozen=True, slots=True)
class DuckDuckGoSearch:
    endpoint: str = DUCKDUCKGO_URL

    @property
    def name(self) -> str:
        return "DuckDuckGo"

    async def search(self, client: httpx2.AsyncClient, query: str, count: int) -> list[SearchHit]:
        response = await client.post(self.endpoint, data={"q": query, "b": ""})
        if response.status_code in (202, 403, 429):
            raise SearchError("DuckDuckGo is limiting automated searches right now; try again in a minute.")
        if response.status_code >= 400:
            raise SearchError(f"DuckDuckGo answered HTTP {response.status_code} {response.reason_phrase}.")
        parser = _ResultsParser(str(response.url))
        parser.feed(response.text)
        parser.close()
        hits = [
            SearchHit(" ".join("".join(hit.title).split()), hit.url, " ".join("".join(hit.snippet).split()))
            for hit in parser.hits
            if hit.url.startswith(("http://", "https://"))
        ]
        if not hits and parser.challenged:
            raise SearchError("DuckDuckGo is limiting automated searches right now; try again in a minute.")
        if not hits and "result" in response.text and "no-results" not in response.text:
            raise SearchError("no results were found in DuckDuckGo's answer (its page may have changed).")
        return hits[:count]
