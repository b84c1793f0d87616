"""Markdown → HTML for Qt's rich-text engine (QTextBrowser / QTextDocument).

markdown-it-py parses (CommonMark plus GFM tables and strikethrough, raw HTML off so model output can never inject
markup) and Pygments highlights fenced code with inline styles. Qt understands only a subset of HTML4/CSS and no
class selectors from Pygments, so the renderer overrides a few rules to emit markup Qt lays out well: code blocks
become one-cell tables (Qt honours cell padding and background there, not on ``<pre>``), each with a header row that
holds the language and a ``copy:N`` link, and images become plain links (QTextBrowser would otherwise try to load
``src`` from the local file system). The browser tool's citations (``【3†L10-L12】``) become links to the page they
cite where ``env["citations"]`` knows its address (engine/tools/browser/citations.py).

This module is pure Python (no Qt) so it can be tested and benchmarked without a display.
"""

from __future__ import annotations

import html as html_lib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.styles import get_style_by_name
from pygments.token import Token as PygmentsToken
from pygments.util import ClassNotFound

from gpt_oss_desktop.engine.tools.browser.citations import replace_citations

log = logging.getLogger(__name__)

COPY_SCHEME = "copy"
"""Anchor scheme of the per-code-block copy links: ``copy:N`` where N indexes ``RenderedHtml.code_blocks``."""

LIGHT_STYLE = "default"
DARK_STYLE = "monokai"

# Languages are free text from the model; cap the label so a runaway info string cannot blow up the header row.
_MAX_LANG_LABEL = 24


@dataclass(frozen=True)
class RenderedHtml:
    """HTML for ``QTextDocument.setHtml`` plus the raw source of every code block, in document order."""

    html: str
    code_blocks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _CodeTheme:
    name: str
    background: str
    foreground: str
    border: str


def _luminance(hex_colour: str) -> float:
    value = hex_colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    try:
        r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return 1.0
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255.0


@lru_cache(maxsize=8)
def _theme(style_name: str) -> _CodeTheme:
    style = get_style_by_name(style_name)
    background = style.background_color or "#f8f8f8"
    dark = _luminance(background) < 0.5
    # Plain (unstyled) tokens carry no colour span; pin a colour so they stay readable on the style's own background
    # whatever the widget palette is (light code box inside a dark window, or the reverse).
    token_colour = style.style_for_token(PygmentsToken.Text).get("color")
    foreground = f"#{token_colour}" if token_colour else ("#f8f8f2" if dark else "#1f2328")
    border = "#555555" if dark else "#d0d7de"
    return _CodeTheme(style_name, background, foreground, border)


@lru_cache(maxsize=8)
def _formatter(style_name: str) -> HtmlFormatter[str]:
    # nowrap: we build the surrounding table/pre ourselves; noclasses: Qt ignores <style> class rules from Pygments.
    return HtmlFormatter(style=style_name, noclasses=True, nowrap=True)


@lru_cache(maxsize=128)
def _lexer(lang: str) -> Lexer:
    if lang:
        try:
            return get_lexer_by_name(lang, stripnl=False, ensurenl=False)
        except ClassNotFound:
            log.debug("no Pygments lexer for %r; showing the block as plain text", lang)
    return TextLexer(stripnl=False, ensurenl=False)


def highlight_code(code: str, lang: str, style_name: str = LIGHT_STYLE) -> str:
    """Pygments spans with inline styles (no wrapper)."""
    return highlight(code, _lexer(lang.lower()), _formatter(style_name))


def code_block_html(code: str, lang: str, index: int, style_name: str = LIGHT_STYLE) -> str:
    """One code block as a bordered one-cell-wide table: a header row (language + copy link), then the code."""
    theme = _theme(style_name)
    body = highlight_code(code, lang, style_name)
    # Qt's <pre> keeps a trailing newline as an empty line; drop one so the box hugs the code.
    if body.endswith("\n"):
        body = body[:-1]
    label = html_lib.escape(lang[:_MAX_LANG_LABEL]) if lang else "code"
    return (
        f'<table class="code" width="100%" cellspacing="0" cellpadding="6" border="1" '
        f'style="border-color: {theme.border}; border-style: solid; background-color: {theme.background}; '
        f'margin-top: 6px; margin-bottom: 6px;">'
        f'<tr><td style="color: {theme.foreground};">'
        f'<span style="font-size: small;">{label}</span>'
        f'&nbsp;&nbsp;&nbsp;<a href="{COPY_SCHEME}:{index}" style="color: {theme.foreground};">Copy</a>'
        "</td></tr>"
        f'<tr><td style="color: {theme.foreground};">'
        f'<pre style="margin: 0px; color: {theme.foreground};">{body}</pre>'
        "</td></tr></table>\n"
    )


