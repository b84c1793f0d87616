"""The Markdown of an answer's tool calls (pure functions, no database): one block per call, in call order, with
its tool, status and time, the arguments the model wrote and the result that went back to it.

Arguments and results are arbitrary text (code, JSON, a tool's output that may itself hold Markdown and code
fences), so each goes in a fenced block whose fence is longer than any run of backticks inside it: nothing in the
content can close the block early and spill into the document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

# Results longer than this are cut in the Markdown (the JSON export keeps every character): a tool may return
# pages of output, and the document is for reading.
MAX_RESULT_CHARS: Final = 4000
TOOL_CALL_LABEL: Final = "Tool call"
CALL_REASONING_LABEL: Final = "Reasoning before the call"

# Statuses of calls that never ran: their time is not worth a number.
_NOT_RUN: Final = frozenset({"denied", "unknown_tool", "bad_arguments", "unavailable"})
_MARKDOWN_SPECIAL: Final = re.compile(r"([\\`*_\[\]<>#|~])")


def fenced(text: str, info: str = "") -> list[str]:
    """``text`` as a fenced code block (its lines, fences included) that no run of backticks inside can close."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, *body.split("\n"), fence]


def code_span(text: str) -> str:
    """``text`` as inline code on one line, delimited by more backticks than any run inside it."""
    flat = " ".join(text.split())
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    ticks = "`" * (longest + 1)
    # A space on both sides when the text starts or ends with a backtick, which would otherwise merge with the
    # delimiter (CommonMark strips one such space from each side).
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat or ' '}{pad}{ticks}"


def _plain(value: object) -> str:
    # A status is one of a few known words, but the record is open JSON: whatever is there reads as plain text.
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def _arguments_language(call: Mapping[str, Any]) -> str:
    if call.get("recipient") == "python":
        return "python"
    content_type = call.get("content_type")
    if isinstance(content_type, str) and "json" in content_type.lower():
        return "json"
    try:
        json.loads(str(call.get("arguments", "")))
    except ValueError:
        return "text"
    return "json"


def _title(call: Mapping[str, Any]) -> str:
    parts = [f"**{TOOL_CALL_LABEL}**", code_span(str(call.get("recipient", "")))]
    status = call.get("status")
    if status is not None:
        parts.append(_plain(status))
    seconds = call.get("seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and status not in _NOT_RUN:
        parts.append(f"{seconds:.2f} s")
    return " · ".join(parts)


def _reasoning(call: Mapping[str, Any], answer_analysis: str) -> list[str]:
    reasoning = call.get("reasoning")
    if not isinstance(reasoning, str) or not reasoning.strip():
        return []
    # The answer's own reasoning block may already hold it (the turn's reasoning is kept across its tool calls):
    # shown once is enough.
    if reasoning.strip() in answer_analysis:
        return []
    body = reasoning.strip().replace("</details>", "&lt;/details>")
    return ["<details>", f"<summary>{CALL_REASONING_LABEL}</summary>", "", body, "", "</details>", ""]


def _result(call: Mapping[str, Any]) -> list[str]:
    output = call.get("output")
    if not isinstance(output, str):
        return ["*(no result recorded)*", ""]
    if not output.strip():
        return ["*(empty result)*", ""]
    if len(output) <= MAX_RESULT_CHARS:
        return ["Result:", "", *fenced(output, "text"), ""]
    cut = output[:MAX_RESULT_CHARS]
    # At a line break when one is near the limit, so the last line shown is whole.
    line_end = cut.rfind("\n")
    if line_end >= MAX_RESULT_CHARS // 2:
        cut = cut[:line_end]
    note = f"*(result cut: the first {len(cut):,} of {len(output):,} characters; the JSON export has all of it)*"
    return ["Result:", "", *fenced(cut, "text"), "", note, ""]


def tool_call_block(call: Mapping[str, Any], answer_analysis: str = "") -> list[str]:
    """The Markdown lines of one call: title line, reasoning (unless the answer's reasoning has it), arguments,
    result; blank-line separated and ending with a blank line."""
    lines = [_title(call), ""]
    lines += _reasoning(call, answer_analysis)
    arguments = call.get("arguments")
    if isinstance(arguments, str) and arguments.strip():
        lines += [*fenced(arguments, _arguments_language(call)), ""]
    else:
        lines += ["*(no arguments)*", ""]
    return lines + _result(call)


def tool_call_blocks(calls: tuple[dict[str, Any], ...], answer_analysis: str = "") -> list[str]:
    """Every call of an answer, in call order."""
    lines: list[str] = []
    for call in calls:
        lines += tool_call_block(call, answer_analysis)
    return lines
