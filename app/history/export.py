"""Exporting a chat to Markdown and JSON, and parsing a JSON export back (pure functions, no database).

The JSON export names its format (``"format": "gpt-oss-desktop/chat"``) and that format's version, so an app never
imports a file it would read only in part:

- version 1: a chat or comparison, its settings, and each message's text, reasoning, effort, stats and time.
- version 2 adds, on messages, ``tool_calls`` (the tool calls an answer made) and ``attachments`` (the files
  attached to a question). An app that knows only version 1 would import such a file without them, silently;
  since version 2 it refuses the file instead.

Version 1 exports are still imported (as are the version-1 files written after tool calls and attached files came
and before the version said so: what they carry is read). A version newer than :data:`JSON_FORMAT_VERSION` is
refused with an :class:`ImportFormatError` saying that a newer gpt-oss desktop wrote it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from gpt_oss_desktop.app.history.comparison_summary import outcome_from_record, summarise
from gpt_oss_desktop.engine.tools.browser.citations import cursor_urls, replace_citations
from gpt_oss_desktop.engine.tools.browser.names import is_browser_call

from .attachments import clean_attachments, message_text
from .errors import ImportFormatError
from .models import (
    Chat,
    Message,
    check_effort,
    check_kind,
    check_role,
    clean_json_dict,
    clean_tool_calls,
)
from .tool_call_export import tool_call_blocks

T = TypeVar("T")
_CALLS: Final = ("assistant", "tool calls")  # who may carry them, and what they are called in an import error
_FILES: Final = ("user", "attached files")

JSON_FORMAT: Final = "gpt-oss-desktop/chat"
JSON_FORMAT_VERSION: Final = 2  # see the module's docstring for what each version holds
REASONING_LABEL: Final = "Reasoning (not sent to model)"


# --- JSON ------------------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def chat_to_json(chat: Chat) -> str:
    """A self-describing JSON document of the chat.

    Database ids and deletion state are left out on purpose: they mean nothing in another store, and leaving them
    out makes export → import → export reproduce the same text. An answer that called tools has ``tool_calls``
    (the list of call objects, in call order); messages without calls leave the key out, so their export reads as
    before tool calls existed. A question with attached files has ``attachments``: a list of ``{name, text, size,
    tokens}`` objects in the order the model read them (left out likewise when there are none).
    """
    document = {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "kind": chat.kind,
        "title": chat.title,
        "created_at": _iso(chat.created_at),
        "updated_at": _iso(chat.updated_at),
        "model": chat.model,
        "system_instructions": chat.system_instructions,
        "developer_instructions": chat.developer_instructions,
        "sampling": chat.sampling,
        "meta": chat.meta,
        "messages": [_message_to_json(m) for m in chat.messages],
    }
    # allow_nan=False: NaN/Infinity are not JSON, and other tools reading the export would reject the file.
    return json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def _message_to_json(message: Message) -> dict[str, Any]:
    document: dict[str, Any] = {
        "position": message.position,
        "column": message.column,
        "role": message.role,
        "text": message.text,
        "analysis": message.analysis,
    }
    if message.tool_calls:
        document["tool_calls"] = list(message.tool_calls)
    if message.attachments:
        document["attachments"] = [attachment.to_json() for attachment in message.attachments]
    return document | {
        "effort": message.effort,
        "stats": message.stats,
        "complete": message.complete,
        "created_at": _iso(message.created_at),
    }


def _carried(
    raw: Mapping[str, Any],
    key: str,
    role: str,
    where: str,
    carrier: tuple[str, str],
    clean: Callable[[list[Any], str], tuple[T, ...]],
) -> tuple[T, ...]:
    """A message's optional list ``key`` (exports written before it existed have none), checked by ``clean``; only
    messages of the role ``carrier`` names may carry one (``("assistant", "tool calls")``)."""
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise ImportFormatError(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
    items = clean(value, f"{where}: {key}")
    if items and role != carrier[0]:
        raise ImportFormatError(f"{where}: only {carrier[0]} messages carry {carrier[1]}")
    return items


def _field(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise ImportFormatError(f"{where}: missing field {key!r}")
    value = obj[key]
    # bool is an int subclass; a true/false where a number belongs is a malformed file, not a 1/0.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ImportFormatError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _time(obj: Mapping[str, Any], key: str, where: str) -> datetime:
    text = _field(obj, key, str, where)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ImportFormatError(f"{where}: {key!r} is not an ISO 8601 time: {text!r}") from exc
    # A naive time is taken as UTC rather than local time, which would shift on every machine it is imported on.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def chat_from_json(text: str) -> Chat:
    """Parse an export into a detached Chat (ids 0). Raises ImportFormatError naming what is wrong."""
    try:
        document = json.loads(text)
    except RecursionError:  # nested deeper than the parser goes: no export is
        raise ImportFormatError("not a JSON document: nested too deeply") from None
    except (json.JSONDecodeError, TypeError) as exc:
        raise ImportFormatError(f"not a JSON document: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != JSON_FORMAT:
        raise ImportFormatError(f"not a gpt-oss desktop chat export (expected format {JSON_FORMAT!r})")
    version = _field(document, "format_version", int, "export")
    if version > JSON_FORMAT_VERSION:
        # Read anyway, it could lose what the newer app added (as a version-1 reader lost tool calls and files).
        raise ImportFormatError(
            f"this export was written by a newer version of gpt-oss desktop (export format version {version}; this "
            f"one reads up to version {JSON_FORMAT_VERSION}): update the app to import it"
        )
    if version < 1:
        raise ImportFormatError(f"export format version {version} does not exist (versions start at 1)")
    try:
        messages = []
        for index, raw in enumerate(_field(document, "messages", list, "export")):
            where = f"message {index}"
            if not isinstance(raw, dict):
                raise ImportFormatError(f"{where}: not an object")
            effort = raw.get("effort")
            if effort is not None and not isinstance(effort, str):
                raise ImportFormatError(f"{where}: field 'effort' has the wrong type")
            role = check_role(_field(raw, "role", str, where))
            messages.append(
                Message(
                    id=0,
                    chat_id=0,
                    position=_field(raw, "position", int, where),
                    column=_field(raw, "column", int, where),
                    role=role,
                    text=_field(raw, "text", str, where),
                    analysis=_field(raw, "analysis", str, where),
                    effort=check_effort(effort),
                    stats=clean_json_dict(_field(raw, "stats", dict, where), "stats"),
                    complete=_field(raw, "complete", bool, where),
                    created_at=_time(raw, "created_at", where),
                    tool_calls=_carried(raw, "tool_calls", role, where, ("assistant", "tool calls"), clean_tool_calls),
                    attachments=_carried(
                        raw, "attachments", role, where, ("user", "attached files"), clean_attachments
                    ),
                )
            )
        chat = Chat(
            id=0,
            kind=check_kind(_field(document, "kind", str, "export")),
            title=_field(document, "title", str, "export"),
            created_at=_time(document, "created_at", "export"),
            updated_at=_time(document, "updated_at", "export"),
            system_instructions=_field(document, "system_instructions", str, "export"),
            developer_instructions=_field(document, "developer_instructions", str, "export"),
            model=_field(document, "model", str, "export"),
            sampling=clean_json_dict(_field(document, "sampling", dict, "export"), "sampling"),
            meta=clean_json_dict(_field(document, "meta", dict, "export"), "meta"),
            deleted_at=None,
            messages=tuple(sorted(messages, key=lambda m: (m.position, m.column))),
        )
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ImportFormatError):
            raise
        raise ImportFormatError(str(exc)) from exc
    slots = [(m.position, m.column) for m in chat.messages]
    if len(set(slots)) != len(slots):
        raise ImportFormatError("two messages share the same position and column")
    if any(p < 0 or c < 0 for p, c in slots):
        raise ImportFormatError("message positions and columns must not be negative")
    return chat


# --- Markdown --------------------------------------------------------------------------------------------------


def _num(value: Any, digits: int = 0) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return f"{value:,.{digits}f}"


def stats_line(stats: Mapping[str, Any]) -> str:
    """One human line of an answer's numbers, e.g. "reasoning 1,843 tok · answer 212 tok · first token 0.41 s"."""
    parts: list[str] = []
    labelled = (
        ("reasoning_tokens", "reasoning {} tok", 0),
        ("final_tokens", "answer {} tok", 0),
        ("ttft", "first token {} s", 2),
        ("thinking_s", "thought {} s", 1),
        ("answer_s", "answered {} s", 1),
        ("tok_s", "{} tok/s", 1),
    )
    for key, template, digits in labelled:
        shown = _num(stats.get(key), digits)
        if shown is not None:
            parts.append(template.format(shown))
    finish = stats.get("finish_reason")
    if isinstance(finish, str) and finish:
        parts.append(f"finish: {finish}")
    return " · ".join(parts)


