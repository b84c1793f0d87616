from __future__ import annotations

import asyncio
import json
import re

import pytest

from gpt_oss_desktop.engine.tools.base import ToolStatus
from gpt_oss_desktop.engine.tools.browser.citations import cursor_urls, replace_citations
from gpt_oss_desktop.engine.tools.browser.fetcher import FetchLimits, PageFetcher
from gpt_oss_desktop.engine.tools.browser.search import SearxngSearch
from gpt_oss_desktop.engine.tools.browser.session import BrowserSession, browser_tools
from gpt_oss_desktop.engine.tools.toolbox import Toolbox
from tests.helpers.web_site import Route, Site


def article(site: Site) -> str:
    paragraphs = "".join(f"<p>Paragraph {i} about nothing much.</p>" for i in range(200))
    return site.html(
        "/article",
        "<title>The Article</title><h1>Article</h1><p>Intro with <a href='/about'>about us</a>.</p>"
        + paragraphs
        + "<p>The answer is 42, said the needle.</p>",
    )


@pytest.fixture
def toolbox(site: Site) -> Toolbox:
    site.routes["/searx/search"] = Route(
        body=json.dumps(
            {"results": [{"title": "The Article", "url": site.url("/article"), "content": "All about it."}]}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    article(site)
    site.html("/about", "<title>About</title><p>We are a site.</p>")
    session = BrowserSession(PageFetcher(FetchLimits(allow_private_hosts=True)), SearxngSearch(site.url("/searx")))
    return Toolbox(browser_tools(session))


def call(toolbox: Toolbox, recipient: str, **arguments: object) -> tuple[ToolStatus, str]:
    outcome = asyncio.run(toolbox.run(recipient, json.dumps(arguments)))
    return outcome.status, outcome.output


def test_search_open_find_and_follow_a_match(toolbox: Toolbox, site: Site) -> None:
    assert toolbox.browser_tool and toolbox.function_specs == ()
    status, results = call(toolbox, "browser.search", query="the article")
    assert status is ToolStatus.OK
    assert results.startswith("[0] the article\n**viewing lines [0 - 3] of 3**\n\nL0: # Search Results")
    assert "L2: * 【0†The Article†127.0.0.1】" in results and "L3:   All about it." in results

    status, opened = call(toolbox, "browser.open", id=0, cursor=0)
    assert status is ToolStatus.OK
    assert opened.startswith(f"[1] The Article ({site.url('/article')})\n**viewing lines [0 - ")
    assert "L2: Intro with 【0†about us】." in opened
    shown = re.findall(r"^L(\d+): ", opened, re.MULTILINE)
    assert 0 < len(shown) < 405  # one view is about VIEW_TOKENS tokens, not the whole page
    assert "needle" not in opened

    status, found = call(toolbox, "browser.find", pattern="NEEDLE")
    assert status is ToolStatus.OK
    match = re.search(r"L0: # 【0†match at L(\d+)】\nL1: The answer is 42, said the needle\.", found)
    assert match and found.startswith("[2] Find results for text: `NEEDLE` in `The Article`")
    line = int(match.group(1))

    status, at_match = call(toolbox, "browser.open", id=0)  # the match, on the find page (the last cursor)
    assert f"[3] The Article ({site.url('/article')})" in at_match
    assert f"viewing lines [{line - 4} - " in at_match and f"L{line}: The answer is 42" in at_match
    assert [request[1] for request in site.requests].count("/article") == 1  # opened twice, fetched once

    status, about = call(toolbox, "browser.open", id=0, cursor=1)  # a link of an earlier page
    assert about.startswith(f"[4] About ({site.url('/about')})") and "L0: We are a site." in about

    status, scrolled = call(toolbox, "browser.open", cursor=1, loc=100, num_lines=3)
    assert "**viewing lines [100 - 102] of " in scrolled and scrolled.count("\nL") == 3


def test_a_url_opens_directly_and_a_quoted_link_id_is_a_link(toolbox: Toolbox, site: Site) -> None:
    status, page = call(toolbox, "browser.open", id=site.url("/article"))
    assert status is ToolStatus.OK and page.startswith("[0] The Article")
    status, about = call(toolbox, "browser.open", id="0")  # "0" is link 0 of page 0, not a host named 0
    assert status is ToolStatus.OK and about.startswith("[1] About")


@pytest.mark.parametrize(
    ("recipient", "arguments", "message"),
    [
        ("browser.open", {"id": 3}, "No page is open yet"),
        ("browser.find", {"pattern": "x"}, "No page is open yet"),
        ("browser.search", {"query": " "}, "`query` is empty"),
        ("browser.search", {"query": 5}, "`query` must be a string"),
        ("browser.open", {"id": 1, "cursor": "first"}, "`cursor` must be a number"),
        ("browser.open", {"url": "https://x.org"}, "takes no argument `url`"),
    ],
)
def test_bad_calls_say_what_to_fix(toolbox: Toolbox, recipient: str, arguments: dict, message: str) -> None:
    status, output = call(toolbox, recipient, **arguments)
    assert status is ToolStatus.BAD_ARGUMENTS and message in output


def test_wrong_links_cursors_and_places_on_open_pages(toolbox: Toolbox, site: Site) -> None:
    call(toolbox, "browser.open", id=site.url("/about"))
    status, output = call(toolbox, "browser.open", id=7)
    assert status is ToolStatus.BAD_ARGUMENTS and "Invalid link id `7` on page [0] (its links: none)" in output
    status, output = call(toolbox, "browser.open", id=0, cursor=5)
    assert "Cursor `5` does not exist (open pages: [0 - 0])" in output
    status, output = call(toolbox, "browser.open", loc=50)
    assert "past the end of the page (its last line is 0)" in output
    status, output = call(toolbox, "browser.open", cursor=0)  # the failed views left no page behind
    assert output.startswith("[1] About")
    call(toolbox, "browser.search", query="x")
    status, output = call(toolbox, "browser.find", pattern="x")
    assert "`find` searches a page's text" in output


def test_fetch_failures_are_errors_the_model_reads(toolbox: Toolbox, site: Site) -> None:
    status, output = call(toolbox, "browser.open", id=site.url("/gone"))
    assert status is ToolStatus.ERROR and "answered HTTP 404" in output
    session = BrowserSession(PageFetcher(FetchLimits()))
    status2 = asyncio.run(Toolbox(browser_tools(session)).run("browser.open", json.dumps({"id": site.url("/about")})))
    assert status2.status is ToolStatus.ERROR and "local network" in status2.output


def test_without_a_search_provider_search_points_to_open(site: Site) -> None:
    tools = Toolbox(browser_tools(BrowserSession(PageFetcher(FetchLimits(allow_private_hosts=True)))))
    outcome = asyncio.run(tools.run("browser.search", '{"query": "x"}'))
    assert outcome.status is ToolStatus.BAD_ARGUMENTS and "Web search is not set up" in outcome.output


def test_view_source_shows_the_markup(toolbox: Toolbox, site: Site) -> None:
    status, output = call(toolbox, "browser.open", id=site.url("/about"), view_source=True)
    assert status is ToolStatus.OK
    assert output.startswith(f"[0] Source of {site.url('/about')} (view-source:{site.url('/about')})")
    assert "L0: <title>About</title><p>We are a site.</p>" in output


def test_citations_link_to_the_pages_their_cursors_showed(toolbox: Toolbox, site: Site) -> None:
    outputs = [call(toolbox, "browser.search", query="a")[1], call(toolbox, "browser.open", id=0)[1]]
    outputs.append(call(toolbox, "browser.find", pattern="needle")[1])
    urls = cursor_urls(outputs)
    assert urls == {1: site.url("/article"), 2: site.url("/article")}  # search results have no address
    text = "It is 42【1†L404-L405】, per 【2†match】 and 【0†L3】 and 【9†L1】."
    linked = replace_citations(text, urls, lambda label, url: f"[{label}]({url})")
    article = site.url("/article")
    assert linked == f"It is 42[127.0.0.1]({article}), per [127.0.0.1]({article}) and 【0†L3】 and 【9†L1】."


def test_hostile_pages_cannot_break_the_next_prompt(site: Site) -> None:
    """A page made to stall the tokenizer (a 40,000-letter run, in the text and in the title), and one cut at the
    byte limit: the views stay renderable into the next round's prompt, and say where the page was cut."""
    from gpt_oss_desktop.engine.harmony import ChatMessage, check_encodable, render_prompt

    run = "x" * 40_000
    site.html("/run", f"<title>{run}</title><a href='/{run}'>{run}</a><p>{run}</p>")
    site.routes["/long"] = Route(body=("word " * 40_000).encode(), headers={"Content-Type": "text/plain"})
    session = BrowserSession(PageFetcher(FetchLimits(allow_private_hosts=True, max_bytes=150_000)))
    tools = Toolbox(browser_tools(session))
    outputs = []
    for arguments in ({"id": site.url("/run")}, {"loc": 100}, {"id": site.url("/long")}, {"loc": "end"}):
        if arguments.get("loc") == "end":  # the last lines of the page before
            last = int(re.search(r"of (\d+)\*\*", outputs[-1]).group(1))  # type: ignore[union-attr]
            arguments = {"loc": last - 2}
        outcome = asyncio.run(tools.run("browser.open", json.dumps(arguments)))
        assert outcome.status is ToolStatus.OK, outcome.output
        check_encodable(outcome.output)
        outputs.append(outcome.output)
    assert len(outputs[0].split("\n", 1)[0]) < 260  # the title is cut
    assert outputs[3].rstrip().endswith("(The page was cut here: it is longer than the browser reads.)")
    messages = [ChatMessage.user("read")]
    for output in outputs:
        messages += [
            ChatMessage.tool_call("browser.open", "{}", channel="analysis"),
            ChatMessage.tool_result("browser.open", output, channel="analysis"),
        ]
    assert render_prompt(messages, browser_tool=True)
    # a link to an address past the length limit is refused with a reason
    status, output = call(tools, "browser.open", id=0, cursor=0)
    assert status is ToolStatus.ERROR and "Cannot open an address of 40,0" in output, output


def test_a_call_says_what_it_would_do_before_it_runs(toolbox: Toolbox, site: Site) -> None:
    def describe(recipient: str, **arguments: object) -> str:
        tool = toolbox.find(recipient)
        return tool.describe(json.dumps(arguments))  # type: ignore[union-attr]

    assert describe("browser.search", query="rain") == "Search SearXNG for “rain”?"
    assert describe("browser.open", id="example.org/a") == "Open https://example.org/a?"
    assert describe("browser.open", id=2) == "Open link 2?"  # nothing open yet: nothing to resolve
    call(toolbox, "browser.open", id=site.url("/article"))
    assert describe("browser.open", id="0") == f"Open {site.url('/about')}?"  # the address the link leads to
    assert describe("browser.open", id=0, cursor=0) == f"Open {site.url('/about')}?"
    call(toolbox, "browser.open", id=0)
    assert describe("browser.open", id=0, cursor=0) == f"Open {site.url('/about')} (already read)?"
    assert describe("browser.open", loc=20) == "Look again at a page already open?"
    assert describe("browser.find", pattern="needle") == "Find “needle” on a page already open?"
    assert describe("browser.open", url="x") == ""  # not a call it would run: nothing to say
    requests = len(site.requests)
    describe("browser.open", id=site.url("/elsewhere"))
    assert len(site.requests) == requests  # describing fetches nothing


def test_a_pdf_opens_as_its_text_page_by_page(toolbox: Toolbox, site: Site) -> None:
    from tests.helpers.pdf_files import pdf_bytes

    paper = pdf_bytes([["Abstract: tides follow the Moon."], ["Results: twice a day."]], title="On Tides")
    site.routes["/paper.pdf"] = Route(body=paper, headers={"Content-Type": "application/pdf"})
    site.routes["/scan.pdf"] = Route(body=pdf_bytes([[]]), headers={"Content-Type": "application/pdf"})
    status, output = call(toolbox, "browser.open", id=site.url("/paper.pdf"))
    assert status is ToolStatus.OK
    assert output.startswith(f"[0] On Tides ({site.url('/paper.pdf')})")
    assert "L0: [Page 1]\nL1: Abstract: tides follow the Moon." in output and "L4: Results: twice a day." in output
    status, found = call(toolbox, "browser.find", pattern="twice")
    assert status is ToolStatus.OK and "match at L4" in found
    status, output = call(toolbox, "browser.open", id=site.url("/scan.pdf"))
    assert status is ToolStatus.ERROR and "has no text in it" in output
