"""``/v1/responses`` on the demo model: output items, streamed events in order, and the SQLite-backed
``previous_response_id`` (across a server restart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gpt_oss_desktop.engine.server.runner import RunningServer
from tests.engine.server.conftest import StartServer, client_for


def test_a_response_has_reasoning_and_message_items_and_reasoning_usage(client: openai.OpenAI) -> None:
    response = client.responses.create(model="demo", input="What is 12 times 4?", temperature=0)
    assert response.status == "completed"
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "message"]
    reasoning = response.output[0]
    assert reasoning.content and reasoning.content[0].text  # type: ignore[union-attr]
    assert response.output_text and "<|" not in response.output_text
    usage = response.usage
    assert usage is not None and 0 < usage.output_tokens_details.reasoning_tokens < usage.output_tokens
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_streamed_events_come_in_order(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="demo", input="What is 12 times 4?", temperature=0, stream=True))
    types = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"

    reasoning_events = [t for t in types if "reasoning_text" in t]
    assert reasoning_events[-1] == "response.reasoning_text.done"
    assert set(reasoning_events[:-1]) == {"response.reasoning_text.delta"}
    text_events = [t for t in types if "output_text" in t]
    assert text_events[-1] == "response.output_text.done" and set(text_events[:-1]) == {"response.output_text.delta"}
    # item 0 (reasoning) opens, streams and closes before item 1 (the message) opens
    added = [i for i, t in enumerate(types) if t == "response.output_item.added"]
    done = [i for i, t in enumerate(types) if t == "response.output_item.done"]
    first_text = types.index("response.output_text.delta")
    last_reasoning = max(i for i, t in enumerate(types) if t == "response.reasoning_text.delta")
    assert added[0] < last_reasoning < done[0] < added[1] < first_text < done[1]
    assert types.count("response.content_part.added") == types.count("response.content_part.done") == 2
    final = events[-1].response  # type: ignore[union-attr]
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")  # type: ignore[union-attr]
    assert final.output_text == streamed
    whole = client.responses.create(model="demo", input="What is 12 times 4?", temperature=0)
    assert whole.output_text == streamed


def test_previous_response_id_continues_across_a_restart(
    demo_model: Any, start_server: StartServer, tmp_path: Path
) -> None:
    store = tmp_path / "kept.sqlite3"
    first_server = start_server(demo_model, store_path=store)
    first = client_for(first_server).responses.create(model="demo", input="What is 12 times 4?", temperature=0)
    alone = client_for(first_server).responses.create(model="demo", input="And 5 plus 5?", temperature=0)
    first_server.stop()

    second_server = start_server(demo_model, store_path=store)
    client = client_for(second_server)
    follow = client.responses.create(model="demo", input="And 5 plus 5?", previous_response_id=first.id, temperature=0)
    assert follow.previous_response_id == first.id
    # the earlier turn is in the prompt (its question and answer; its reasoning dropped after the final answer)
    assert follow.usage is not None and alone.usage is not None and first.usage is not None
    assert follow.usage.input_tokens > alone.usage.input_tokens
    assert client.responses.retrieve(first.id).output_text == first.output_text


def test_an_unknown_previous_response_is_a_clear_400(demo_server: RunningServer) -> None:
    body = {"model": "demo", "input": "hi", "previous_response_id": "resp_nope"}
    response = httpx.post(demo_server.base_url + "/responses", json=body, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "previous_response_id"


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    response = client.responses.create(model="demo", input="hi", store=False, max_output_tokens=3)
    assert response.status == "incomplete"
    try:
        client.responses.retrieve(response.id)
    except openai.NotFoundError:
        return
    raise AssertionError("a response created with store=false was stored")


@pytest.mark.parametrize("stream", [False, True])
def test_a_stored_response_reads_back_as_it_was_returned(client: openai.OpenAI, stream: bool) -> None:
    # Cut short by max_output_tokens: GET must say incomplete and why, not "completed".
    created = client.responses.create(
        model="demo", input="What is 12 times 4?", max_output_tokens=5, temperature=0, stream=stream
    )
    returned = list(created)[-1].response if stream else created  # type: ignore[union-attr, arg-type]
    assert returned.status == "incomplete"
    again = client.responses.retrieve(returned.id)
    assert again.status == "incomplete"
    assert again.incomplete_details is not None and again.incomplete_details.reason == "max_output_tokens"
    assert again.model_dump(exclude={"output"}) == returned.model_dump(exclude={"output"})
    assert [item.type for item in again.output] == [item.type for item in returned.output]


def test_a_thinking_token_budget_applies_to_responses_too(client: openai.OpenAI) -> None:
    ask: dict[str, Any] = {"model": "demo", "input": "What is 12 times 4?", "temperature": 0}
    free = client.responses.create(**ask, reasoning={"effort": "high"})
    cut = client.responses.create(**ask, reasoning={"effort": "high"}, extra_body={"thinking_token_budget": 4})
    assert free.usage is not None and cut.usage is not None
    assert cut.usage.output_tokens_details.reasoning_tokens == 4 + 4  # its header and <|end|> besides
    assert free.usage.output_tokens_details.reasoning_tokens > 20
    assert cut.status == "completed" and cut.output_text
