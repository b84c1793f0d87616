"""``python -m gpt_oss_desktop.engine serve --model DIR|demo``: an OpenAI-compatible server on localhost.

Chat Completions and Responses on ``http://127.0.0.1:8000/v1`` (``--host``/``--port``), concurrent requests decoded
together (``--max-concurrent``), optionally behind ``--api-key``. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from gpt_oss_desktop.engine.cli.argument_types import (
    context_value,
    max_concurrent_value,
    max_waiting_value,
    port_value,
    prefill_chunk_value,
)
from gpt_oss_desktop.engine.cli.chat import add_weights_argument, load_for_cli
from gpt_oss_desktop.engine.continuous_batcher import DEFAULT_PREFILL_CHUNK
from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.server.config import DEFAULT_CONTEXT, DEFAULT_HOST, DEFAULT_PORT, ServerConfig

API_KEY_ENV = "GPTOSS_SERVER_API_KEY"  # so the key need not appear in the process list


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the model over an OpenAI-compatible HTTP API",
        description="Serve a gpt-oss model over an OpenAI-compatible API (/v1/chat/completions, /v1/responses).",
    )
    p.add_argument("--model", required=True, help="checkpoint folder, or demo (the built-in toy model)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default: {DEFAULT_HOST}, this machine)")
    p.add_argument(
        "--port", type=port_value, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0 = any free one)"
    )
    p.add_argument("--api-key", default=None, help=f"require 'Authorization: Bearer KEY' (or set ${API_KEY_ENV})")
    p.add_argument(
        "--max-concurrent", type=max_concurrent_value, default=8, help="requests decoded together (default: 8)"
    )
    p.add_argument(
        "--max-waiting", type=max_waiting_value, default=32, help="requests queued before answering 429 (default: 32)"
    )
    p.add_argument(
        "--prefill-chunk",
        type=prefill_chunk_value,
        default=DEFAULT_PREFILL_CHUNK,
        help="prompt tokens prefilled between two decode steps while other requests stream; smaller keeps their "
        f"tokens coming, larger prefills faster (default: {DEFAULT_PREFILL_CHUNK}; 0 = whole prompts)",
    )
    p.add_argument("--model-name", default=None, help="the model id clients send (default: the folder's name)")
    p.add_argument(
        "--no-reasoning-content",
        action="store_true",
        help="return reasoning only as 'reasoning', not mirrored as 'reasoning_content'",
    )
    p.add_argument("--store", type=Path, default=None, help="the Responses store (SQLite file; default: user data)")
    p.add_argument(
        "--context",
        type=context_value,
        default=DEFAULT_CONTEXT,
        help=f"tokens per request, prompt and answer (default: {DEFAULT_CONTEXT}; the KV cache grows for every slot)",
    )
    p.add_argument("--dtype", choices=["bfloat16", "float32"], default=None, help="weight dtype (default: bfloat16)")
    add_weights_argument(p)
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def run(args: argparse.Namespace) -> int:
    from gpt_oss_desktop.engine.model_ref import DEMO_MODEL, is_builtin, resolve_model_path
    from gpt_oss_desktop.engine.server.runner import RunningServer  # deferred: uvicorn is not needed for --help

    try:
        config = ServerConfig(
            host=args.host,
            port=args.port,
            api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
            max_concurrent=args.max_concurrent,
            max_waiting=args.max_waiting,
            mirror_reasoning_content=not args.no_reasoning_content,
            store_path=args.store,
            prefill_chunk=args.prefill_chunk,
        )
    except ValueError as exc:
        raise EngineError(f"invalid server option: {exc}") from exc
    model = load_for_cli(args.model, args.dtype, args.device, args.weights)
    model_id = args.model_name or (
        DEMO_MODEL if is_builtin(args.model) else served_name(resolve_model_path(args.model))
    )
    server = RunningServer(model, config, model_id=model_id, max_context=args.context)
    server.start()
    sys.stdout.write(f"Serving {model_id} on {server.base_url} (Ctrl-C stops)\n")
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        sys.stderr.write(f"warning: listening on {config.host}: other machines can reach this server\n")
    sys.stdout.flush()
    # SIGTERM (a service manager, `kill`) stops as cleanly as Ctrl-C: requests in flight end, the store closes.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.wait()
    except KeyboardInterrupt:
        sys.stdout.write("stopping\n")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def served_name(folder: Path) -> str:
    """The id clients send: the checkpoint folder's name (``gpt-oss-20b``), ``demo`` for the toy model."""
    return folder.name or "gpt-oss"
