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


# DuckDuckGo's results page for browsers without JavaScript, in its shape: results in div.result, an ad marked
# result--ad, each title an a.result__a linking through /l/?uddg=, each snippet an a.result__snippet.
DDG_PAGE = """<html><body><div id="links">
<div class="result results_links result--ad"><div class="links_main">
  <h2 class="result__title"><a class="result__a" href="https://ad.example/buy">Buy tides</a></h2>
  <a class="result__snippet" href="https://ad.example/buy">An ad.</a></div></div>
<div class="result results_links results_links_deep web-result"><div class="links_main links_deep result__body">
  <h2 class="result__title"><a rel="nofollow" class="result__a"
     href="//duckduckgo.com/l/?uddg=https%3A%2F%2Fen.wikipedia.org%2Fwiki%2FTide&amp;rut=abc"
     >Tide - <b>Wikipedia</b></a></h2>
  <a class="result__snippet" href="//duckduckgo.com/l/?uddg=x">Tides are the rise and fall of <b>sea</b> levels.</a>
</div></div>
<div class="result results_links web-result"><div class="links_main">
  <h2 class="result__title"><a class="result__a" href="https://tides.example.org/">Tide tables</a></h2>
  <a class="result__snippet">Daily tables.</a></div></div>
</div></body></html>"""


def test_duckduckgo_results_page_is_read_for_hits_without_ads(site: Site) -> None:
    from gpt_oss_desktop.engine.tools.browser.duckduckgo import DuckDuckGoSearch

    site.html("/html/", DDG_PAGE)
    hits = run(DuckDuckGoSearch(site.url("/html/")), query="tides", count=5)
    assert hits == [
        SearchHit(
            "Tide - Wikipedia", "https://en.wikipedia.org/wiki/Tide", "Tides are the rise and fall of sea levels."
        ),
        SearchHit("Tide tables", "https://tides.example.org/", "Daily tables."),
    ]
    method, _path, _headers, body = site.requests[0]
    assert method == "POST" and b"q=tides" in body
    assert run(DuckDuckGoSearch(site.url("/html/")), count=1) == hits[:1]
    assert make_provider(SearchKind.DUCKDUCKGO) == DuckDuckGoSearch()


def test_duckduckgo_limits_and_changed_pages_are_named(site: Site) -> None:
    from gpt_oss_desktop.engine.tools.browser.duckduckgo import DuckDuckGoSearch

    site.routes["/limited/"] = Route(202, b"<html>please wait</html>")
    site.html("/challenge/", '<html><form class="challenge-form" action="/x"></form></html>')
    site.html("/changed/", '<html><div class="results"><div class="result-card">New layout</div></div></html>')
    site.html("/none/", '<html><div class="no-results">No results.</div></html>')
    for path in ("/limited/", "/challenge/"):
        with pytest.raises(SearchError, match="limiting automated searches"):
            run(DuckDuckGoSearch(site.url(path)))
    with pytest.raises(SearchError, match="its page may have changed"):
        run(DuckDuckGoSearch(site.url("/changed/")))
    assert run(DuckDuckGoSearch(site.url("/none/"))) == []


def test_a_search_service_that_cannot_be_reached_is_an_error_the_model_reads() -> None:
    import socket

    from gpt_oss_desktop.engine.tools.base import ToolStatus
    from gpt_oss_desktop.engine.tools.browser.session import BrowserSession, browser_tools
    from gpt_oss_desktop.engine.tools.toolbox import Toolbox

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    session = BrowserSession(
        PageFetcher(FetchLimits(allow_private_hosts=True)), SearxngSearch(f"http://127.0.0.1:{port}")
    )
    outcome = asyncio.run(Toolbox(browser_tools(session)).run("browser.search", '{"query": "tides"}'))
    assert outcome.status is ToolStatus.ERROR and outcome.output.startswith("Error: Could not reach SearXNG")
