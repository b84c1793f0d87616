"""Markdown rendering for the chat pane: markdown-it-py + Pygments → Qt rich text, streamed incrementally."""

from __future__ import annotations

from gpt_oss_desktop.app.chat.rendering.incremental import IncrementalMarkdown, IncrementalStats
from gpt_oss_desktop.app.chat.rendering.markdown import (
    COPY_SCHEME,
    DARK_STYLE,
    LIGHT_STYLE,
    RenderedHtml,
    render_markdown,
    style_sheet,
)

__all__ = [
    "COPY_SCHEME",
    "DARK_STYLE",
    "LIGHT_STYLE",
    "IncrementalMarkdown",
    "IncrementalStats",
    "RenderedHtml",
    "render_markdown",
    "style_sheet",
]
