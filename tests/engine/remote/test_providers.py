"""The remote client against each provider's wire format (tests/helpers/provider_server.py), over loopback: reasoning
from whichever field the provider uses (or raw harmony in ``content``), the answer, the effort sent where the provider
reads it, and counts from the provider's usage or estimated here."""

from __future__ import annotations

import asyncio

import pytest

from gpt_oss_desktop.engine.events import FinishReason
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.remote.answer import RAW_HARMONY
from gpt_oss_desktop.engine.remote.client import RemoteClient
from gpt_oss_desktop.engine.remote.connection import ReasoningStyle
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.engine.remote.conftest import Answer, StartProvider, answer, connect
from tests.helpers.provider_server import (
    ANSWER,
    PROMPT_TOKENS,
    REASONING_FIELD,
    REPORTS_REASONING_TOKENS,
    Flavor,
    ProviderServer,
    count_tokens,
    reasoning_pieces,
)

STYLE = {Flavor.OPENROUTER: ReasoningStyle.REASONING_OBJECT}


def ask(server: ProviderServer, effort: ReasoningEffort = ReasoningEffort.MEDIUM, **options: object) -> Answer:
    async def run() -> Answer:
        client = RemoteClient(connect(server, reasoning_style=STYLE.get(server.state.flavor, "reasoning_effort")))
        try:
            return await answer(client, effort=effort, **options)  # type: ignore[arg-type]
        finally:
            await client.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("flavor", list(Flavor))
def test_reasoning_and_answer_come_apart_for_every_provider(provider: StartProvider, flavor: Flavor) -> None:
    server = provider(flavor)
    got = ask(server)
    assert got.reasoning == "".join(reasoning_pieces("medium"))
    assert got.text == "".join(ANSWER)
    assert "<|" not in got.reasoning + got.text
    done = got.done
    assert done.finish_reason is FinishReason.STOP and done.error is None
    # The history keeps both, as harmony messages (the chat session stores them with from_harmony).
    assert [m.channel for m in done.messages] == ["analysis", "final"]
    assert done.messages[-1].content[0].text == "".join(ANSWER)  # type: ignore[union-attr]
    assert done.time_to_first_token is not None and done.time_to_first_final_token is not None
    assert 0 < done.time_to_first_token < done.time_to_first_final_token
    assert done.decode_tokens_per_s > 0


@pytest.mark.parametrize("flavor", [f for f in Flavor if f is not Flavor.HARMONY])
def test_counts_come_from_usage_and_are_marked_when_estimated(provider: StartProvider, flavor: Flavor) -> None:
    server = provider(flavor)
    server.state.completion_bonus = 5  # the server's count differs from ours (its tokenisation, header tokens)
    done = ask(server).done
    thoughts = count_tokens("".join(reasoning_pieces("medium")))
    completion = thoughts + count_tokens("".join(ANSWER)) + 5
    assert done.prompt_tokens == PROMPT_TOKENS  # from usage (Groq: x_groq.usage; llama.cpp: unasked)
    assert done.completion_tokens == completion  # the server's count, always
    if flavor in REPORTS_REASONING_TOKENS:
        assert done.reasoning_tokens == thoughts + 5 and not done.counts_estimated  # the server's count
    else:
        assert done.reasoning_tokens == thoughts and done.counts_estimated  # counted here, with o200k
    assert done.final_tokens == completion - done.reasoning_tokens


def test_raw_harmony_in_content_is_split_with_openai_harmony(provider: StartProvider) -> None:
    # The stand-in cuts the text every 7 characters, so special tokens arrive split ("<|chann" + "el|>…").
    server = provider(Flavor.HARMONY)
    got = ask(server)
    assert got.done.malformed is None
    # usage has no reasoning_tokens: counted here on the whole reasoning text (not chunk by chunk)
    assert got.done.reasoning_tokens == count_tokens("".join(reasoning_pieces("medium")))
    assert got.done.counts_estimated


def test_a_salvaged_harmony_header_keeps_the_answer(provider: StartProvider) -> None:
    from gpt_oss_desktop.engine.remote.harmony_content import HarmonyContentSplitter

    splitter = HarmonyContentSplitter(get_encoding())
    # "assistantassistant" and a header missing its <|channel|>: real model output the local parser salvages
    text = "<|channel|>analysis<|message|>think<|end|><|start|>assistantassistant<|channel|>final<|message|>Hi there"
    deltas = [d for i in range(0, len(text), 5) for d in splitter.feed(text[i : i + 5])] + splitter.finish()
    assert "".join(d.text for d in deltas if d.is_reasoning) == "think"
    assert "".join(d.text for d in deltas if d.is_final) == "Hi there"
    assert splitter.malformed


@pytest.mark.parametrize("flavor", [Flavor.VLLM, Flavor.OPENROUTER, Flavor.OLLAMA, Flavor.HARMONY])
def test_the_effort_is_sent_where_the_provider_reads_it(provider: StartProvider, flavor: Flavor) -> None:
    server = provider(flavor)
    low, high = ask(server, ReasoningEffort.LOW), ask(server, ReasoningEffort.HIGH)
    assert len(high.reasoning) > len(low.reasoning) > 0
    body = server.state.bodies[-1]
    if flavor is Flavor.OPENROUTER:
        assert body["reasoning"] == {"effort": "high"} and "reasoning_effort" not in body
    else:
        assert body["reasoning_effort"] == "high" and "reasoning" not in body


def test_openrouter_ignores_the_top_level_effort_so_check_says_so(provider: StartProvider) -> None:
    server = provider(Flavor.OPENROUTER)

    async def run() -> list[str]:
        client = RemoteClient(connect(server))  # the wrong style for OpenRouter
        try:
            report = await client.check()
        finally:
            await client.aclose()
        assert not report.step("effort honoured").ok and report.step("streaming").ok
        return report.lines()

    lines = asyncio.run(run())
    assert "ignore the effort" in lines[-1]


def test_request_body_carries_the_sampling_parameters_and_asks_for_usage(provider: StartProvider) -> None:
    server = provider(Flavor.VLLM)
    ask(server, params=SamplingParams(temperature=0.3, top_p=0.9, top_k=40, seed=7, max_tokens=100))
    body = server.state.bodies[-1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["top_k"], body["seed"], body["max_tokens"]) == (
        0.3,
        0.9,
        40,
        7,
        100,
    )
    assert body["model"] == server.state.model and body["messages"][-1]["role"] == "user"


def test_max_tokens_ends_with_length_and_keeps_the_reasoning(provider: StartProvider) -> None:
    server = provider(Flavor.SGLANG)
    got = ask(server, params=SamplingParams(max_tokens=5))
    assert got.done.finish_reason is FinishReason.LENGTH
    assert got.reasoning == "".join(reasoning_pieces("medium")[:5]) and got.text == ""


@pytest.mark.parametrize("flavor", [Flavor.VLLM_OLD, Flavor.VLLM, Flavor.HARMONY])
def test_check_names_the_reasoning_field(provider: StartProvider, flavor: Flavor) -> None:
    server = provider(flavor)

    async def run() -> None:
        client = RemoteClient(connect(server))
        try:
            report = await client.check()
        finally:
            await client.aclose()
        assert report.ok, report.lines()
        assert report.reasoning_field == (REASONING_FIELD[flavor] or RAW_HARMONY)
        assert report.models == (server.state.model, "another-model")

    asyncio.run(run())
