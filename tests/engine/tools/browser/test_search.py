from __future__ import annotations

import asyncio
import json

import pytest

from gpt_oss_desktop.engine.tools.browser.fetcher import FetchLimits, PageFetcher
from gpt_oss_desktop.engine.tools.browser.search import (
    BraveSearch,
    ExaSearch,
    SearchError,
    SearchHit,
    SearchKind,
    SearxngSearch,
    make_provider,
)
from tests.helpers.web_site import Route, Site

# The providers' answers below follow their documented JSON (SearXNG's format=json, Brave's web search API, Exa's
# /search); the local server stands in for the hosted services, which this machine cannot reach.


def run(provider, query: str = "harmony format", count: int = 10) -> list[SearchHit]:
    async def go() -> list[SearchHit]:
        async with PageFetcher(FetchLimits(allow_private_hosts=True)).client() as client:
            return await provider.search(client, query, count)

    return asyncio.run(go())


def json_route(data: object, status: int = 200) -> Route:
    return Route(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


def test_searxng_results_and_its_query(site: Site) -> None:
    site.routes["/searx/search"] = json_route(
        {
            "results": [
                {"title": "Harmony", "url": "https://github.com/openai/harmony", "content": "The format."},
                {"title": "no url"},
                {"url": "https://example.org/b", "content": "untitled"},
            ]
        }
    )
    hits = run(SearxngSearch(site.url("/searx/")))
    assert hits == [
        SearchHit("Harmony", "https://github.com/openai/harmony", "The format."),
        SearchHit("https://example.org/b", "https://example.org/b", "untitled"),
    ]
    assert site.requests[0][1] == "/searx/search?q=harmony+format&format=json"


def test_brave_sends_its_key_and_count(site: Site) -> None:
    site.routes["/brave"] = json_route(
        {"web": {"results": [{"title": f"R{i}", "url": f"https://r{i}.org/", "description": "d"} for i in range(5)]}}
    )
    hits = run(BraveSearch("brave-key", endpoint=site.url("/brave")), count=3)
    assert [hit.title for hit in hits] == ["R0", "R1", "R2"]
    _, path, headers, _ = site.requests[0]
    assert "count=3" in path and headers["X-Subscription-Token"] == "brave-key"


def test_exa_posts_the_query_with_its_key(site: Site) -> None:
    site.routes["/exa"] = json_route({"results": [{"title": "E", "url": "https://e.org/", "summary": "sum"}]})
    assert run(ExaSearch("exa-key", endpoint=site.url("/exa"))) == [SearchHit("E", "https://e.org/", "sum")]
    _, _, headers, body = site.requests[0]
    assert headers["x-api-key"] == "exa-key"
    assert json.loads(body)["query"] == "harmony format"


@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "check the key"), (429, "too many requests"), (500, "answered HTTP 500")],
)
def test_provider_errors_are_search_errors(site: Site, status: int, message: str) -> None:
    site.routes["/brave"] = json_route({}, status)
    with pytest.raises(SearchError, match=message):
        run(BraveSearch("k", endpoint=site.url("/brave")))


def test_an_instance_without_json_output_is_named(site: Site) -> None:
    site.html("/search", "<html>results as a page</html>")
    with pytest.raises(SearchError, match="enable the json format"):
        run(SearxngSearch(site.base))


def test_make_provider_names_what_is_missing() -> None:
    assert make_provider(SearchKind.NONE) is None
    assert make_provider(SearchKind.SEARXNG, base_url=" http://localhost:8888 ") == SearxngSearch(
        "http://localhost:8888"
    )
    assert make_provider(SearchKind.BRAVE, api_key="k") == BraveSearch("k")
    with pytest.raises(ValueError, match="needs the address"):
        make_provider(SearchKind.SEARXNG, base_url="localhost")
    with pytest.raises(ValueError, match="needs an API key"):
        make_provider(SearchKind.EXA, api_key=" ")
