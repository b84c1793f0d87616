"""``MarkdownView``: a read-only QTextBrowser that shows (streaming) Markdown with copyable code blocks."""

from __future__ import annotations

import html as html_lib
import logging
import time

from PySide6.QtCore import QEvent, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import QTextBrowser, QWidget

from gpt_oss_desktop.app.chat.rendering.background import BackgroundRenderer
from gpt_oss_desktop.app.chat.rendering.incremental import IncrementalMarkdown
from gpt_oss_desktop.app.chat.rendering.markdown import COPY_SCHEME, DARK_STYLE, LIGHT_STYLE, style_sheet

log = logging.getLogger(__name__)

MIN_INTERVAL_MS = 50
"""Shortest time between two re-renders while streaming."""

RENDER_BUDGET = 0.25
"""Largest share of GUI time that re-rendering may take while streaming (see ``MarkdownView._schedule``)."""

MAX_INTERVAL_MS = 1000

BACKGROUND_RENDER_CHARS = 20_000
"""``set_text`` parses longer texts on the worker thread (app/chat/rendering/background.py); this much takes ~20 ms."""

DISPLAY_LIMIT_CHARS = 512 * 1024
"""The most Markdown source one view renders. gpt-oss's whole 128k-token context is about this much text, so only a
runaway answer is longer; past this, Qt's own ``setHtml`` and layout would stall the window for seconds. The rest
stays in the message: Copy and export give all of it, and the view says so."""


