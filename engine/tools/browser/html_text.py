"""HTML to the browser tool's page text: readable lines, headings as ``#``, list items as ``*``, and every link the
model may follow written inline as ``【{id}†{text}】`` (``【{id}†{text}†{domain}】`` when it leaves the site).

Built on the standard library's tolerant ``html.parser`` (no lxml to install): broken markup still gives text.
Scripts, styles, forms' hidden parts and other things a reader never sees are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Final
from urllib.parse import urljoin, urlsplit, urlunsplit

from gpt_oss_desktop.engine.tools.browser.page import LinkTarget, Page, PageKind, domain_of

# Content a reader never sees (and <head>, whose <title> is read on its own).
_HIDDEN: Final = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "iframe", "canvas", "object", "select", "head"}
)
# Tags that end a line before and after them; of those, the ones set off by a blank line (paragraphs, not the
# items of a list or the rows of a table).
_BLOCKS: Final = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details", "dialog", "div",
        "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tr", "ul",
    }
)  # fmt: skip
_PARAGRAPHS: Final = frozenset(
    {"blockquote", "dl", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "ol", "p", "pre", "table", "ul"}
)
_VOID: Final = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})
_HEADINGS: Final = {f"h{level}": "#" * level for level in range(1, 7)}
_SPACES: Final = re.compile(r"\s+")
# The marker's own brackets and dagger would confuse the model's reading of a page that happens to contain them.
_MARKER_CHARS: Final = str.maketrans({"【": "〖", "】": "〗", "\u200b": None})


def _clean(text: str) -> str:
    return text.translate(_MARKER_CHARS)


@dataclass(slots=True)
class _OpenLink:
    url: str
    parts: list[str] = field(default_factory=list)


class _TextBuilder(HTMLParser):
    """Collects a document's visible text as lines, with link markers and a table of the links' URLs."""

    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.base_domain = domain_of(base_url)
        self.title_parts: list[str] = []
        self.first_heading: list[str] = []
        self.links: dict[str, LinkTarget] = {}
        self._ids_by_url: dict[str, str] = {}
        self._lines: list[str] = []
        self._line: list[str] = []
        # The tag that opened the hidden part being skipped, and how many of it are open (nested <div hidden> in a
        # <div>...). Only that tag is counted: HTML leaves many tags unclosed (<li>, <p>), so counting every tag
        # would let one unclosed tag hide the rest of the page.
        self._hidden: tuple[str, int] | None = None
        self._in_title = False
        self._pre_depth = 0
        self._heading: str | None = None
        self._h1_read = False  # the first <h1>'s text is complete (it may stand in for a missing <title>)
        self._link: _OpenLink | None = None
        self._images = 0

    # -- output ---------------------------------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if self._link is not None:
            self._link.parts.append(text)
        else:
            self._line.append(text)

    def _break(self, *, blank: bool = False) -> None:
        """End the line being written; ``blank`` also leaves one blank line after it (never a run of them)."""
        line = "".join(self._line)
        if self._pre_depth == 0:
            line = _SPACES.sub(" ", line).strip()
        if line.strip():
            self._lines.append(line.rstrip())
        if blank and self._lines and self._lines[-1]:
            self._lines.append("")
        self._line = []

    def text(self) -> str:
        self._break()
        return "\n".join(self._lines).strip("\n")

    # -- parsing --------------------------------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
            return
        if self._hidden is not None:
            hidden_tag, depth = self._hidden
            if tag == "body" and hidden_tag == "head":
                self._hidden = None  # a <head> never closed ends where the body starts
            else:
                if tag == hidden_tag:
                    self._hidden = (hidden_tag, depth + 1)
                return
        attributes = {name: value or "" for name, value in attrs}
        # Hidden parts (menus' closed panels, screen-reader duplicates) would only repeat or add noise. A void tag
        # opens nothing to close, so it is simply skipped.
        if tag in _HIDDEN or "hidden" in attributes or attributes.get("aria-hidden") == "true":
            if tag not in _VOID:
                self._hidden = (tag, 1)
            return
        if tag in _BLOCKS:
            self._break(blank=tag in _PARAGRAPHS)
        if tag == "pre":
            self._pre_depth += 1
        elif tag in _HEADINGS:
            self._heading = tag
            self._write(_HEADINGS[tag] + " ")
        elif tag == "li":
            self._write("* ")
        elif tag in ("td", "th"):
            self._write(" ")
        elif tag == "a":
            self._open_link(attributes.get("href", ""))
        elif tag == "img":
            alt = _clean(_SPACES.sub(" ", attributes.get("alt", "")).strip())
            if alt:
                self._write(f"[Image {self._images}: {alt}]")
                self._images += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if self._hidden is not None:
            hidden_tag, depth = self._hidden
            if tag == hidden_tag:
                self._hidden = (hidden_tag, depth - 1) if depth > 1 else None
            return
        if tag == "a":
            self._close_link()
        elif tag == "pre":
            self._break(blank=True)  # while still preformatted: its last line keeps its indentation
            self._pre_depth = max(0, self._pre_depth - 1)
        elif tag == self._heading:
            self._h1_read = self._h1_read or bool(self.first_heading)
            self._heading = None
        if tag in _BLOCKS:
            self._break(blank=tag in _PARAGRAPHS)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._hidden is not None:
            return
        if self._heading == "h1" and not self._h1_read:
            self.first_heading.append(data)
        if self._pre_depth:
            # Preformatted text keeps its lines: each becomes a line of the page.
            first, *rest = _clean(data).split("\n")
            self._write(first)
            for line in rest:
                self._break()
                self._write(line)
            return
        self._write(_clean(data))

    # -- links ----------------------------------------------------------------------------------------------------

    def _open_link(self, href: str) -> None:
        self._close_link()
        href = href.strip()
        if not href or href.startswith(("#", "javascript:", "mailto:", "tel:", "data:")):
            return
        url = urljoin(self.base_url, href)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return
        self._link = _OpenLink(urlunsplit(parts._replace(fragment="")))

    def _close_link(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        text = _SPACES.sub(" ", "".join(link.parts)).strip().replace("†", "‡")
        if not text:
            return  # a link around nothing readable (an image without alt text): nothing to click
        link_id = self._ids_by_url.get(link.url)
        if link_id is None:
            link_id = str(len(self.links))
            self._ids_by_url[link.url] = link_id
            self.links[link_id] = LinkTarget(link.url)
        domain = domain_of(link.url)
        marker = f"【{link_id}†{text}】" if domain == self.base_domain else f"【{link_id}†{text}†{domain}】"
        self._line.append(marker)


def html_to_page(html: str, url: str, *, title: str | None = None) -> Page:
    """The page of an HTML document fetched from ``url`` (links are resolved against it). ``title`` overrides the
    document's own; without either, the first heading or the site's name stands in."""
    builder = _TextBuilder(url)
    builder.feed(html)
    builder.close()
    text = builder.text()
    found = _SPACES.sub(" ", "".join(builder.title_parts)).strip() or _SPACES.sub(
        " ", "".join(builder.first_heading)
    ).strip("# ")
    return Page.from_text(
        text,
        url=url,
        title=_clean(title or found or domain_of(url) or url),
        links=builder.links,
        kind=PageKind.DOCUMENT,
    )


def text_to_page(text: str, url: str, *, title: str | None = None) -> Page:
    """The page of a plain-text document (text, JSON, source code): its own lines, no links."""
    name = title or urlsplit(url).path.rsplit("/", 1)[-1] or domain_of(url) or url
    return Page.from_text(_clean(text.replace("\r\n", "\n")), url=url, title=_clean(name))
