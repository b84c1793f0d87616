"""The API key never appears in a log record (any logger, DEBUG and up: ours, the SDK's, httpx's), an exception's
text, a report, or a repr, whatever happens to the request."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gpt_oss_desktop.engine.remote.client import RemoteClient
from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.remote.errors import RemoteError
from tests.engine.remote.conftest import StartProvider, answer, connect
from tests.helpers.provider_server import Fault, Flavor

KEY = "sk-test-Zq8vN3kP0wR7yT2u"


def test_the_key_is_in_no_log_no_error_and_no_repr(provider: StartProvider, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's debug output is captured
    server = provider(
        Flavor.OPENROUTER,
        api_key=KEY,
        faults=[
            Fault("status", 500),  # retried: the retry is logged
            Fault("status", 400, message=f"invalid request from key {KEY}"),  # a server that echoes the key
            Fault("cut", after_chunks=3),
        ],
    )
    connection = connect(server, api_key=KEY, max_retries=1)
    texts: list[str] = [repr(connection), str(connection)]

    async def run() -> None:
        client = RemoteClient(connection)
        texts.append(repr(client))
        try:
            with pytest.raises(RemoteError) as refused:
                await answer(client)
            texts.append(str(refused.value))
            assert "[API key]" in str(refused.value)  # the echo was scrubbed, the message kept
            dropped = await answer(client)
            texts.append(str(dropped.done.error))
            ok = await answer(client)
            assert ok.done.error is None
            report = await client.check()
            texts.extend(report.lines())
            wrong = RemoteClient(connect(server, api_key=KEY + "x"))
            try:
                with pytest.raises(RemoteError) as rejected:
                    await wrong.list_models()
                texts.append(str(rejected.value))
            finally:
                await wrong.aclose()
        finally:
            await client.aclose()

    asyncio.run(run())
    assert server.state.headers[-1]["authorization"] == f"Bearer {KEY}"  # it was used
    records = [record.getMessage() for record in caplog.records]
    assert any("retrying" in message for message in records)  # the logs did capture the client's activity
    leaks = [text for text in texts + records if KEY in text]
    assert leaks == []


def test_the_key_is_not_in_the_connections_repr() -> None:
    connection = RemoteConnection("https://api.example.com/v1", "gpt-oss-120b", api_key=KEY)
    assert KEY not in repr(connection) and connection.api_key == KEY
