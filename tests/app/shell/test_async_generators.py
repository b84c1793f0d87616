"""An async generator dropped unfinished on the qasync loop runs its cleanup on the loop (qasync installs no
async-generator hooks of its own)."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gpt_oss_desktop.app.shell.async_generators import close_dropped_generators_on
from tests.app.conftest import until


@pytest.fixture
def restore_hooks() -> Any:
    saved = sys.get_asyncgen_hooks()
    yield
    sys.set_asyncgen_hooks(*saved)


def test_a_dropped_generator_is_closed_on_the_loop(loop: Any, run: Any, restore_hooks: Any) -> None:
    close_dropped_generators_on(loop)
    cleaned: list[str] = []

    async def stream() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)  # cleanup that needs the loop, as an HTTP stream's does
            cleaned.append("closed on the loop")

    async def body() -> None:
        numbers = stream()
        assert await numbers.__anext__() == 1
        del numbers  # dropped unfinished
        gc.collect()
        await until(lambda: bool(cleaned), timeout=5)

    unraisable: list[Any] = []
    previous = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        run(body())
    finally:
        sys.unraisablehook = previous
    assert cleaned == ["closed on the loop"]
    assert not unraisable