def _details(reasoning: str) -> list[str]:
    # A literal </details> inside the reasoning would close the block early and spill the rest into the answer.
    body = reasoning.strip().replace("</details>", "&lt;/details>")
    # The blank lines matter: Markdown renderers only parse Markdown inside an HTML block after a blank line.
    return ["<details>", f"<summary>{REASONING_LABEL}</summary>", "", body, "", "</details>", ""]


def _effort_badge(message: Message) -> str:
    return f" `{message.effort} effort`" if message.effort else ""


def _assistant_block(message: Message, heading: str) -> list[str]:
    lines = [f"{heading}{_effort_badge(message)}", ""]
    if message.analysis.strip():
        lines += _details(message.analysis)
    # The calls came before the answer that used their results.
    lines += tool_call_blocks(message.tool_calls, message.analysis)
    if message.text.strip():
        lines += [_linked_citations(message), ""]
    if not message.complete:
        lines += ["*(interrupted: partial answer)*", ""]
    line = stats_line(message.stats)
    if line:
        lines += [f"*{line}*", ""]
    return lines


def _linked_citations(message: Message) -> str:
    """The answer's text with the browser's citations (``【1†L2-L4】``) as Markdown links to the pages its calls
    showed, as the chat shows them (the JSON export keeps the model's own text)."""
    outputs = [
        str(call.get("output", ""))
        for call in message.tool_calls
        if isinstance(call, Mapping) and is_browser_call(str(call.get("recipient", "")))
    ]
    text = message.text.rstrip()
    if not outputs:
        return text
    return replace_citations(text, cursor_urls(outputs), lambda site, url: f" [[{site.removeprefix('www.')}]]({url})")