class _QtRenderer(RendererHTML):
    """markdown-it's HTML renderer with Qt-friendly code blocks and images.

    The code-block counter lives in ``env`` (``code_blocks`` list, ``code_base`` offset) so a caller rendering a
    document in pieces (see ``incremental``) can keep copy-link indices global to the whole message.
    """

    def _code(self, code: str, lang: str, env: EnvType) -> str:
        blocks: list[str] = env.setdefault("code_blocks", [])
        index = int(env.get("code_base", 0)) + len(blocks)
        # The copy button hands out the code as written, without the newline that closes the block.
        blocks.append(code[:-1] if code.endswith("\n") else code)
        return code_block_html(code, lang, index, str(env.get("style", LIGHT_STYLE)))

    def fence(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        lang = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
        return self._code(token.content, lang, env)

    def code_block(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        return self._code(tokens[idx].content, "", env)

    def table_open(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        # Qt draws no cell borders or padding for a bare <table>; HTML4 attributes are what it honours.
        return '<table border="1" cellspacing="0" cellpadding="4" style="border-style: solid; margin: 6px 0px;">\n'

    def text(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        content = html_lib.escape(tokens[idx].content, quote=False)
        citations = env.get("citations")
        if not citations or "【" not in content:
            return content
        # Escaping leaves 【, † and 】 as they are, and a URL is escaped where it goes into the markup.
        return replace_citations(content, citations, _citation_link)

    def image(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        src = html_lib.escape(str(token.attrGet("src") or ""))
        alt = self.renderInlineAsText(token.children or [], options, env) or "image"
        return f'<a href="{src}">[{html_lib.escape(alt)}]</a>'


def _citation_link(site: str, url: str) -> str:
    """A citation as the answer shows it: the cited site's name, a link to the page (with its address as tooltip)."""
    address = html_lib.escape(url)
    # A space before it (the model writes citations right after a word; HTML folds a doubled space into one).
    return f' <a href="{address}" title="{address}">[{html_lib.escape(site.removeprefix("www."))}]</a>'


def make_parser() -> MarkdownIt:
    """The one parser configuration used everywhere (full and incremental rendering must agree)."""
    # "commonmark" + html off: raw HTML in model output is shown as text. Tables/strikethrough are what chat models
    # emit most beyond CommonMark; linkify is left out because it needs an extra dependency.
    md = MarkdownIt("commonmark", {"html": False}, renderer_cls=_QtRenderer)
    md.enable(["table", "strikethrough"])
    return md


_PARSER = make_parser()


def render_tokens(tokens: Sequence[Token], env: dict[str, Any]) -> str:
    """Render an already-parsed token run (a slice of top-level blocks) with the shared parser's renderer."""
    return _PARSER.renderer.render(tokens, _PARSER.options, env)


def parse(text: str, env: dict[str, Any]) -> list[Token]:
    return _PARSER.parse(text, env)


def render_markdown(
    text: str, style: str = LIGHT_STYLE, code_base: int = 0, citations: dict[int, str] | None = None
) -> RenderedHtml:
    """Render a whole Markdown message.

    ``style`` is a Pygments style name (``LIGHT_STYLE``/``DARK_STYLE`` match light and dark palettes);
    ``code_base`` offsets the copy-link indices (used when rendering a message in pieces); ``citations`` maps the
    browser's cursors to the addresses of the pages the answer cites.
    """
    env: dict[str, Any] = {"style": style, "code_base": code_base, "code_blocks": [], "citations": citations or {}}
    html = render_tokens(parse(text, env), env)
    return RenderedHtml(html, list(env["code_blocks"]))


def style_sheet(mono_family: str | None = None) -> str:
    """Default style sheet for ``QTextDocument.setDefaultStyleSheet``.

    No colours on purpose: text, links and background come from the widget palette so light and dark themes both
    work; only spacing and the monospace family are set.
    """
    mono = f'font-family: "{mono_family}", monospace;' if mono_family else "font-family: monospace;"
    return (
        f"pre {{ {mono} margin-top: 0px; margin-bottom: 0px; }}\n"
        f"code {{ {mono} }}\n"
        "p { margin-top: 4px; margin-bottom: 8px; }\n"
        "li { margin-top: 1px; margin-bottom: 1px; }\n"
        "h1, h2, h3, h4, h5, h6 { margin-top: 12px; margin-bottom: 6px; }\n"
        "th { font-weight: bold; }\n"
        "blockquote { margin-left: 12px; }\n"
    )
