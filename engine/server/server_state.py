"""What every handler reaches through ``request.app.state.server``: settings, the served model, the Responses store
and the request log hook."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.requests import Request

from gpt_oss_desktop.engine.server.answer_assembler import Usage
from gpt_oss_desktop.engine.server.config import ServerConfig
from gpt_oss_desktop.engine.server.errors import unknown_model
from gpt_oss_desktop.engine.server.request_log import RequestListener
from gpt_oss_desktop.engine.server.serving_engine import ServingEngine

if TYPE_CHECKING:
    from gpt_oss_desktop.engine.server.response_store import ResponseStore


class ServerState:
    def __init__(
        self,
        config: ServerConfig,
        engine: ServingEngine,
        store: ResponseStore,
        *,
        aliases: Iterable[str] = (),
        on_request: RequestListener | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.store = store
        self.on_request = on_request
        self.started = time.time()
        self._names = {engine.model_id.lower(), *(a.lower() for a in aliases)}

    def check_model(self, model: str) -> None:
        if model.lower() not in self._names:
            raise unknown_model(model, self.engine.model_id)


def record_usage(request: Request, usage: Usage | None) -> None:
    """Note a request's token counts for the request log (read by the logging middleware)."""
    request.state.usage = usage
