"""``MarkdownView``: a read-only QTextBrowser that shows (streaming) Markdown with copyable code blocks."""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QEvent, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import QTextBrowser, QWidget

from gpt_oss_desktop.app.rendering.incremental import IncrementalMarkdown
from gpt_oss_desktop.app.rendering.markdown import COPY_SCHEME, DARK_STYLE, LIGHT_STYLE, style_sheet

log = logging.getLogger(__name__)

MIN_INTERVAL_MS = 50
"""Shortest time between two re-renders while streaming."""

RENDER_BUDGET = 0.25
"""Largest share of GUI time that re-rendering may take while streaming (see ``MarkdownView._schedule``)."""

MAX_INTERVAL_MS = 1000


class MarkdownView(QTextBrowser):
    """Shows Markdown; ``append_text`` streams, ``set_text`` replaces. Re-rendering is throttled and coalesced.

    Copy links (``copy:N``) put code block N on the clipboard and emit ``code_copied(N)``; http(s)/mailto links open
    in the system browser; other links are ignored.
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
        self._markdown = IncrementalMarkdown(style=self._code_style())
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
        self._apply_style_sheet()

    # -- public API ---------------------------------------------------------------------------------------------

    def append_text(self, delta: str) -> None:
        """Add streamed text; it is shown at the next throttled re-render (or ``flush()``)."""
        if not delta:
            return
        self._markdown.append(delta)
        self._schedule()

    def set_text(self, text: str) -> None:
        """Replace the whole content and show it at once (finished messages, history)."""
        self._markdown = IncrementalMarkdown(text, style=self._code_style())
        self._render(follow_bottom=False)

    def text(self) -> str:
        """The Markdown source shown (including text still waiting for the next re-render)."""
        return self._markdown.text()

    def flush(self) -> None:
        """Re-render now if there is pending text (e.g. when a stream ends)."""
        self._render(follow_bottom=True)

    def _render(self, follow_bottom: bool) -> None:
        self._timer.stop()
        self._pending = False
        rendered = self._markdown.render()
        if rendered.html == self._shown_html:
            return
        started = time.perf_counter()
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum()
        position = bar.value()
        self.setHtml(rendered.html)
        # setHtml resets the scroll position; put it back so streaming never yanks a reader around (the chat view
        # decides about auto-scroll; a view already at the bottom stays there).
        bar.setValue(bar.maximum() if follow_bottom and at_bottom else position)
        self._shown_html = rendered.html
        self._code_blocks = rendered.code_blocks
        self._render_count += 1
        self._last_render_s = time.perf_counter() - started
        self.rendered.emit()

    @property
    def pending(self) -> bool:
        """True while text has arrived that is not yet shown."""
        return self._pending

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
        base = self.palette().color(QPalette.ColorRole.Base)
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
        if event.type() == QEvent.Type.PaletteChange:
            style = self._code_style()
            if style != self._markdown.style:
                # Code boxes carry their own colours; re-render them for the new light/dark palette.
                text = self._markdown.text()
                self._markdown = IncrementalMarkdown(text, style=style)
                self._shown_html = None
                self._render(follow_bottom=False)
