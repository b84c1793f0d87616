"""Reading a function call's arguments as the model wrote them.

The model is asked for JSON (``<|constrain|>json``) but small models, and big ones now and then, wrap it in a code
fence, add a word after it, or send nothing at all. What can be read unambiguously is salvaged; anything else becomes
a :class:`BadArguments` whose message goes back to the model as the tool's result, so it can try again (peers fail
the whole request here: vllm-project/vllm#51977).
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

from gpt_oss_desktop.engine.tools.base import ToolOutcome, ToolStatus

_FENCE: Final = "```"


class BadArguments(ValueError):
    """The arguments could not be read as a JSON object; the message says why, for the model."""


def _strip_fence(text: str) -> str:
    body = text.strip()
    if body.startswith(_FENCE):
        body = body[len(_FENCE) :]
        body = body.split("\n", 1)[1] if "\n" in body else body.removeprefix("json")
        if body.rstrip().endswith(_FENCE):
            body = body.rstrip()[: -len(_FENCE)]
    return body.strip()


def parse_arguments(text: str) -> dict[str, Any]:
    """The arguments as a dict. Empty text means no arguments; a fenced object, or an object followed by stray text
    (``{"a": 1} <|call|>``), is salvaged; a JSON value that is not an object, or text that holds no object, raises
    :class:`BadArguments`."""
    body = _strip_fence(text)
    if not body:
        return {}
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        start = body.find("{")
        if start < 0:
            raise BadArguments(f"the arguments are not JSON ({exc.msg}); send a JSON object") from None
        try:
            # raw_decode stops at the end of the first complete value: trailing words are dropped.
            value, _ = json.JSONDecoder().raw_decode(body, start)
        except json.JSONDecodeError as inner:
            raise BadArguments(
                f"the arguments are not valid JSON ({inner.msg} at character {inner.pos}); send a JSON object"
            ) from None
    if not isinstance(value, dict):
        raise BadArguments(f"the arguments must be a JSON object, not {type(value).__name__}")
    return value


def bad_arguments_outcome(error: BadArguments, started: float) -> ToolOutcome:
    """The result a function tool gives for arguments it cannot read (``started``: its ``perf_counter`` start)."""
    return ToolOutcome(ToolStatus.BAD_ARGUMENTS, f"Error: {error}", seconds=time.perf_counter() - started)