def _plain_block(message: Message, heading: str) -> list[str]:
    # A question's files follow it as the model read them: a line naming each, its content fenced.
    return [heading, "", message_text(message.text.rstrip(), message.attachments), ""]


def _header(chat: Chat) -> list[str]:
    kind = "Effort comparison" if chat.kind == "comparison" else "Chat"
    info = [kind, f"created {chat.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"]
    if chat.model:
        info.append(f"model `{chat.model}`")
    lines = [f"# {chat.title}", "", "*" + " · ".join(info) + "*", ""]
    if chat.sampling:
        settings = ", ".join(f"{k} {v}" for k, v in chat.sampling.items())
        lines += [f"Sampling: {settings}", ""]
    if chat.system_instructions.strip():
        lines += ["## System instructions", "", chat.system_instructions.rstrip(), ""]
    if chat.developer_instructions.strip():
        lines += ["## Developer instructions", "", chat.developer_instructions.rstrip(), ""]
    return lines


def _chat_body(chat: Chat) -> list[str]:
    lines: list[str] = []
    for message in chat.thread(0):
        heading = f"## {message.role.capitalize()}"
        if message.role == "assistant":
            lines += _assistant_block(message, heading)
        else:
            lines += _plain_block(message, heading)
    return lines


def _comparison_body(chat: Chat) -> list[str]:
    # The compared answers are the last position (one message per column); everything before it is shared
    # context and the prompt, rendered like a normal chat.
    last = max((m.position for m in chat.messages), default=0)
    shared = replace(chat, kind="chat", messages=tuple(m for m in chat.messages if m.position < last))
    lines = _chat_body(shared)
    answers = [m for m in chat.messages if m.position == last]
    if not answers:
        return lines
    lines += ["## Answers", "", *_comparison_table(answers)]
    outcomes = [outcome_from_record(m.effort or f"column {m.column + 1}", m.text, m.stats) for m in answers]
    if all(m.complete for m in answers):
        lines += [f"*{summarise(outcomes).text(outcomes[0].effort, outcomes[-1].effort)}*", ""]
    for message in answers:
        lines += _assistant_block(message, f"### Column {message.column + 1}")
    return lines


def _comparison_table(group: list[Message]) -> list[str]:
    rows = [
        "| Effort | Reasoning tokens | Answer tokens | First token (s) | First answer token (s) | Total (s) | tok/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in group:
        s = m.stats
        # total_s is written by the compare view; older entries only have the two parts.
        total = s.get("total_s")
        thinking, answering = s.get("thinking_s"), s.get("answer_s")
        if total is None and isinstance(thinking, int | float) and isinstance(answering, int | float):
            total = float(thinking) + float(answering)
        cells = [
            m.effort or f"column {m.column + 1}",
            _num(s.get("reasoning_tokens")) or "–",
            _num(s.get("final_tokens")) or "–",
            _num(s.get("ttft"), 2) or "–",
            _num(s.get("first_answer_s"), 2) or "–",
            _num(total, 1) or "–",
            _num(s.get("tok_s"), 1) or "–",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return [*rows, ""]


def chat_to_markdown(chat: Chat) -> str:
    """A readable Markdown document of the chat (or comparison).

    Reasoning is kept, inside a collapsed <details> block labelled "Reasoning (not sent to model)", because the
    harmony format drops prior reasoning from what the model sees; the label keeps a reader from assuming otherwise.
    """
    body = _comparison_body(chat) if chat.kind == "comparison" else _chat_body(chat)
    return "\n".join(_header(chat) + body).rstrip() + "\n"
