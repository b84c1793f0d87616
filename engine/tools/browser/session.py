"""harmony's built-in ``browser`` tool: ``browser.search``, ``browser.open`` and ``browser.find`` over one answer's
browsing session.

gpt-oss was trained with this tool (openai/harmony's ``ToolNamespaceConfig.browser()`` describes it in the system
message), and reads its results in a fixed form: each result is a page on a stack, shown as

    [2] Page title (https://example.com/page)
    **viewing lines [0 - 41] of 180**

    L0: first line
    L1: … 【3†a link】 …

where ``[2]`` is the page's *cursor*. The model opens link ``3`` of that page with ``open(id=3, cursor=2)``, scrolls
with ``open(cursor=2, loc=40)``, searches a page with ``find(pattern=…, cursor=2)`` and cites lines as
``【2†L10-L12】`` (app/chat/rendering turns those into links). A session lives for one answer: its cursors mean
nothing to the next one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx2
from openai_harmony import HarmonyEncoding

from gpt_oss_desktop.engine.harmony import FunctionTool
from gpt_oss_desktop.engine.pdf_text import PdfTextError, pdf_text
from gpt_oss_desktop.engine.tools.arguments import BadArguments, bad_arguments_outcome, parse_arguments
from gpt_oss_desktop.engine.tools.base import ToolOutcome, ToolStatus
from gpt_oss_desktop.engine.tools.browser.fetcher import DocumentKind, FetchedDocument, FetchError, PageFetcher
from gpt_oss_desktop.engine.tools.browser.html_text import html_to_page, text_to_page
from gpt_oss_desktop.engine.tools.browser.names import FIND, OPEN, SEARCH
from gpt_oss_desktop.engine.tools.browser.page import LinkTarget, Page, PageKind, domain_of, strip_link_markers
from gpt_oss_desktop.engine.tools.browser.search import MAX_RESULTS, SearchHit, SearchProvider
from gpt_oss_desktop.engine.vocab import get_encoding

logger = logging.getLogger(__name__)

# How much of a page one result shows when the model does not ask for a number of lines (OpenAI's reference
# browser shows about as much); an explicit ``num_lines`` may show up to MAX_VIEW_TOKENS.
VIEW_TOKENS: Final = 1024
MAX_VIEW_TOKENS: Final = 4096
FIND_CONTEXT_LINES: Final = 4
MAX_FIND_MATCHES: Final = 50
VIEW_SOURCE: Final = "view-source:"
CUT_NOTE: Final = "(The page was cut here: it is longer than the browser reads.)"


class BrowserUsageError(Exception):
    """A call the session cannot carry out as asked (a cursor or link that does not exist); the message is for the
    model, which can correct the call."""


@dataclass(frozen=True, slots=True)
class _View:
    page: Page
    cursor: int
    start: int
    end: int  # exclusive


def _integer(arguments: Mapping[str, Any], name: str, default: int) -> int:
    value = arguments.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BrowserUsageError(f"`{name}` must be a number, not {type(value).__name__}.")
    try:
        return int(float(value))
    except ValueError:
        raise BrowserUsageError(f"`{name}` must be a number, not `{value}`.") from None


def _address(text: str) -> str:
    """A URL from what the model wrote as ``id`` (it may leave out the scheme)."""
    text = text.strip()
    if text.startswith(VIEW_SOURCE):
        return VIEW_SOURCE + _address(text[len(VIEW_SOURCE) :])
    return text if "://" in text else "https://" + text


class BrowserSession:
    """The pages one answer's browser calls opened, by cursor, and the calls themselves.

    Args:
        fetcher: fetches pages (its limits guard what the model may reach).
        search: the web search provider, or None (``search`` then says there is none).
        encoding: the tokenizer that sizes a view (the bundled o200k harmony encoding by default).
        view_tokens: about how many tokens a result shows when the model does not say how many lines.
    """

    def __init__(
        self,
        fetcher: PageFetcher,
        search: SearchProvider | None = None,
        *,
        encoding: HarmonyEncoding | None = None,
        view_tokens: int = VIEW_TOKENS,
    ) -> None:
        self.fetcher = fetcher
        self.search_provider = search
        self._encoding = encoding
        self.view_tokens = view_tokens
        self._stack: list[Page] = []
        self._documents: dict[str, Page] = {}  # fetched pages by URL: following a link twice fetches it once

    @property
    def pages(self) -> tuple[Page, ...]:
        """The page of each cursor, oldest first."""
        return tuple(self._stack)

    # -- the model's three calls ----------------------------------------------------------------------------------

    async def search(self, query: str, topn: int = MAX_RESULTS) -> str:
        if not query.strip():
            raise BrowserUsageError("`query` is empty: say what to search for.")
        if self.search_provider is None:
            raise BrowserUsageError(
                "Web search is not set up in this app (the user can choose a search provider in Tools). Open an "
                "address directly instead: browser.open with `id` set to the URL."
            )
        count = max(1, min(topn, MAX_RESULTS))
        provider = self.search_provider.name
        try:
            async with self.fetcher.client() as client:
                hits = await self.search_provider.search(client, query, count)
        except httpx2.TimeoutException:
            raise FetchError(f"{provider} did not answer within {self.fetcher.limits.timeout_s:g} seconds.") from None
        except httpx2.HTTPError as exc:
            raise FetchError(f"Could not reach {provider}: {exc or type(exc).__name__}.") from None
        return self._show(self._push(_results_page(query, hits)), 0, -1)

    async def open(
        self, id: int | str = -1, cursor: int = -1, loc: int = -1, num_lines: int = -1, view_source: bool = False
    ) -> str:
        if isinstance(id, str) and id.strip().lstrip("-").isdigit():
            id = int(id.strip())  # "3": a link id the model quoted
        if isinstance(id, str):
            url = _address(id)
            if view_source and not url.startswith(VIEW_SOURCE):
                url = VIEW_SOURCE + url
            page = await self._fetch(url, refresh=True)
            return self._show(self._push(page), loc, num_lines)
        current = self._page(cursor)
        if id < 0:  # scroll (or look again at) a page already open
            if view_source and current.kind is PageKind.DOCUMENT:
                page = await self._fetch(VIEW_SOURCE + current.url, refresh=False)
                return self._show(self._push(page), loc, num_lines)
            return self._show(self._push(current), loc, num_lines)
        target = current.links.get(str(id))
        if target is None:
            known = f"0 - {len(current.links) - 1}" if current.links else "none"
            raise BrowserUsageError(f"Invalid link id `{id}` on page [{self._cursor(cursor)}] (its links: {known}).")
        url = VIEW_SOURCE + target.url if view_source else target.url
        page = await self._fetch(url, refresh=False)
        if loc < 0 and target.line:
            loc = max(0, target.line - FIND_CONTEXT_LINES)  # a match or passage: show a little before it
        return self._show(self._push(page), loc, num_lines)

    async def find(self, pattern: str, cursor: int = -1) -> str:
        if not pattern.strip():
            raise BrowserUsageError("`pattern` is empty: say what text to find.")
        page = self._page(cursor)
        if page.kind is not PageKind.DOCUMENT:
            raise BrowserUsageError("`find` searches a page's text: open a page first (not search or find results).")
        return self._show(self._push(_find_page(page, pattern)), 0, -1)

    def describe(self, recipient: str, args: Mapping[str, Any]) -> str:
        """A call, as the question asked before it runs ("Search Brave Search for “…”?", "Open https://…?")."""
        if recipient == SEARCH:
            where = self.search_provider.name if self.search_provider is not None else "the web"
            return f"Search {where} for “{args['query']}”?"
        if recipient == FIND:
            return f"Find “{args['pattern']}” on a page already open?"
        link = args["id"]
        if isinstance(link, str):
            return f"Open {_address(link)}?"
        if link < 0:
            return "Look again at a page already open?"
        try:
            target = self._page(args["cursor"]).links.get(str(link))
        except BrowserUsageError:
            target = None
        if target is None:
            return (
                f"Open link {link} of page [{self._cursor(args['cursor'])}]?" if self._stack else f"Open link {link}?"
            )
        cached = " (already read)" if target.url in self._documents else ""
        return f"Open {target.url}{cached}?"

    # -- pages ----------------------------------------------------------------------------------------------------

    def _cursor(self, cursor: int) -> int:
        return len(self._stack) - 1 if cursor < 0 else cursor

    def _page(self, cursor: int) -> Page:
        if not self._stack:
            raise BrowserUsageError("No page is open yet: search, or open a URL first.")
        index = self._cursor(cursor)
        if index >= len(self._stack):
            raise BrowserUsageError(f"Cursor `{cursor}` does not exist (open pages: [0 - {len(self._stack) - 1}]).")
        return self._stack[index]

    def _push(self, page: Page) -> int:
        self._stack.append(page)
        return len(self._stack) - 1

    async def _fetch(self, url: str, *, refresh: bool) -> Page:
        if not refresh and url in self._documents:
            return self._documents[url]
        document = await self.fetcher.fetch(url.removeprefix(VIEW_SOURCE))
        # On a worker thread: the standard library's HTML parser reads about 1 MB a second, and the loop that awaits
        # a tool is the app's GUI loop.
        page = await asyncio.to_thread(_page_of, document, view_source=url.startswith(VIEW_SOURCE))
        self._documents[url] = page
        return page

    # -- what the model reads -------------------------------------------------------------------------------------

    def _token_count(self, text: str) -> int:
        if self._encoding is None:
            self._encoding = get_encoding()
        return len(self._encoding.encode(text, disallowed_special=()))

    def _view(self, cursor: int, loc: int, num_lines: int) -> _View:
        page = self._stack[cursor]
        total = len(page.lines)
        start = max(0, loc)
        if total == 0:
            return _View(page, cursor, 0, 0)
        if start >= total:
            self._stack.pop()  # a view that shows nothing is no page to come back to
            raise BrowserUsageError(f"`loc` {start} is past the end of the page (its last line is {total - 1}).")
        budget = self.view_tokens if num_lines <= 0 else MAX_VIEW_TOKENS
        wanted = total - start if num_lines <= 0 else min(num_lines, total - start)
        end, used = start, 0
        while end < start + wanted:
            used += self._token_count(f"L{end}: {page.lines[end]}\n")
            if used > budget and end > start:
                break
            end += 1
        return _View(page, cursor, start, end)

    def _show(self, cursor: int, loc: int, num_lines: int) -> str:
        view = self._view(cursor, loc, num_lines)
        page = view.page
        header = f"[{view.cursor}] {page.title}" + (f" ({page.url})" if page.url else "")
        if view.end == view.start:
            return f"{header}\n**the page is empty**"
        body = "\n".join(f"L{i}: {page.lines[i]}" for i in range(view.start, view.end))
        return f"{header}\n**viewing lines [{view.start} - {view.end - 1}] of {len(page.lines) - 1}**\n\n{body}"


def _page_of(document: FetchedDocument, *, view_source: bool) -> Page:
    if document.kind is DocumentKind.PDF:
        try:
            pdf = pdf_text(document.data)
        except PdfTextError as exc:
            raise FetchError(f"`{document.url}` {exc}.") from None
        page = text_to_page(pdf.text, document.url, title=pdf.title or None)
    elif view_source:
        page = text_to_page(document.text, VIEW_SOURCE + document.url, title=f"Source of {document.url}")
    elif document.kind is DocumentKind.HTML:
        page = html_to_page(document.text, document.url)
    else:
        page = text_to_page(document.text, document.url)
    return dataclasses.replace(page, lines=(*page.lines, "", CUT_NOTE)) if document.truncated else page


def _results_page(query: str, hits: list[SearchHit]) -> Page:
    """Search hits as a page whose link ``i`` opens hit ``i``."""
    if not hits:
        return Page.from_text(f"No results for `{query}`.", url="", title=query, kind=PageKind.SEARCH_RESULTS)
    blocks = []
    for index, hit in enumerate(hits):
        title = hit.title.replace("†", "‡").replace("【", "〖").replace("】", "〗")
        snippet = " ".join(hit.snippet.split()).replace("【", "〖").replace("】", "〗")
        blocks.append(f"* 【{index}†{title}†{domain_of(hit.url)}】" + (f"\n  {snippet}" if snippet else ""))
    links = {str(index): LinkTarget(hit.url) for index, hit in enumerate(hits)}
    return Page.from_text(
        "# Search Results\n\n" + "\n".join(blocks), url="", title=query, links=links, kind=PageKind.SEARCH_RESULTS
    )


def _find_page(page: Page, pattern: str) -> Page:
    """The lines of ``page`` that hold ``pattern`` (ignoring case and link markup), each a link to its place."""
    plain = strip_link_markers("\n".join(page.lines)).split("\n")
    needle = pattern.lower()
    chunks: list[str] = []
    links: dict[str, LinkTarget] = {}
    line = 0
    while line < len(plain) and len(chunks) < MAX_FIND_MATCHES:
        if needle not in plain[line].lower():
            line += 1
            continue
        match = len(chunks)
        snippet = "\n".join(plain[line : line + FIND_CONTEXT_LINES])
        chunks.append(f"# 【{match}†match at L{line}】\n{snippet}")
        links[str(match)] = LinkTarget(page.url, line)
        line += FIND_CONTEXT_LINES
    text = "\n\n".join(chunks) if chunks else f"No `find` results for pattern: `{pattern}`"
    return Page.from_text(
        text,
        url=page.url,
        title=f"Find results for text: `{pattern}` in `{page.title}`",
        links=links,
        kind=PageKind.FIND_RESULTS,
    )


# -- the three recipients, as tools ---------------------------------------------------------------------------------


class BrowserFunction:
    """One of ``browser.search|open|find`` over a shared :class:`BrowserSession` (the toolbox finds tools by
    recipient; the three share the session's pages)."""

    def __init__(self, session: BrowserSession, recipient: str, call: Callable[..., Any], parameters: tuple[str, ...]):
        self.session = session
        self._recipient = recipient
        self._call = call
        self._parameters = parameters

    @property
    def recipient(self) -> str:
        return self._recipient

    @property
    def spec(self) -> FunctionTool | None:
        return None  # the system message describes the browser (harmony's browser namespace)

    def describe(self, arguments: str) -> str:
        """What this call would do, in words, for the user deciding whether to let it run: the query and the search
        provider, or the full address a link leads to (nothing is fetched to say so)."""
        try:
            given = parse_arguments(arguments)
            if self._unknown(given):
                return ""
            return self.session.describe(self._recipient, _arguments_for(self._recipient, given))
        except (BadArguments, BrowserUsageError):
            return ""

    def _unknown(self, args: Mapping[str, Any]) -> list[str]:
        """Arguments this call does not take (``source`` and ``top_n`` are harmony's, and ignored)."""
        return sorted(set(args) - set(self._parameters) - {"source", "top_n"})

    async def run(self, arguments: str) -> ToolOutcome:
        started = time.perf_counter()
        try:
            args = parse_arguments(arguments)
        except BadArguments as error:
            return bad_arguments_outcome(error, started)
        unknown = self._unknown(args)
        if unknown:
            return ToolOutcome(
                ToolStatus.BAD_ARGUMENTS,
                f"Error: {self._recipient} takes no argument {', '.join(f'`{name}`' for name in unknown)}.",
                seconds=time.perf_counter() - started,
            )
        try:
            output = await self._call(**_arguments_for(self._recipient, args))
        except BrowserUsageError as error:
            return ToolOutcome(ToolStatus.BAD_ARGUMENTS, f"Error: {error}", seconds=time.perf_counter() - started)
        except FetchError as error:
            return ToolOutcome(ToolStatus.ERROR, f"Error: {error}", seconds=time.perf_counter() - started)
        return ToolOutcome(ToolStatus.OK, output, seconds=time.perf_counter() - started)


def _arguments_for(recipient: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """The session method's keyword arguments from the model's JSON (numbers as it may write them: 3, 3.0, "3")."""
    if recipient == SEARCH:
        query = args.get("query")
        if not isinstance(query, str):
            raise BrowserUsageError("`query` must be a string.")
        topn = args.get("topn", args.get("top_n", MAX_RESULTS))
        return {"query": query, "topn": _integer({"topn": topn}, "topn", MAX_RESULTS)}
    if recipient == FIND:
        pattern = args.get("pattern")
        if not isinstance(pattern, str):
            raise BrowserUsageError("`pattern` must be a string.")
        return {"pattern": pattern, "cursor": _integer(args, "cursor", -1)}
    link = args.get("id", -1)
    if isinstance(link, str) and link.strip().lstrip("-").isdigit():
        link = int(link.strip())  # "3": a link id the model quoted
    if not isinstance(link, str):
        link = _integer({"id": link}, "id", -1)
    return {
        "id": link,
        "cursor": _integer(args, "cursor", -1),
        "loc": _integer(args, "loc", -1),
        "num_lines": _integer(args, "num_lines", -1),
        "view_source": args.get("view_source") is True,
    }


def browser_tools(session: BrowserSession) -> tuple[BrowserFunction, ...]:
    """The three browser recipients over ``session``."""
    return (
        BrowserFunction(session, SEARCH, session.search, ("query", "topn")),
        BrowserFunction(session, OPEN, session.open, ("id", "cursor", "loc", "num_lines", "view_source")),
        BrowserFunction(session, FIND, session.find, ("pattern", "cursor")),
    )
