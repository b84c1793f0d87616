"""A Responses-API response's output items, built from the answer's pieces, with the stream events on the way.

Each run of one kind of piece is one item: reasoning (``rs_…``, a ``reasoning_text`` part), the answer (``msg_…``,
an ``output_text`` part), or one function call (``fc_…`` with a ``call_…`` id). Events follow OpenAI's order:
``output_item.added`` → ``content_part.added`` → ``*.delta``… → ``*.done`` → ``content_part.done`` →
``output_item.done``. Every event carries the ``sequence_number`` the caller's counter gives it.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from gpt_oss_desktop.engine.server.answer_assembler import Piece, PieceKind


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class ResponseOutput:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []  # every item, the open one included (its final state once closed)
        self._open: PieceKind | None = None
        self._text: list[str] = []
        self._sequence = itertools.count()

    def event(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``payload`` numbered with the next sequence number."""
        return {**payload, "sequence_number": next(self._sequence)}

    def add(self, piece: Piece) -> list[dict[str, Any]]:
        """The events ``piece`` causes: closing the open item if the kind changes, opening one, the delta."""
        events: list[dict[str, Any]] = []
        if piece.kind is PieceKind.TOOL_CALL:
            events += self.close()
            return events + self._function_call(piece)
        if self._open is not piece.kind:
            events += self.close()
            events += self._open_item(piece.kind)
        self._text.append(piece.text)
        index = len(self.items) - 1
        delta_type = (
            "response.reasoning_text.delta" if piece.kind is PieceKind.REASONING else "response.output_text.delta"
        )
        extra: dict[str, Any] = {} if piece.kind is PieceKind.REASONING else {"logprobs": []}
        events.append(
            self.event(
                {
                    "type": delta_type,
                    "item_id": self.items[index]["id"],
                    "output_index": index,
                    "content_index": 0,
                    "delta": piece.text,
                    **extra,
                }
            )
        )
        return events

    def close(self) -> list[dict[str, Any]]:
        """Finish the open reasoning or message item (no events if none is open)."""
        kind, self._open = self._open, None
        if kind is None:
            return []
        index = len(self.items) - 1
        item = self.items[index]
        text = "".join(self._text)
        self._text = []
        part = _part(kind, text)
        item["content"] = [part]
        if kind is PieceKind.CONTENT:
            item["status"] = "completed"
        done_type = "response.reasoning_text.done" if kind is PieceKind.REASONING else "response.output_text.done"
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        extra: dict[str, Any] = {} if kind is PieceKind.REASONING else {"logprobs": []}
        return [
            self.event({"type": done_type, **where, "text": text, **extra}),
            self.event({"type": "response.content_part.done", **where, "part": part}),
            self.event({"type": "response.output_item.done", "output_index": index, "item": dict(item)}),
        ]

    def _open_item(self, kind: PieceKind) -> list[dict[str, Any]]:
        self._open = kind
        if kind is PieceKind.REASONING:
            item: dict[str, Any] = {"id": new_id("rs"), "type": "reasoning", "summary": [], "content": []}
        else:
            item = {"id": new_id("msg"), "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        self.items.append(item)
        index = len(self.items) - 1
        return [
            self.event({"type": "response.output_item.added", "output_index": index, "item": dict(item)}),
            self.event(
                {
                    "type": "response.content_part.added",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "part": _part(kind, ""),
                }
            ),
        ]

    def _function_call(self, piece: Piece) -> list[dict[str, Any]]:
        call = piece.call
        assert call is not None
        item: dict[str, Any] = {
            "id": new_id("fc"),
            "type": "function_call",
            "call_id": new_id("call")[:29],
            "name": call.name,
            "arguments": "",
            "status": "in_progress",
        }
        self.items.append(item)
        index = len(self.items) - 1
        added = self.event({"type": "response.output_item.added", "output_index": index, "item": dict(item)})
        item.update(arguments=call.arguments, status="completed")
        where = {"item_id": item["id"], "output_index": index}
        return [
            added,
            self.event({"type": "response.function_call_arguments.delta", **where, "delta": call.arguments}),
            self.event({"type": "response.function_call_arguments.done", **where, "arguments": call.arguments}),
            self.event({"type": "response.output_item.done", "output_index": index, "item": dict(item)}),
        ]


def _part(kind: PieceKind, text: str) -> dict[str, Any]:
    if kind is PieceKind.REASONING:
        return {"type": "reasoning_text", "text": text}
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
