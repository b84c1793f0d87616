"""Raw harmony in ``content``: some servers stream the model's output unparsed (llama.cpp with
``reasoning_format: none``, older SGLang), e.g. ``<|channel|>analysis<|message|>…<|end|><|start|>assistant
<|channel|>final<|message|>…``. This splits it back into reasoning and answer with openai-harmony.

The text is tokenised with the o200k harmony encoding (special tokens recognised) and fed to the engine's
:class:`~engine.stream_parser.HarmonyStreamParser`, so a malformed header is salvaged exactly as in the local engine.
Chunks may cut a special token in two (``<|chan`` + ``nel|>``): text from an unclosed ``<|`` on is held back until
the next chunk closes it.
"""

from __future__ import annotations

from typing import Final

from openai_harmony import HarmonyEncoding, Message

from gpt_oss_desktop.engine.events import Delta, ToolCall
from gpt_oss_desktop.engine.stream_parser import HarmonyStreamParser, TokenCounts

_START_ASSISTANT: Final = "<|start|>assistant"
_MARKERS: Final = ("<|channel|>", "<|start|>", "<|message|>")


def looks_like_harmony(text: str) -> bool | None:
    """Whether ``content`` that begins with ``text`` is raw harmony; None while too little has arrived to say."""
    head = text.lstrip()
    if not head:
        return None
    if any(head.startswith(marker) for marker in _MARKERS):
        return True
    if any(marker.startswith(head) for marker in _MARKERS):
        return None
    return False


def _safe_end(text: str) -> int:
    """How much of ``text`` can be tokenised now: all of it, unless it ends inside a possible special token."""
    opened = text.rfind("<|")
    if opened != -1 and text.find("|>", opened + 2) == -1:
        return opened
    return len(text) - 1 if text.endswith("<") else len(text)


class HarmonyContentSplitter:
    """Feed ``content`` text as it streams; get the Deltas of its messages (analysis, final, tool-call text)."""

    def __init__(self, encoding: HarmonyEncoding) -> None:
        self._enc = encoding
        self._parser = HarmonyStreamParser(encoding)
        self._pending = ""
        self._started = False
        self.tool_calls: list[ToolCall] = []

    def feed(self, text: str) -> list[Delta]:
        self._pending += text
        if not self._started:
            head = self._pending.lstrip()
            if len(head) < len(_START_ASSISTANT) and _START_ASSISTANT.startswith(head):
                return []  # maybe the start of "<|start|>assistant": wait for more
            # The parser begins after <|start|>assistant (where a prompt ends), so a server that echoes it loses it.
            self._pending = head.removeprefix(_START_ASSISTANT)
            self._started = True
        end = _safe_end(self._pending)
        ready, self._pending = self._pending[:end], self._pending[end:]
        return self._tokens(ready)

    def finish(self) -> list[Delta]:
        """The held-back tail, then close the parser (a message cut off mid-text is kept)."""
        out = self._tokens(self._pending) if self._started else []
        self._pending = ""
        self._parser.finish()
        return out

    def _tokens(self, text: str) -> list[Delta]:
        if not text:
            return []
        out: list[Delta] = []
        for token in self._enc.encode(text, allowed_special="all"):
            event = self._parser.feed(token)
            if isinstance(event, Delta):
                out.append(event)
            elif isinstance(event, ToolCall):
                self.tool_calls.append(event)
        return out

    @property
    def counts(self) -> TokenCounts:
        """Tokens per category as counted here (an estimate: the server's own tokenisation may differ slightly)."""
        return self._parser.counts

    @property
    def messages(self) -> tuple[Message, ...]:
        return self._parser.messages

    @property
    def malformed(self) -> str | None:
        return self._parser.malformed
