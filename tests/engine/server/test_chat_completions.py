"""``/v1/chat/completions`` on the demo model, driven by the official ``openai`` SDK over loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from gpt_oss_desktop.engine.server.runner import RunningServer
from tests.engine.server.conftest import StartServer, client_for

QUESTION = [{"role": "user", "content": "What is 12 times 4?"}]


def extra(obj: Any, name: str) -> Any:
    """A field the SDK's types do not declare (``reasoning``, ``reasoning_content``, ``timings``)."""
    return (obj.model_extra or {}).get(name)


def test_models_lists_the_served_model(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models] == ["demo"]
    assert client.models.retrieve("demo").id == "demo"


def test_answer_and_reasoning_come_apart_with_both_field_names_and_honest_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="demo", messages=QUESTION, temperature=0)
    message = reply.choices[0].message
    reasoning = extra(message, "reasoning")
    assert reasoning and extra(message, "reasoning_content") == reasoning
    assert message.content and "<|" not in message.content and "<|" not in reasoning
    assert reasoning not in message.content  # the chain of thought never leaks into the answer
    assert reply.choices[0].finish_reason == "stop"
    usage = reply.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert 0 < usage.completion_tokens_details.reasoning_tokens < usage.completion_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens is not None
    assert extra(reply, "timings")["time_to_first_token_s"] > 0


def test_a_stream_carries_the_same_answer_then_usage_then_done(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="demo", messages=QUESTION, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model="demo", messages=QUESTION, temperature=0, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    reasoning = "".join(extra(c.choices[0].delta, "reasoning") or "" for c in chunks if c.choices)
    mirrored = "".join(extra(c.choices[0].delta, "reasoning_content") or "" for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reasoning == mirrored == extra(whole.choices[0].message, "reasoning")
    assert content == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]
    assert all(c.usage is None for c in chunks[:-1])


def test_sse_framing_is_exactly_openais(demo_server: RunningServer) -> None:
    body = {"model": "demo", "messages": QUESTION, "stream": True, "max_tokens": 5}
    with httpx.stream("POST", f"{demo_server.base_url}/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for event in events[:-2]:
        assert event.startswith("data: ") and "\n" not in event
        assert json.loads(event[len("data: ") :])["object"] == "chat.completion.chunk"


def test_the_mirror_can_be_turned_off(demo_model: Any, start_server: StartServer) -> None:
    server = start_server(demo_model, mirror_reasoning_content=False)
    reply = client_for(server).chat.completions.create(model="demo", messages=QUESTION, temperature=0)
    assert extra(reply.choices[0].message, "reasoning")
    assert "reasoning_content" not in (reply.choices[0].message.model_extra or {})


@pytest.mark.parametrize("form", ["reasoning_effort", "reasoning"])
def test_the_demos_reasoning_grows_with_effort_in_either_form(client: openai.OpenAI, form: str) -> None:
    def reasoning_tokens(effort: str) -> int:
        options: dict[str, Any] = (
            {"reasoning_effort": effort}
            if form == "reasoning_effort"
            else {"extra_body": {"reasoning": {"effort": effort}}}
        )
        reply = client.chat.completions.create(model="demo", messages=QUESTION, temperature=0, **options)
        assert reply.usage is not None and reply.usage.completion_tokens_details is not None
        return reply.usage.completion_tokens_details.reasoning_tokens or 0

    low, medium, high = (reasoning_tokens(e) for e in ("low", "medium", "high"))
    assert low < medium < high


def test_max_tokens_ends_with_length(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="demo", messages=QUESTION, max_completion_tokens=4)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 4


def test_a_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    def ask() -> str:
        reply = client.chat.completions.create(model="demo", messages=QUESTION, temperature=1.0, seed=1234)
        return f"{extra(reply.choices[0].message, 'reasoning')}|{reply.choices[0].message.content}"

    assert ask() == ask()


def test_a_stop_sequence_cuts_the_answer_before_it(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="demo", messages=QUESTION, temperature=0)
    answer = whole.choices[0].message.content or ""
    assert len(answer) > 3
    stop = answer[2:4]
    cut = client.chat.completions.create(model="demo", messages=QUESTION, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == answer[: answer.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(model="demo", messages=QUESTION, temperature=0, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == answer[: answer.index(stop)]


def test_the_next_turn_reuses_the_cached_prefix(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="demo", messages=QUESTION, temperature=0)
    message = first.choices[0].message
    turn = [
        *QUESTION,
        {"role": "assistant", "content": message.content, "reasoning": extra(message, "reasoning")},
        {"role": "user", "content": "And 5 plus 5?"},
    ]
    second = client.chat.completions.create(model="demo", messages=turn, temperature=0)
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    assert (second.usage.prompt_tokens_details.cached_tokens or 0) > 0


def test_a_malformed_harmony_header_is_salvaged_not_a_failed_turn(start_server: StartServer) -> None:
    from gpt_oss_desktop.engine.scripted_model import ScriptedModel
    from gpt_oss_desktop.engine.vocab import CHANNEL, END, MESSAGE, RETURN, START, get_encoding

    enc = get_encoding()
    # The role doubled in the second header ("assistantassistant"), which openai-harmony's strict parser rejects.
    broken = [
        CHANNEL, *enc.encode("analysis"), MESSAGE, *enc.encode("Add them."), END,
        START, *enc.encode("assistantassistant"), CHANNEL, *enc.encode("final"), MESSAGE, *enc.encode("5"), RETURN,
    ]  # fmt: skip
    client = client_for(start_server(ScriptedModel([broken])))
    reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "2+3?"}])
    assert reply.choices[0].message.content == "5"
    assert extra(reply.choices[0].message, "reasoning") == "Add them."
    assert reply.choices[0].finish_reason == "stop"


def test_a_thinking_token_budget_cuts_the_reasoning_and_the_answer_still_comes(client: openai.OpenAI) -> None:
    def reply(**budget: Any) -> Any:
        return client.chat.completions.create(
            model="demo", messages=QUESTION, temperature=0, reasoning_effort="high", extra_body=budget
        )

    def reasoning_tokens(answer: Any) -> int:
        return answer.usage.completion_tokens_details.reasoning_tokens or 0

    free = reply()
    cut = reply(thinking_token_budget=6)
    assert reasoning_tokens(free) > 20
    # Six tokens of thinking, plus its header and closing (<|channel|>analysis<|message|> ... <|end|>).
    assert reasoning_tokens(cut) == 6 + 4
    assert cut.choices[0].finish_reason == "stop" and cut.choices[0].message.content
    thought = extra(cut.choices[0].message, "reasoning")
    assert thought and extra(free.choices[0].message, "reasoning").startswith(thought)
    skipped = reply(thinking_token_budget=0)
    assert reasoning_tokens(skipped) == 0 and skipped.choices[0].message.content


def test_a_negative_thinking_token_budget_is_a_clear_400(demo_server: RunningServer) -> None:
    body = {"model": "demo", "messages": QUESTION, "thinking_token_budget": -5}
    response = httpx.post(demo_server.base_url + "/chat/completions", json=body, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["param"] == "thinking_token_budget"
