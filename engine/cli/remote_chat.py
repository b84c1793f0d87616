"""``chat --server URL --api-model NAME``: the same terminal chat as ``chat --model``, answered by a remote
OpenAI-compatible server through :class:`~engine.remote.client.RemoteClient`.

The key is read from the environment variable ``--api-key-env`` names, never from the command line (where every
user of the machine could read it in the process list). Ctrl-C during an answer stops it (the request is closed);
Ctrl-C or Ctrl-D at the prompt exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gpt_oss_desktop.engine.cli.conversation_loop import converse
from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.events import Done
from gpt_oss_desktop.engine.harmony import ChatSession, ReasoningEffort
from gpt_oss_desktop.engine.remote.connection import ReasoningStyle, RemoteConnection
from gpt_oss_desktop.engine.remote.errors import RemoteError
from gpt_oss_desktop.engine.sampling import SamplingParams

if TYPE_CHECKING:  # the client (and the openai SDK) is imported only when --server is used
    from gpt_oss_desktop.engine.remote.client import RemoteClient, RetryNotice


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The remote options of ``chat`` (``--server`` itself is in the ``--model`` / ``--server`` group)."""
    p.add_argument("--api-model", default=None, help="with --server: the model to ask (as GET /v1/models lists it)")
    p.add_argument(
        "--api-key-env", default=None, metavar="VAR", help="with --server: the environment variable holding the API key"
    )
    p.add_argument(
        "--reasoning-style",
        choices=[s.value for s in ReasoningStyle],
        default=ReasoningStyle.REASONING_EFFORT.value,
        help="with --server: how the effort is sent (reasoning_object for OpenRouter)",
    )
    p.add_argument(
        "--no-reasoning-back",
        action="store_true",
        help="with --server: never send earlier reasoning back (for providers that refuse it, e.g. Groq)",
    )


def connection_from_args(args: argparse.Namespace) -> RemoteConnection:
    if not args.api_model:
        raise EngineError("--server needs --api-model NAME (the model as the server's GET /v1/models lists it)")
    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise EngineError(f"the environment variable {args.api_key_env} (--api-key-env) is not set or empty")
    try:
        return RemoteConnection(
            args.server,
            args.api_model,
            api_key=key,
            reasoning_style=ReasoningStyle(args.reasoning_style),
            send_reasoning_back=not args.no_reasoning_back,
        )
    except ValueError as exc:
        raise EngineError(f"invalid server option: {exc}") from exc


def _on_retry(notice: RetryNotice) -> None:
    sys.stderr.write(f"note: {notice.reason}; trying again in {notice.delay_s:.1f} s\n")


@contextlib.contextmanager
def _ctrl_c_sets(loop: asyncio.AbstractEventLoop, cancel: asyncio.Event) -> Iterator[None]:
    """While an answer streams, Ctrl-C stops it instead of interrupting the program."""
    try:
        loop.add_signal_handler(signal.SIGINT, cancel.set)
    except (NotImplementedError, RuntimeError):  # Windows' loops have no signal handlers: Ctrl-C interrupts
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _answer(
    client: RemoteClient, session: ChatSession, params: SamplingParams, printer: object, cancel: asyncio.Event
) -> Done:
    async for event in client.stream(
        session.messages, effort=session.effort, instructions=session.instructions, params=params, cancel=cancel
    ):
        if isinstance(event, Done):
            printer.done(event)  # type: ignore[attr-defined]
            return event
        printer.delta(event)  # type: ignore[attr-defined]
    raise RemoteError("the stream ended without a Done")  # not reached


def run(args: argparse.Namespace, params: SamplingParams, printer: object) -> int:
    from gpt_oss_desktop.engine.remote.client import RemoteClient

    connection = connection_from_args(args)
    loop = asyncio.new_event_loop()
    client = RemoteClient(connection, on_retry=_on_retry)
    session = ChatSession(effort=ReasoningEffort(args.effort), instructions=args.instructions)

    def answer(turn: ChatSession) -> Done:
        cancel = asyncio.Event()
        with _ctrl_c_sets(loop, cancel):
            return loop.run_until_complete(_answer(client, turn, params, printer, cancel))

    try:
        return converse(
            session,
            args.prompt,
            answer,
            RemoteError,
            f"Interactive chat with {connection.model} at {connection.base_url}.",
        )
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
