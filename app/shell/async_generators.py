"""Async generators dropped before their end are closed on the event loop, as asyncio's own loops close them.

An async generator left unfinished (the HTTP response stream of a remote answer the user stopped) is finalised when
its last reference goes. asyncio's loops install the interpreter's async-generator hooks for that
(``asyncio.BaseEventLoop.run_forever``), so the generator's cleanup runs as a task on the loop; qasync's loop never
installs them, so the cleanup ran synchronously with no loop at all, and Python printed "Exception ignored …
AsyncLibraryNotFoundError" for an httpx stream. :func:`close_dropped_generators_on` installs a finaliser that hands
each such generator's ``aclose()`` to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator
from typing import Any

logger = logging.getLogger(__name__)


def close_dropped_generators_on(loop: asyncio.AbstractEventLoop) -> None:
    """From now on, on this thread, an async generator first iterated here and dropped unfinished is closed by a task
    on ``loop`` (the hook is recorded per generator at its first iteration, so install it before any run)."""

    def close(agen: AsyncGenerator[Any, Any]) -> None:
        task = loop.create_task(agen.aclose())
        task.add_done_callback(_log_failure)

    def finalizer(agen: AsyncGenerator[Any, Any]) -> None:
        # The garbage collector may call this on any thread, and after the loop has closed: then nobody can run it.
        if not loop.is_closed():
            loop.call_soon_threadsafe(close, agen)

    sys.set_asyncgen_hooks(finalizer=finalizer)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("closing a dropped async generator failed", exc_info=task.exception())
