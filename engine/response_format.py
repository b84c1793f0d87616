"""Structured output: an answer held to a JSON schema (``response_format`` / ``text.format`` of OpenAI's APIs).

Two halves, as harmony's format guide describes them: the prompt tells the model the format, in a ``# Response
Formats`` section at the end of the developer message (``## {name}``, ``// {description}``, the schema as compact
JSON); and sampling holds the final answer to it (engine/channel_guard.py with engine/json_schema.py), since the
prompt alone only asks. Thinking and tool calls stay free of it: only the message on the ``final`` channel is held.

``json_object`` (JSON mode) is a format whose schema is any object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from gpt_oss_desktop.engine.json_schema import SchemaNode, compile_schema_text

JSON_OBJECT_SCHEMA: Final = '{"type":"object"}'


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """A JSON format the final answer must have. ``schema_text``: the JSON schema as compact JSON (the prompt shows
    it as is). Compares by value, so sampling parameters that carry one stay comparable."""

    name: str
    schema_text: str
    description: str | None = None

    def __post_init__(self) -> None:
        if not self.name or any(ch.isspace() for ch in self.name):
            raise ValueError(f"a response format's name must be a word, got {self.name!r}")
        schema = json.loads(self.schema_text)
        if not isinstance(schema, dict):
            raise ValueError("a response format's schema must be a JSON object")
        declared = schema.get("type", "object")
        if declared != "object" and not (isinstance(declared, list) and "object" in declared):
            # (The answer is held to a JSON object, as OpenAI's structured outputs require of the root.)
            raise ValueError(f"a response format's schema must describe an object, not {declared!r}")

    @classmethod
    def json_schema(cls, name: str, schema: Mapping[str, Any], description: str | None = None) -> ResponseFormat:
        """A format of ``schema`` (raises ValueError for a schema that is no JSON)."""
        try:
            text = json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the schema is not JSON: {exc}") from None
        return cls(name, text, description or None)

    @classmethod
    def json_object(cls) -> ResponseFormat:
        """JSON mode: any JSON object."""
        return cls("json_object", JSON_OBJECT_SCHEMA)

    @property
    def node(self) -> SchemaNode:
        """What the final answer is held to."""
        return compile_schema_text(self.schema_text)

    def prompt_section(self) -> str:
        """The developer message's last section, as harmony's format guide writes it."""
        comment = "".join(f"// {line}\n" for line in (self.description or "").splitlines() if line.strip())
        return f"# Response Formats\n\n## {self.name}\n\n{comment}{self.schema_text}"
