"""Failures a user can act on: each fault the provider stand-in injects becomes the typed error (or the Done) the app
shows, after the retries the client does itself (the SDK's own are off)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from typing import Any

import pytest

from gpt_oss_desktop.engine.events import Delta, Done, FinishReason
from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort
from gpt_oss_desktop.engine.remote.client import RemoteClient, RetryNotice
from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.remote.errors import (
    AuthRejected,
    ConnectionLost,
    NotAnOpenAIApi,
    RateLimited,
    RemoteError,
    ServerUnavailable,
    TLSFailure,
    UnknownRemoteModel,
    is_connection_lost,
)
from gpt_oss_desktop.engine.remote.report import CheckStatus
from gpt_oss_desktop.engine.remote.request_body import openai_messages
from gpt_oss_desktop.engine.sampling import SamplingParams
from tests.engine.remote.conftest import QUESTION, Answer, StartProvider, answer, connect
from tests.helpers.provider_server import ANSWER, Fault, Flavor, ProviderServer, reasoning_pieces


def run_answer(connection: RemoteConnection, notices: list[RetryNotice] | None = None, **options: Any) -> Answer:
    async def run() -> Answer:
        client = RemoteClient(connection, on_retry=None if notices is None else notices.append)
        try:
            return await answer(client, **options)
        finally:
            await client.aclose()

    return asyncio.run(run())


def gaps(server: ProviderServer) -> list[float]:
    times = server.state.arrivals
    return [b - a for a, b in itertools.pairwise(times)]


def test_401_is_auth_rejected_at_once(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, api_key="right-key")
    with pytest.raises(AuthRejected, match="rejected the API key") as caught:
        run_answer(connect(server, api_key="wrong-key"))
    assert caught.value.status == 401 and len(server.state.arrivals) == 1  # a 4xx is never retried
    assert run_answer(connect(server, api_key="right-key")).text == "".join(ANSWER)
    assert server.state.headers[-1]["authorization"] == "Bearer right-key"


def test_no_key_sends_no_authorization_header_even_with_openai_api_key_set(
    provider: StartProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-belongs-to-openai")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-belongs-to-openai")
    server = provider(Flavor.OLLAMA)
    run_answer(connect(server))
    headers = server.state.headers[-1]
    assert "authorization" not in headers and "openai-organization" not in headers


def test_429_waits_its_retry_after_then_succeeds(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, faults=[Fault("status", 429, retry_after="1")])
    notices: list[RetryNotice] = []
    got = run_answer(connect(server), notices)
    assert got.text == "".join(ANSWER)
    assert [(n.attempt, n.delay_s, n.retry_after) for n in notices] == [(1, 1.0, 1.0)]
    assert "rate-limiting" in notices[0].reason
    assert gaps(server)[0] >= 0.95


def test_429_longer_than_the_cap_is_handed_to_the_user_with_its_retry_after(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, faults=[Fault("status", 429, retry_after="120")])
    with pytest.raises(RateLimited, match="try again in 120 s") as caught:
        run_answer(connect(server, max_backoff_s=5))
    assert caught.value.retry_after == 120 and len(server.state.arrivals) == 1


def test_500_is_retried_with_growing_backoff_then_succeeds(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, faults=[Fault("status", 500), Fault("status", 503)])
    notices: list[RetryNotice] = []
    got = run_answer(connect(server, backoff_s=0.1), notices)
    assert got.text == "".join(ANSWER) and got.done.finish_reason is FinishReason.STOP
    assert [n.delay_s for n in notices] == [0.1, 0.2]
    first, second = gaps(server)
    assert first >= 0.1 and second >= 0.2


def test_500_after_every_retry_is_server_unavailable(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, faults=[Fault("status", 500, message="CUDA out of memory")] * 3)
    with pytest.raises(ServerUnavailable, match=r"HTTP 500 \(CUDA out of memory\)"):
        run_answer(connect(server, max_retries=2))
    assert len(server.state.arrivals) == 3


def test_a_cut_mid_stream_ends_with_an_error_done_that_keeps_the_partial_answer(provider: StartProvider) -> None:
    cut_after = len(reasoning_pieces("medium")) + 2  # all the reasoning and two words of the answer
    server = provider(Flavor.VLLM, faults=[Fault("cut", after_chunks=cut_after)])
    got = run_answer(connect(server))
    done = got.done
    assert done.finish_reason is FinishReason.ERROR and is_connection_lost(done), done.error
    assert got.reasoning == "".join(reasoning_pieces("medium")) and got.text == "".join(ANSWER[:2])
    assert [m.channel for m in done.messages] == ["analysis", "final"]  # the history keeps what arrived
    assert done.messages[-1].content[0].text == "".join(ANSWER[:2])  # type: ignore[union-attr]
    assert done.counts_estimated and done.final_tokens > 0
    assert len(server.state.arrivals) == 1  # never replayed


def test_a_cut_can_raise_connection_lost_instead(provider: StartProvider) -> None:
    server = provider(Flavor.LLAMACPP, faults=[Fault("cut", after_chunks=len(reasoning_pieces("medium")) + 1)])
    with pytest.raises(ConnectionLost) as caught:
        run_answer(connect(server), raise_on_drop=True)
    assert caught.value.partial_text == ANSWER[0]
    assert caught.value.partial_reasoning == "".join(reasoning_pieces("medium"))


def test_a_body_that_ends_without_a_finish_reason_is_a_lost_connection(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, faults=[Fault("end", after_chunks=2), Fault("end", after_chunks=2)])
    done = run_answer(connect(server)).done
    assert is_connection_lost(done) and "without a finish reason" in (done.error or "")
    with pytest.raises(ConnectionLost) as caught:
        run_answer(connect(server), raise_on_drop=True)
    assert caught.value.partial_reasoning == "".join(reasoning_pieces("medium")[:2])


def test_slow_chunks_are_timed_on_the_client(provider: StartProvider) -> None:
    server = provider(Flavor.NOVITA, faults=[Fault("slow", delay_s=0.05)])
    done = run_answer(connect(server)).done
    thoughts = len(reasoning_pieces("medium"))
    assert done.time_to_first_token is not None and done.time_to_first_final_token is not None
    assert 0.05 <= done.time_to_first_token < 5  # (no tight upper bound: the machine may be busy)
    assert done.time_to_first_final_token >= 0.05 * (thoughts + 1)
    assert done.decode_tokens_per_s < 1 / 0.05 * 2  # chunk pace, not network speed


def test_cancel_mid_answer_ends_cancelled_and_closes_the_request(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, faults=[Fault("slow", delay_s=1.0)])

    async def run() -> Answer:
        cancel = asyncio.Event()
        client = RemoteClient(connect(server))
        deltas: list[Delta] = []
        cancelled_at = 0.0
        try:
            async for event in client.stream(
                QUESTION, effort=ReasoningEffort.MEDIUM, instructions=None, params=SamplingParams(), cancel=cancel
            ):
                if isinstance(event, Done):
                    assert time.monotonic() - cancelled_at < 0.5  # not after the server's next chunk (1 s)
                    return Answer(deltas, event)
                deltas.append(event)
                cancel.set()  # stop after the first piece, while the server is silent for a second
                cancelled_at = time.monotonic()
        finally:
            await client.aclose()
        raise AssertionError("no Done")

    got = asyncio.run(run())
    assert got.done.finish_reason is FinishReason.CANCELLED and len(got.deltas) == 1
    assert got.done.messages[0].content[0].text == reasoning_pieces("medium")[0]  # type: ignore[union-attr]
    assert server.state.disconnected.wait(5)  # the server saw the request go away


def test_html_instead_of_json_is_not_an_openai_api(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM, faults=[Fault("html")])
    with pytest.raises(NotAnOpenAIApi, match=r"HTML page instead of an event stream.*ends in /v1"):
        run_answer(connect(server))

    web_page = provider(Flavor.VLLM, html_everywhere=True)

    async def check() -> list[CheckStatus]:
        client = RemoteClient(connect(web_page))
        try:
            with pytest.raises(NotAnOpenAIApi, match="not an OpenAI-compatible API"):
                await client.list_models()
            report = await client.check()
        finally:
            await client.aclose()
        assert "not an OpenAI-compatible API" in report.step("reachable").detail
        return [s.status for s in report.steps]

    assert asyncio.run(check()) == [CheckStatus.FAILED] + [CheckStatus.SKIPPED] * 5


def test_a_wrong_path_is_not_an_openai_api(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM)
    url = server.base_url.removesuffix("/v1")  # the classic mistake: no /v1
    with pytest.raises(NotAnOpenAIApi, match="HTML page"):
        run_answer(RemoteConnection(url, server.state.model, backoff_s=0.01))


def test_an_unknown_model_lists_the_ones_the_server_has(provider: StartProvider) -> None:
    server = provider(Flavor.GROQ)
    with pytest.raises(UnknownRemoteModel, match="no model 'gpt-oss-7b'; choose one it lists") as caught:
        run_answer(RemoteConnection(server.base_url, "gpt-oss-7b", backoff_s=0.01))
    assert caught.value.available == [server.state.model, "another-model"]


def test_an_error_event_before_any_text_raises(provider: StartProvider) -> None:
    server = provider(Flavor.OPENROUTER, faults=[Fault("error_event", message="upstream provider failed")])
    with pytest.raises(RemoteError, match="upstream provider failed"):
        run_answer(connect(server))


def test_an_error_event_mid_answer_ends_with_an_error_done_that_keeps_the_partial_answer(
    provider: StartProvider,
) -> None:
    server = provider(Flavor.OPENROUTER, faults=[Fault("error_event", after_chunks=2, message="provider overloaded")])
    got = run_answer(connect(server))
    assert got.done.finish_reason is FinishReason.ERROR and not is_connection_lost(got.done)
    assert got.done.error == "the server reported an error: provider overloaded"
    assert got.reasoning == "".join(reasoning_pieces("medium")[:2])
    server.state.faults.append(Fault("error_event", after_chunks=2, message="provider overloaded"))
    again = run_answer(connect(server), raise_on_drop=True)  # only a drop raises; the server's own error is a Done
    assert again.done.error == got.done.error


def test_nothing_listening_is_server_unavailable_after_the_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    notices: list[RetryNotice] = []
    with pytest.raises(ServerUnavailable, match=f"cannot reach http://127.0.0.1:{port}/v1"):
        run_answer(RemoteConnection(f"http://127.0.0.1:{port}/v1", "m", backoff_s=0.01, max_retries=2), notices)
    assert len(notices) == 2


def test_https_to_a_plain_http_server_is_a_tls_failure(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM)
    url = server.base_url.replace("http://", "https://")
    with pytest.raises(TLSFailure, match=r"secure connection to https://127\.0\.0\.1"):
        run_answer(RemoteConnection(url, server.state.model, backoff_s=0.01))
    assert server.state.arrivals == []  # never retried, never reached the API


def test_groq_refuses_reasoning_in_the_input_and_the_error_says_which_setting(provider: StartProvider) -> None:
    # A tool loop: this turn's reasoning goes back (harmony wants it) unless the connection says not to.
    loop = [
        ChatMessage.user("Weather in Paris?"),
        ChatMessage.analysis("I should call the weather tool."),
        ChatMessage.tool_call("functions.get_weather", '{"city": "Paris"}'),
        ChatMessage.tool_result("functions.get_weather", '{"temp": 21}'),
    ]
    server = provider(Flavor.GROQ)
    with pytest.raises(RemoteError, match="turn off 'send reasoning back'") as caught:
        run_answer(connect(server), messages=loop)
    assert caught.value.status == 400
    got = run_answer(connect(server, send_reasoning_back=False), messages=loop)
    assert got.text == "".join(ANSWER)
    assert not any("reasoning" in m for m in server.state.bodies[-1]["messages"])


def test_reasoning_goes_back_in_the_field_the_server_streams(provider: StartProvider) -> None:
    loop = [
        ChatMessage.user("Weather in Paris?"),
        ChatMessage.analysis("I should call the weather tool."),
        ChatMessage.tool_call("functions.get_weather", '{"city": "Paris"}'),
        ChatMessage.tool_result("functions.get_weather", '{"temp": 21}'),
    ]
    server = provider(Flavor.VLLM_OLD)

    async def run() -> list[dict[str, Any]]:
        client = RemoteClient(connect(server))
        try:
            await answer(client)  # learns that this server says reasoning_content
            await answer(client, loop)
        finally:
            await client.aclose()
        return server.state.bodies[-1]["messages"]  # type: ignore[no-any-return]

    sent = asyncio.run(run())
    assert sent[1] == {
        "role": "assistant",
        "reasoning_content": "I should call the weather tool.",
        "content": None,
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "call_0", "content": '{"temp": 21}'}


def test_finished_turns_reasoning_never_goes_back() -> None:
    history = [
        ChatMessage.user("Hi"),
        ChatMessage.analysis("greet back"),
        ChatMessage.final("Hello!"),
        ChatMessage.user("What is 2+2?"),
    ]
    assert openai_messages(history, "Be brief.", send_reasoning_back=True) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "What is 2+2?"},
    ]
