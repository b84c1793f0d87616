"""Streaming Markdown: render finished top-level blocks once, re-render only the unfinished tail.

CommonMark parses line by line, and once a line opens a new top-level block every earlier top-level block is
closed for good: no later text can reopen or change it (link reference definitions defined *after* their use are the
one exception, see below). So when the tail parses into several top-level blocks and the last one starts on a
complete line (its line's ``\\n`` has arrived), everything before that block is final: it is rendered once, its
HTML cached, and the tail moves forward to the start of that block. An unclosed ``` fence runs to the end of the
text, so it is always the last block and the tail starts at the fence: exactly the part that can still change.

The per-update cost is therefore bounded by the size of the last top-level block, not the message. A single huge
block (one 500-line code fence, a list with hundreds of items) is still re-parsed whole while it grows.

Reference definitions (``[x]: https://…``) found in committed text are carried forward to later parses; a
definition that comes *after* its use only applies once the whole message is re-rendered (``render_markdown``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gpt_oss_desktop.app.chat.rendering.markdown import LIGHT_STYLE, RenderedHtml, parse, render_tokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncrementalStats:
    """Operation counts, for tests and benchmarks that must not depend on wall-clock time."""

    appends: int
    renders: int
    chars_parsed: int
    """Characters fed to the parser across all renders (tail re-parses plus one parse per committed chunk)."""
    committed_chars: int


class IncrementalMarkdown:
    """Accumulates streamed Markdown text and renders it with cost bounded by the unfinished tail.

    ``append(delta)`` is O(len(delta)); ``html()``/``render()`` re-parse only the tail. The result always equals
    ``render_markdown(text)`` for the text so far (up to the reference-definition caveat in the module doc).
    """

    def __init__(self, text: str = "", style: str = LIGHT_STYLE, citations: dict[int, str] | None = None) -> None:
        self._style = style
        self.citations = dict(citations or {})  # fixed for this object: a change renders anew (MarkdownView)
        self._parts: list[str] = []
        self._text_cache: str | None = ""
        self._length = 0
        # Committed prefix: text[:_stable_end] is final; its HTML and code blocks never change again.
        self._stable_end = 0
        self._stable_html = ""
        self._stable_code: list[str] = []
        self._references: dict[str, Any] = {}
        # Source text not yet committed, kept separately so a render never slices the whole message.
        self._tail = ""
        self._dirty = True
        self._cached: RenderedHtml = RenderedHtml("", [])
        self._appends = 0
        self._renders = 0
        self._chars_parsed = 0
        if text:
            self.append(text)

    @property
    def style(self) -> str:
        return self._style

    def append(self, delta: str) -> None:
        if not delta:
            return
        self._appends += 1
        self._parts.append(delta)
        self._text_cache = None
        self._length += len(delta)
        self._tail += delta
        self._dirty = True

    def text(self) -> str:
        if self._text_cache is None:
            self._text_cache = "".join(self._parts)
            self._parts = [self._text_cache]
        return self._text_cache

    def __len__(self) -> int:
        return self._length

    @property
    def stable_length(self) -> int:
        """Characters of source whose HTML is committed (never re-rendered)."""
        return self._stable_end

    def stats(self) -> IncrementalStats:
        return IncrementalStats(self._appends, self._renders, self._chars_parsed, self._stable_end)

    def html(self) -> str:
        return self.render().html

    def code_blocks(self) -> list[str]:
        return self.render().code_blocks

    def render(self) -> RenderedHtml:
        """HTML of the whole text so far; cached until the next ``append``."""
        if not self._dirty:
            return self._cached
        self._renders += 1
        tail_html, tail_code = self._render_tail()
        self._cached = RenderedHtml(self._stable_html + tail_html, self._stable_code + tail_code)
        self._dirty = False
        return self._cached

    def _env(self) -> dict[str, Any]:
        # A fresh copy per parse: markdown-it adds the parsed text's definitions to env["references"], and a
        # half-typed definition in the tail must not leak into the committed set.
        return {
            "style": self._style,
            "code_base": len(self._stable_code),
            "code_blocks": [],
            "references": dict(self._references),
            "citations": self.citations,
        }

    def _render_tail(self) -> tuple[str, list[str]]:
        tail = self._tail
        env = self._env()
        tokens = parse(tail, env)
        self._chars_parsed += len(tail)
        commit_line = self._commit_line(tokens, tail.count("\n"))
        if commit_line > 0:
            self._commit(commit_line)
            tail = self._tail
            env = self._env()
            tokens = parse(tail, env)
            self._chars_parsed += len(tail)
        html = render_tokens(tokens, env)
        return html, list(env["code_blocks"])

    @staticmethod
    def _commit_line(tokens: list[Any], complete_lines: int) -> int:
        """First line of the last top-level block that starts on a complete line, if it is not the first block."""
        starts = [tok.map[0] for tok in tokens if tok.level == 0 and tok.nesting >= 0 and tok.map is not None]
        for start in reversed(starts[1:]):
            # A block starting on a line whose newline has not arrived could still turn out to be a continuation
            # of the block before it (e.g. "1" becoming "1. item" vs. lazy paragraph text), so only complete lines
            # may close earlier blocks.
            if start < complete_lines:
                return int(start)
        return 0

    def _commit(self, line: int) -> None:
        tail = self._tail
        cut = 0
        for _ in range(line):
            cut = tail.index("\n", cut) + 1
        chunk, self._tail = tail[:cut], tail[cut:]
        env = self._env()
        tokens = parse(chunk, env)
        self._chars_parsed += len(chunk)
        self._stable_html += render_tokens(tokens, env)
        self._stable_code.extend(env["code_blocks"])
        self._references = dict(env.get("references", {}))
        self._stable_end += len(chunk)
        log.debug("committed %d chars (%d stable, %d in tail)", len(chunk), self._stable_end, len(self._tail))
