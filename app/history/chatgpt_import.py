"""ChatGPT's data export (``conversations.json``, or the ``.zip`` it comes in) as this app's chat exports (no Qt here),
so leaving ChatGPT for a local model does not mean leaving its history behind.

ChatGPT keeps a conversation as a tree of messages (each edit or regeneration is a branch) and marks the branch last
shown (``current_node``). That branch is imported: each question with the answer shown under it, a reasoning model's
thoughts as the answer's reasoning (never sent back to a model, like any earlier turn's reasoning here). What this
app has no place for is left out: images (a line says one was attached), tool calls and their results (code runs,
searches), hidden system messages.

The layout read here is the one ChatGPT's export has had since 2023 (``mapping`` of nodes with ``parent``,
``children`` and ``message``; ``message.author.role``; ``message.content`` with ``content_type`` and ``parts``, or
``thoughts`` for reasoning). The tests build such files by hand, since a real export holds someone's chats; anything
unexpected in one conversation skips that conversation, with its title and the reason.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from gpt_oss_desktop.app.history.export import JSON_FORMAT, JSON_FORMAT_VERSION

CONVERSATIONS_FILE: Final = "conversations.json"
# A zip's conversations.json is read whole: past this it is not a chat history this app should load in one go.
MAX_CONVERSATIONS_BYTES: Final = 512 * 1024 * 1024
IMAGE_NOTE: Final = "[An image was attached here in ChatGPT; it was not imported.]"
_ANSWER_TYPES: Final = frozenset({"text", "multimodal_text"})


class NotChatGPTExport(ValueError):
    """The data is not a ChatGPT export."""


@dataclass(slots=True)
class _Turn:
    question: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    asked_at: float | None = None
    answered_at: float | None = None


def is_chatgpt_export(document: object) -> bool:
    """Whether parsed JSON looks like ChatGPT's ``conversations.json`` (a list of conversations with a ``mapping``)."""
    return (
        isinstance(document, list)
        and bool(document)
        and all(isinstance(item, Mapping) and isinstance(item.get("mapping"), Mapping) for item in document)
    )


def read_zip(data: bytes) -> bytes:
    """``conversations.json`` out of ChatGPT's export zip; :class:`NotChatGPTExport` when the zip has none."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [name for name in archive.namelist() if name.rsplit("/", 1)[-1] == CONVERSATIONS_FILE]
            if not names:
                raise NotChatGPTExport(f"a zip without {CONVERSATIONS_FILE} (not a ChatGPT data export)")
            info = archive.getinfo(names[0])
            if info.file_size > MAX_CONVERSATIONS_BYTES:
                raise NotChatGPTExport(f"its {CONVERSATIONS_FILE} is {info.file_size / 2**20:.0f} MiB, too large")
            return archive.read(info)
    except zipfile.BadZipFile as exc:
        raise NotChatGPTExport(f"not a readable zip ({exc})") from None


def _iso(seconds: object, fallback: float) -> str:
    value = seconds if isinstance(seconds, int | float) and not isinstance(seconds, bool) else fallback
    return datetime.fromtimestamp(float(value), UTC).isoformat()


def _branch(conversation: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The messages of the branch ChatGPT showed last, oldest first."""
    mapping = conversation["mapping"]
    node_id = conversation.get("current_node")
    if node_id not in mapping:
        # No current node: follow the last child from the root (the latest edit or regeneration).
        node_id = next((key for key, node in mapping.items() if node.get("parent") is None), None)
        while node_id is not None and mapping[node_id].get("children"):
            node_id = mapping[node_id]["children"][-1]
    messages: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    while node_id is not None and node_id in mapping and node_id not in seen:
        seen.add(node_id)  # a loop in a damaged file must not hang the import
        node = mapping[node_id]
        if isinstance(node.get("message"), Mapping):
            messages.append(node["message"])
        node_id = node.get("parent")
    return messages[::-1]


