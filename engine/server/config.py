"""The server's settings (one frozen dataclass; the CLI's ``serve`` flags and the app's Serve action fill it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpt_oss_desktop.engine.continuous_batcher import DEFAULT_PREFILL_CHUNK

DEFAULT_HOST = "127.0.0.1"  # loopback only unless the user asks for more
DEFAULT_PORT = 8000
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # a long conversation is ~100 KB of JSON; 4 MiB leaves ample room
# Tokens per request (prompt + answer). The KV cache's full-attention layers grow for every slot together, so the
# model's own 131,072 at 8 slots could reach ~25 GB on gpt-oss-20b; 16k per request (the app's chat context) keeps
# 8 slots near 3 GB. `serve --context` raises it.
DEFAULT_CONTEXT = 16384


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """``max_concurrent``: requests decoded together (batch slots); ``max_waiting``: requests queued beyond them
    before the server answers 429. ``mirror_reasoning_content``: also return reasoning as ``reasoning_content``
    (llama.cpp / SGLang clients read that name) beside ``reasoning`` (vLLM, OpenRouter, Ollama). ``prefill_chunk``:
    prompt tokens prefilled between two decode steps while other requests stream (0: whole prompts)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    max_concurrent: int = 8
    max_waiting: int = 32
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    mirror_reasoning_content: bool = True
    store_path: Path | None = None  # the Responses store (SQLite); None = the default under the user data folder
    prefill_chunk: int = DEFAULT_PREFILL_CHUNK

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        if self.max_concurrent < 1 or self.max_waiting < 0 or self.max_body_bytes < 1024 or self.prefill_chunk < 0:
            raise ValueError(
                "max_concurrent >= 1, max_waiting >= 0, max_body_bytes >= 1024 and prefill_chunk >= 0 are required"
            )
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("the API key must not be empty")

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"
