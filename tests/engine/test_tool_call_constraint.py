"""The must-call constraint (engine/tool_call_constraint.py): which tokens it allows where, checked against
openai_harmony's own parser, and its effect on generation with a model that would rather answer."""

from __future__ import annotations

import json

import pytest
import torch
from openai_harmony import Role

from gpt_oss_desktop.engine.events import Done, FinishReason, ToolCall
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.harmony import ChatMessage, ChatRole, FunctionTool, render_prompt
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply, model_written_tool_call
from gpt_oss_desktop.engine.tool_call_constraint import ToolCallConstraint, ToolCallRule
from gpt_oss_desktop.engine.vocab import CALL, CHANNEL, END, MESSAGE, RETURN, START, get_encoding

VOCAB = 201088
TOOLS = (FunctionTool("get_weather", "Weather in a city"), FunctionTool("get_time", "Time in a city"))


def _allowed(constraint: ToolCallConstraint) -> set[int]:
    masked = constraint.mask(torch.zeros(VOCAB))
    return set(torch.nonzero(masked > float("-inf")).flatten().tolist())


def _walk(constraint: ToolCallConstraint, tokens: list[int]) -> None:
    """Write ``tokens`` through the constraint, checking each one was allowed."""
    for i, token in enumerate(tokens):
        assert token in _allowed(constraint), f"token {i} ({get_encoding().decode([token])!r}) was masked"
        constraint.advance(token)


def test_thinking_then_a_call_passes_and_harmony_reads_the_call() -> None:
    enc = get_encoding()
    rule = ToolCallRule.for_functions(enc, ["get_weather", "get_time"])
    completion = model_written_tool_call("Look it up.", "get_time", '{"city": "Oslo"}')
    _walk(ToolCallConstraint(rule), completion)
    # An independent reading of what the constraint let through: harmony's parser sees one analysis message and
    # one call to functions.get_time.
    messages = enc.parse_messages_from_completion_tokens(completion, Role.ASSISTANT)
    assert [(m.channel, m.recipient) for m in messages] == [("analysis", None), ("commentary", "functions.get_time")]


def test_a_final_answer_is_masked_at_its_channel() -> None:
    enc = get_encoding()
    constraint = ToolCallConstraint(ToolCallRule.for_functions(enc, ["get_weather"]))
    reply = harmony_reply("Easy.", "It is sunny.")
    final_at = len(reply) - reply[::-1].index(CHANNEL)  # the token after the last <|channel|>: "final"
    _walk(constraint, reply[:final_at])
    allowed = _allowed(constraint)
    assert reply[final_at] not in allowed
    assert allowed == {enc.encode("commentary")[0]}  # after its analysis, only a call


def test_the_first_header_may_think_or_call() -> None:
    enc = get_encoding()
    constraint = ToolCallConstraint(ToolCallRule.for_functions(enc, ["get_weather"]))
    _walk(constraint, [CHANNEL])
    assert _allowed(constraint) == {enc.encode("analysis")[0], enc.encode("commentary")[0]}


def test_a_named_function_is_the_only_call_allowed() -> None:
    enc = get_encoding()
    constraint = ToolCallConstraint(ToolCallRule.for_functions(enc, ["get_time"]))
    weather = model_written_tool_call("x", "get_weather", "{}")
    header_end = len(weather) - 1 - weather[::-1].index(MESSAGE)
    with pytest.raises(AssertionError, match="was masked"):
        _walk(constraint, weather[:header_end])


@pytest.mark.parametrize(
    ("prefix_text", "banned", "free"),
    [
        ("analysis", {RETURN, CALL}, {END}),
        ("commentary to=functions.get_time <|constrain|>json", {RETURN, END}, {CALL}),
    ],
)
def test_each_kind_of_message_closes_only_its_own_way(prefix_text: str, banned: set[int], free: set[int]) -> None:
    enc = get_encoding()
    constraint = ToolCallConstraint(ToolCallRule.for_functions(enc, ["get_time"]))
    _walk(constraint, [CHANNEL, *enc.encode(prefix_text, allowed_special="all"), MESSAGE, *enc.encode("text")])
    allowed = _allowed(constraint)
    assert not banned & allowed and free <= allowed and len(allowed) == VOCAB - len(banned)


