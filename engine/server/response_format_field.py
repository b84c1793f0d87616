"""The answer's format as each API names it: Chat Completions' ``response_format`` and the Responses API's
``text.format``; either gives a :class:`~engine.response_format.ResponseFormat` or None (plain text).

- ``{"type": "text"}`` or absent: no format.
- ``{"type": "json_object"}``: JSON mode, any JSON object.
- ``{"type": "json_schema", ...}``: the schema (``json_schema: {name, schema, description, strict}`` in Chat
  Completions, the same keys beside ``type`` in the Responses API). ``strict`` is accepted either way: the answer is
  held to the schema as far as engine/json_schema.py holds schemas, whichever it says.
"""

from __future__ import annotations

import re
from typing import Any, Final

from gpt_oss_desktop.engine.response_format import ResponseFormat
from gpt_oss_desktop.engine.server.errors import invalid_param, missing_param
from gpt_oss_desktop.engine.server.request_fields import JSONObject, optional_string, require_object, required_string

_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")  # OpenAI's rule for a format's name


def read_response_format(value: Any, param: str, *, nested: bool) -> ResponseFormat | None:
    """The format ``value`` asks for (``param`` names it in a 400). ``nested``: Chat Completions' shape, the schema's
    fields under ``json_schema``; else the Responses API's, beside ``type``."""
    if value is None:
        return None
    spec = require_object(value, param)
    kind = required_string(spec, "type", f"{param}.type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat.json_object()
    if kind != "json_schema":
        raise invalid_param(
            f"{param}.type", f"'{param}.type' must be 'text', 'json_object' or 'json_schema', got {kind!r}."
        )
    where = f"{param}.json_schema" if nested else param
    fields: JSONObject = spec
    if nested:
        if spec.get("json_schema") is None:
            raise missing_param(where)
        fields = require_object(spec["json_schema"], where)
    name = required_string(fields, "name", f"{where}.name")
    if not _NAME.fullmatch(name):
        raise invalid_param(f"{where}.name", f"'{where}.name' must be 1-64 letters, digits, '_' or '-', got {name!r}.")
    if fields.get("schema") is None:
        raise missing_param(f"{where}.schema")
    schema = require_object(fields["schema"], f"{where}.schema")
    description = optional_string(fields, "description", f"{where}.description")
    try:
        return ResponseFormat.json_schema(name, schema, description)
    except ValueError as exc:
        raise invalid_param(f"{where}.schema", f"'{where}.schema' cannot be used: {exc}.") from None


def responses_text_format(body: JSONObject) -> ResponseFormat | None:
    """The Responses API's ``text.format``."""
    text = body.get("text")
    if text is None:
        return None
    return read_response_format(require_object(text, "text").get("format"), "text.format", nested=False)
