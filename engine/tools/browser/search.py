"""Web search for the browser tool's ``search``: the providers a user can choose, each a small adapter from a search
API's JSON to a list of :class:`SearchHit`.

- **DuckDuckGo**: no key, nothing to set up (its results page for browsers, engine/tools/browser/duckduckgo.py).
- **SearXNG**: a metasearch engine the user runs (or a public instance); no key. Its JSON output must be enabled
  in the instance's settings (``search.formats: [html, json]``).
- **Brave Search API** and **Exa**: hosted APIs with a key (the key is the caller's to keep: the app's keyring).

No provider is a choice too: the model can still open addresses it is given or knows.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx2

from gpt_oss_desktop.engine.tools.browser.fetcher import FetchError

MAX_RESULTS: Final = 10
BRAVE_URL: Final = "https://api.search.brave.com/res/v1/web/search"
EXA_URL: Final = "https://api.exa.ai/search"


class SearchError(FetchError):
    """A search that failed; the message says why, for the model and the call's card."""


class SearchKind(enum.StrEnum):
    NONE = "none"
    DUCKDUCKGO = "duckduckgo"
    SEARXNG = "searxng"
    BRAVE = "brave"
    EXA = "exa"

    @property
    def label(self) -> str:
        return {
            SearchKind.NONE: "No search (open addresses only)",
            SearchKind.DUCKDUCKGO: "DuckDuckGo (no key)",
            SearchKind.SEARXNG: "SearXNG",
            SearchKind.BRAVE: "Brave Search API",
            SearchKind.EXA: "Exa",
        }[self]

    @property
    def needs_key(self) -> bool:
        return self in (SearchKind.BRAVE, SearchKind.EXA)

    @property
    def needs_url(self) -> bool:
        return self is SearchKind.SEARXNG


@dataclass(frozen=True, slots=True)
class SearchHit:
    title: str
    url: str
    snippet: str = ""


class SearchProvider(Protocol):
    @property
    def name(self) -> str: ...

    async def search(self, client: httpx2.AsyncClient, query: str, count: int) -> list[SearchHit]: ...


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _hits(items: object, title: str, url: str, snippet: str, count: int) -> list[SearchHit]:
    """Hits from a list of JSON objects, by the names of their fields; items without a URL are skipped."""
    hits: list[SearchHit] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping) or not _text(item.get(url)).startswith(("http://", "https://")):
            continue
        hits.append(
            SearchHit(_text(item.get(title)) or _text(item.get(url)), _text(item.get(url)), _text(item.get(snippet)))
        )
        if len(hits) == count:
            break
    return hits


async def _json(response: httpx2.Response, provider: str) -> Mapping[str, Any]:
    if response.status_code in (401, 403):
        raise SearchError(f"{provider} refused the search (HTTP {response.status_code}): check the key in Tools.")
    if response.status_code == 429:
        raise SearchError(f"{provider} refused the search: too many requests (HTTP 429). Try again later.")
    if response.status_code >= 400:
        raise SearchError(f"{provider} answered HTTP {response.status_code} {response.reason_phrase}.")
    try:
        data = response.json()
    except ValueError:
        raise SearchError(f"{provider} did not answer with JSON (for SearXNG: enable the json format).") from None
    if not isinstance(data, Mapping):
        raise SearchError(f"{provider} answered with JSON of an unexpected shape.")
    return data


@dataclass(frozen=True, slots=True)
class SearxngSearch:
    base_url: str

    @property
    def name(self) -> str:
        return "SearXNG"

    async def search(self, client: httpx2.AsyncClient, query: str, count: int) -> list[SearchHit]:
        url = self.base_url.rstrip("/") + "/search"
        response = await client.get(url, params={"q": query, "format": "json"})
        data = await _json(response, self.name)
        return _hits(data.get("results"), "title", "url", "content", count)


@dataclass(frozen=True, slots=True)
class BraveSearch:
    api_key: str
    endpoint: str = BRAVE_URL

    @property
    def name(self) -> str:
        return "Brave Search"

    async def search(self, client: httpx2.AsyncClient, query: str, count: int) -> list[SearchHit]:
        headers = {"X-Subscription-Token": self.api_key, "Accept": "application/json"}
        response = await client.get(self.endpoint, params={"q": query, "count": count}, headers=headers)
        data = await _json(response, self.name)
        web = data.get("web")
        return _hits(web.get("results") if isinstance(web, Mapping) else None, "title", "url", "description", count)


@dataclass(frozen=True, slots=True)
class ExaSearch:
    api_key: str
    endpoint: str = EXA_URL

    @property
    def name(self) -> str:
        return "Exa"

    async def search(self, client: httpx2.AsyncClient, query: str, count: int) -> list[SearchHit]:
        body = {"query": query, "numResults": count, "contents": {"summary": True}}
        response = await client.post(self.endpoint, json=body, headers={"x-api-key": self.api_key})
        data = await _json(response, self.name)
        return _hits(data.get("results"), "title", "url", "summary", count)


def make_provider(kind: SearchKind, *, base_url: str = "", api_key: str = "") -> SearchProvider | None:
    """The provider the settings name, or None (no search). A provider missing its URL or key is a ValueError that
    names what is missing (the settings dialog shows it)."""
    if kind is SearchKind.NONE:
        return None
    if kind is SearchKind.DUCKDUCKGO:
        # Here, not at the top: that module builds on this one's hits and errors.
        from gpt_oss_desktop.engine.tools.browser.duckduckgo import DuckDuckGoSearch

        return DuckDuckGoSearch()
    if kind.needs_url and not base_url.strip().startswith(("http://", "https://")):
        raise ValueError(f"{kind.label} needs the address of an instance (http:// or https://)")
    if kind.needs_key and not api_key.strip():
        raise ValueError(f"{kind.label} needs an API key")
    if kind is SearchKind.SEARXNG:
        return SearxngSearch(base_url.strip())
    if kind is SearchKind.BRAVE:
        return BraveSearch(api_key.strip())
    return ExaSearch(api_key.strip())
