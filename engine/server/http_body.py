"""Reading a request's JSON body with a size limit: 413 over the limit, 400 for JSON that does not parse."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from gpt_oss_desktop.engine.server.errors import APIError, body_too_large


async def read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # a body without Content-Length (chunked) is counted as it arrives
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(
            400,
            f"We could not parse the JSON body of your request ({exc}). Send a JSON object with "
            "'Content-Type: application/json'.",
            code="invalid_json",
        ) from exc