def _parts_text(content: Mapping[str, Any]) -> str:
    pieces = []
    for part in content.get("parts") or ():
        if isinstance(part, str):
            if part.strip():
                pieces.append(part)
        elif isinstance(part, Mapping) and "image" in str(part.get("content_type", "")):
            pieces.append(IMAGE_NOTE)
    return "\n\n".join(pieces)


def _thoughts_text(content: Mapping[str, Any]) -> str:
    thoughts = content.get("thoughts") or ()
    return "\n\n".join(
        str(thought.get("content", "")).strip()
        for thought in thoughts
        if isinstance(thought, Mapping) and str(thought.get("content", "")).strip()
    )


def _turns(messages: list[Mapping[str, Any]]) -> Iterator[_Turn]:
    turn: _Turn | None = None
    for message in messages:
        author = message.get("author") or {}
        role = author.get("role") if isinstance(author, Mapping) else None
        content = message.get("content") or {}
        metadata = message.get("metadata") or {}
        if not isinstance(content, Mapping) or (
            isinstance(metadata, Mapping) and metadata.get("is_visually_hidden_from_conversation")
        ):
            continue
        kind = content.get("content_type")
        created = message.get("create_time")
        if role == "user" and kind in _ANSWER_TYPES:
            text = _parts_text(content)
            if not text:
                continue
            if turn is not None and turn.answer:
                yield turn
                turn = None
            if turn is None:
                turn = _Turn(asked_at=created if isinstance(created, int | float) else None)
            turn.question.append(text)  # two questions in a row (an unanswered one): asked together
        elif role == "assistant" and turn is not None:
            if kind in _ANSWER_TYPES and message.get("recipient", "all") in ("all", None):
                text = _parts_text(content)
                if text:
                    turn.answer.append(text)
                    turn.answered_at = created if isinstance(created, int | float) else turn.answered_at
            elif kind == "thoughts":
                thoughts = _thoughts_text(content)
                if thoughts:
                    turn.thoughts.append(thoughts)
    if turn is not None:
        yield turn


def chat_export(conversation: Mapping[str, Any], now: float) -> dict[str, Any]:
    """One ChatGPT conversation as this app's export document (app/history/export.py), for ``ChatStore.import_json``.

    Raises :class:`NotChatGPTExport` for a conversation with nothing to import, and lets a damaged one raise
    (KeyError, TypeError, ...), which the caller reports under its title."""
    created = conversation.get("create_time")
    start = float(created) if isinstance(created, int | float) and not isinstance(created, bool) else now
    messages: list[dict[str, Any]] = []
    for turn in _turns(_branch(conversation)):
        asked = _iso(turn.asked_at, start)
        messages.append(_message(len(messages), "user", "\n\n".join(turn.question), "", asked, True))
        if turn.answer or turn.thoughts:
            answered = _iso(turn.answered_at, turn.asked_at or start)
            text, thoughts = "\n\n".join(turn.answer), "\n\n".join(turn.thoughts)
            messages.append(_message(len(messages), "assistant", text, thoughts, answered, bool(turn.answer)))
    if not messages:
        raise NotChatGPTExport("it has no questions or answers to import")
    slug = conversation.get("default_model_slug")
    return {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "kind": "chat",
        "title": str(conversation.get("title") or "").strip() or "ChatGPT conversation",
        "created_at": _iso(created, now),
        "updated_at": _iso(conversation.get("update_time"), start),
        "model": f"ChatGPT ({slug})" if isinstance(slug, str) and slug else "ChatGPT",
        "system_instructions": "",
        "developer_instructions": "",
        "sampling": {},
        "meta": {"imported_from": "ChatGPT"},
        "messages": messages,
    }


def _message(position: int, role: str, text: str, analysis: str, at: str, complete: bool) -> dict[str, Any]:
    return {
        "position": position,
        "column": 0,
        "role": role,
        "text": text,
        "analysis": analysis,
        "effort": None,
        "stats": {},
        "complete": complete,
        "created_at": at,
    }


def conversation_title(conversation: object) -> str:
    title = conversation.get("title") if isinstance(conversation, Mapping) else None
    return str(title).strip() if title else "untitled conversation"


def export_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False)