class MarkdownView(QTextBrowser):
    """Shows Markdown; ``append_text`` streams, ``set_text`` replaces. Re-rendering is throttled and coalesced.

    Copy links (``copy:N``) put code block N on the clipboard and emit ``code_copied(N)``; http(s)/mailto links open
    in the system browser; other links are ignored. :meth:`set_citations` turns the browser tool's citations into
    links.
    """

    code_copied = Signal(int)
    rendered = Signal()
    """Emitted after each re-render (the document changed); handy for auto-scroll and height-for-content."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._on_anchor)
        self._citations: dict[int, str] = {}
        self._markdown = IncrementalMarkdown(style=self._code_style())
        # The whole text when the view shows less of it: while a long text renders in the background, or past
        # DISPLAY_LIMIT_CHARS (then ``_hidden_chars`` of it are not shown). None when _markdown holds all of it.
        self._full_text: str | None = None
        self._hidden_chars = 0
        self._background = BackgroundRenderer(self)
        self._background.rendered.connect(self._on_background_rendered)
        self._shown_html: str | None = None
        self._code_blocks: list[str] = []
        self._render_count = 0
        self._last_render_s = 0.0
        # Tracked in Python: PySide6 6.12 corrupts the refcount of True/False when QTimer.isActive() is called
        # thousands of times (a "bool_dealloc" abort), and streaming asks on every token.
        self._pending = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)
        self._restyle_timer = QTimer(self)  # a palette change re-renders code blocks from the event loop
        self._restyle_timer.setSingleShot(True)
        self._restyle_timer.setInterval(0)
        self._restyle_timer.timeout.connect(self._restyle_code)
        self._apply_style_sheet()

    # -- public API ---------------------------------------------------------------------------------------------

    def append_text(self, delta: str) -> None:
        """Add streamed text; it is shown at the next throttled re-render (or ``flush()``)."""
        if not delta:
            return
        if self._full_text is not None:  # rendering in the background, or cut at the display limit: start over
            self.set_text(self._full_text + delta)
            return
        self._markdown.append(delta)
        self._schedule()

    def set_text(self, text: str) -> None:
        """Replace the whole content (finished messages, history): at once when short, else from a worker thread."""
        self._background.cancel()
        self._timer.stop()
        self._pending = False
        shown = _displayed_part(text)
        self._hidden_chars = len(text) - len(shown)
        self._full_text = text if self._hidden_chars else None
        if len(shown) <= BACKGROUND_RENDER_CHARS:
            self._markdown = IncrementalMarkdown(shown, style=self._code_style(), citations=self._citations)
            self._render(follow_bottom=False)
            return
        self._full_text = text
        self._markdown = IncrementalMarkdown(style=self._code_style(), citations=self._citations)
        self._shown_html = None
        self.setPlainText(f"Showing a long answer ({_size(len(text))})…")
        self._background.submit(shown, self._code_style(), self._citations)

    def set_citations(self, urls: dict[int, str]) -> None:
        """The addresses of the browser's cursors (engine/tools/browser/citations.py): citations of them become
        links; the text shown so far is rendered again when they change."""
        if urls == self._citations:
            return
        self._citations = dict(urls)
        text = self.text()
        if text:
            self._shown_html = None
            MarkdownView.set_text(self, text)
        else:
            self._markdown = IncrementalMarkdown(style=self._code_style(), citations=self._citations)

    def text(self) -> str:
        """The whole Markdown source (including text still waiting to be rendered, and any past the display limit)."""
        return self._full_text if self._full_text is not None else self._markdown.text()

    @property
    def hidden_chars(self) -> int:
        """Characters of the text past ``DISPLAY_LIMIT_CHARS``, which the view does not render."""
        return self._hidden_chars

    def _on_background_rendered(self, _request: int, markdown: object) -> None:
        assert isinstance(markdown, IncrementalMarkdown)
        self._markdown = markdown
        if not self._hidden_chars:
            self._full_text = None
        self._render(follow_bottom=False)

    def flush(self) -> None:
        """Re-render now if there is pending text (e.g. when a stream ends)."""
        self._render(follow_bottom=True)

    def _render(self, follow_bottom: bool) -> None:
        self._timer.stop()
        self._pending = False
        rendered = self._markdown.render()
        html = rendered.html + self._hidden_notice()
        if html == self._shown_html:
            return
        started = time.perf_counter()
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum()
        position = bar.value()
        self.setHtml(html)
        # setHtml resets the scroll position; put it back so streaming never yanks a reader around (the chat view
        # decides about auto-scroll; a view already at the bottom stays there).
        bar.setValue(bar.maximum() if follow_bottom and at_bottom else position)
        self._shown_html = html
        self._code_blocks = rendered.code_blocks
        self._render_count += 1
        self._last_render_s = time.perf_counter() - started
        self.rendered.emit()

    @property
    def pending(self) -> bool:
        """True while text has arrived that is not yet shown (waiting for the throttle, or rendering on the worker)."""
        return self._pending or self._background.busy

    def _hidden_notice(self) -> str:
        if not self._hidden_chars:
            return ""
        total = len(self._full_text or "")
        return html_lib.escape(
            f"The last {_size(self._hidden_chars)} of this {_size(total)} answer are not shown here. "
            "Copy the answer, or export the chat, for all of it."
        ).join(("<p><i>", "</i></p>"))

    @property
    def render_count(self) -> int:
        return self._render_count

    def code_blocks(self) -> list[str]:
        """Source of each code block currently shown, indexed like the ``copy:N`` links."""
        return list(self._code_blocks)

    def copy_code(self, index: int) -> bool:
        if not 0 <= index < len(self._code_blocks):
            log.warning("copy link %d has no code block (%d shown)", index, len(self._code_blocks))
            return False
        QGuiApplication.clipboard().setText(self._code_blocks[index])
        self.code_copied.emit(index)
        return True

    def render_interval_ms(self) -> int:
        """Current throttle interval: at least ``MIN_INTERVAL_MS``, longer when a re-render is expensive."""
        # setHtml is O(document) in Qt, so a fixed interval would make each token cost more as the message grows.
        # Stretching the interval to keep rendering under RENDER_BUDGET of the time bounds the per-token cost (and
        # keeps the event loop responsive) at the price of a lower refresh rate for very long messages.
        adaptive = int(self._last_render_s * 1000 / RENDER_BUDGET)
        return max(MIN_INTERVAL_MS, min(MAX_INTERVAL_MS, adaptive))

    # -- internals ----------------------------------------------------------------------------------------------

    def _schedule(self) -> None:
        # Coalesce: the first delta after a render starts the timer, later ones ride along with it.
        if not self._pending:
            self._pending = True
            self._timer.start(self.render_interval_ms())

    def _code_style(self) -> str:
        palette = self.palette()
        brush = palette.brush(QPalette.ColorRole.Base)
        base = brush.color()
        if brush.style() == Qt.BrushStyle.NoBrush or base.alpha() < 128:
            # A transparent view (an answer drawn on its card: QSS "background: transparent" leaves no brush) has no
            # background of its own to judge: light text means a dark theme.
            return DARK_STYLE if palette.color(QPalette.ColorRole.Text).lightness() >= 128 else LIGHT_STYLE
        return DARK_STYLE if base.lightness() < 128 else LIGHT_STYLE

    def _apply_style_sheet(self) -> None:
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        self.document().setDefaultStyleSheet(style_sheet(mono))

    def _on_anchor(self, url: QUrl) -> None:
        scheme = url.scheme().lower()
        if scheme == COPY_SCHEME:
            try:
                index = int(url.path())
            except ValueError:
                log.warning("malformed copy link %r", url.toString())
                return
            self.copy_code(index)
        elif scheme in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)
        else:
            # Model output decides link targets; anything but web links (file:, custom schemes) is not opened.
            log.info("ignoring link with scheme %r", scheme)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        # A new palette, or a new application stylesheet (the app's light/dark theme switch sends this one).
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            # Not here: Qt is re-polishing every widget, and replacing a document in the middle of that crashes it.
            self._restyle_timer.start()

    def _restyle_code(self) -> None:
        if self._code_style() != self._markdown.style:
            # Code boxes carry their own colours; re-render them for the new light/dark palette. This class's
            # set_text, not an override's: AnswerView's skips a text equal to the one shown.
            self._shown_html = None
            MarkdownView.set_text(self, self.text())


def _displayed_part(text: str) -> str:
    """``text`` up to DISPLAY_LIMIT_CHARS, cut at a line end when there is one in the last half before the limit."""
    if len(text) <= DISPLAY_LIMIT_CHARS:
        return text
    cut = text.rfind("\n", DISPLAY_LIMIT_CHARS // 2, DISPLAY_LIMIT_CHARS)
    return text[: cut + 1] if cut >= 0 else text[:DISPLAY_LIMIT_CHARS]


def _size(chars: int) -> str:
    """A character count as a reader-friendly size: "812 characters", "48 KB", "10.2 MB" (1 KB = 1,000 characters)."""
    if chars < 1000:
        return f"{chars} characters"
    if chars < 1_000_000:
        return f"{chars / 1000:.0f} KB"
    return f"{chars / 1_000_000:.1f} MB"