def test_after_an_analysis_message_the_next_header_is_held_too() -> None:
    enc = get_encoding()
    constraint = ToolCallConstraint(ToolCallRule.for_functions(enc, ["get_time"]))
    _walk(constraint, [CHANNEL, *enc.encode("analysis"), MESSAGE, *enc.encode("hm"), END])
    assert _allowed(constraint) == {START}
    constraint.advance(START)
    assert _allowed(constraint) == set(enc.encode("assistant"))
    constraint.advance(enc.encode("assistant")[0])
    assert _allowed(constraint) == {CHANNEL}  # no recipient before the channel: the call's form is the model's own
    constraint.advance(CHANNEL)
    assert _allowed(constraint) == {enc.encode("commentary")[0]}  # it has thought once: now it calls


def test_mask_leaves_the_callers_logits_alone() -> None:
    logits = torch.arange(VOCAB, dtype=torch.float32)
    before = logits.clone()
    constraint = ToolCallConstraint(ToolCallRule.for_functions(get_encoding(), ["get_time"]))
    masked = constraint.mask(logits)
    assert torch.equal(logits, before) and masked[CHANNEL] == CHANNEL and int(torch.argmax(masked)) == CHANNEL


def test_a_rule_without_a_call_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one function"):
        ToolCallRule.for_functions(get_encoding(), [])
    with pytest.raises(ValueError, match="must allow at least one call"):
        ToolCallRule((1,), ((MESSAGE,),), (False,))
    with pytest.raises(ValueError, match="ToolCallRule"):
        SamplingParams(must_call="get_time")  # type: ignore[arg-type]


def _prompt() -> list[int]:
    question = [ChatMessage(ChatRole.USER, "What time is it in Oslo?")]
    return render_prompt(question, tools=TOOLS, current_date=None)


def _events(model: ScriptedModel, params: SamplingParams) -> list[object]:
    return list(Generator(model).stream(_prompt(), params))


def test_a_model_that_would_answer_calls_the_function_when_it_must() -> None:
    enc = get_encoding()
    arguments = json.dumps({"city": "Oslo"})

    def model() -> ScriptedModel:
        return ScriptedModel.preferring(
            harmony_reply("I know this.", "It is noon."), model_written_tool_call("I know this.", "get_time", arguments)
        )

    free = _events(model(), SamplingParams(temperature=0, max_tokens=200))
    assert not [e for e in free if isinstance(e, ToolCall)]  # left alone, it answers
    assert isinstance(free[-1], Done) and free[-1].final_tokens > 0

    rule = ToolCallRule.for_functions(enc, ["get_weather", "get_time"])
    held = _events(model(), SamplingParams(temperature=0, max_tokens=200, must_call=rule))
    calls = [e for e in held if isinstance(e, ToolCall)]
    assert [(c.name, c.arguments) for c in calls] == [("get_time", arguments)]
    done = held[-1]
    assert isinstance(done, Done) and done.finish_reason is FinishReason.STOP and done.final_tokens == 0
    assert done.completion_ids[-1] == CALL


def test_sampling_with_temperature_stays_inside_the_rule() -> None:
    # Random draws over a model that spreads its mass: whatever is drawn, the headers are the rule's.
    enc = get_encoding()
    rule = ToolCallRule.for_functions(enc, ["get_time"])
    model = ScriptedModel.preferring(harmony_reply("a", "b"), model_written_tool_call("a", "get_time", "{}"))
    events = _events(model, SamplingParams(temperature=5.0, seed=7, max_tokens=40, must_call=rule))
    done = events[-1]
    assert isinstance(done, Done)
    completion = list(done.completion_ids)
    assert RETURN not in completion and enc.encode("final")[0] not in completion
    first_header = completion[: completion.index(MESSAGE) + 1]
    assert first_header in [[CHANNEL, *tail] for tail in rule.channels]
