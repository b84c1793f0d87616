"""Server-sent events framed exactly as OpenAI frames them: ``data: {json}`` events, ``data: [DONE]`` last (Chat
Completions), or ``event: <type>`` + ``data: {json}`` (Responses)."""

from __future__ import annotations

import json
from typing import Any

DONE = b"data: [DONE]\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering of the stream
MEDIA_TYPE = "text/event-stream"


def data_event(payload: dict[str, Any]) -> bytes:
    """One ``data:`` event (compact JSON never holds a newline, so one data line is the whole event)."""
    return b"data: " + _json(payload) + b"\n\n"


def typed_event(payload: dict[str, Any]) -> bytes:
    """A Responses event: its ``type`` as the SSE event name, then the JSON."""
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + _json(payload) + b"\n\n"


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
