"""The channel guard (engine/channel_guard.py): which tokens a must-call request and a reasoning budget allow
where, checked against openai_harmony's own parser, and their effect on generation with scripted models that would
rather answer, or think longer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from openai_harmony import Role

from gpt_oss_desktop import engine
from gpt_oss_desktop.engine.channel_guard import ChannelGuard, ToolCallRule
from gpt_oss_desktop.engine.events import Done, FinishReason, ToolCall
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.harmony import ChatMessage, ChatRole, FunctionTool, render_prompt
from gpt_oss_desktop.engine.json_schema import CallSchemas
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.scripted_model import (
    ScriptedModel,
    harmony_reply,
    harmony_tool_call,
    model_written_tool_call,
)
from gpt_oss_desktop.engine.vocab import CALL, CHANNEL, END, MESSAGE, RETURN, START, get_encoding

VOCAB = 201088
TOOLS = (FunctionTool("get_weather", "Weather in a city"), FunctionTool("get_time", "Time in a city"))


def _allowed(constraint: ChannelGuard) -> set[int]:
    masked = constraint.mask(torch.zeros(VOCAB))
    return set(torch.nonzero(masked > float("-inf")).flatten().tolist())


def _walk(constraint: ChannelGuard, tokens: list[int]) -> None:
    """Write ``tokens`` through the constraint, checking each one was allowed."""
    for i, token in enumerate(tokens):
        assert token in _allowed(constraint), f"token {i} ({get_encoding().decode([token])!r}) was masked"
        constraint.advance(token)


def test_thinking_then_a_call_passes_and_harmony_reads_the_call() -> None:
    enc = get_encoding()
    rule = ToolCallRule.for_functions(enc, ["get_weather", "get_time"])
    completion = model_written_tool_call("Look it up.", "get_time", '{"city": "Oslo"}')
    _walk(ChannelGuard(must_call=rule), completion)
    # An independent reading of what the constraint let through: harmony's parser sees one analysis message and
    # one call to functions.get_time.
    messages = enc.parse_messages_from_completion_tokens(completion, Role.ASSISTANT)
    assert [(m.channel, m.recipient) for m in messages] == [("analysis", None), ("commentary", "functions.get_time")]


def test_a_final_answer_is_masked_at_its_channel() -> None:
    enc = get_encoding()
    constraint = ChannelGuard(must_call=ToolCallRule.for_functions(enc, ["get_weather"]))
    reply = harmony_reply("Easy.", "It is sunny.")
    final_at = len(reply) - reply[::-1].index(CHANNEL)  # the token after the last <|channel|>: "final"
    _walk(constraint, reply[:final_at])
    allowed = _allowed(constraint)
    assert reply[final_at] not in allowed
    assert allowed == {enc.encode("commentary")[0]}  # after its analysis, only a call


def test_the_first_header_may_think_or_call() -> None:
    enc = get_encoding()
    constraint = ChannelGuard(must_call=ToolCallRule.for_functions(enc, ["get_weather"]))
    _walk(constraint, [CHANNEL])
    assert _allowed(constraint) == {enc.encode("analysis")[0], enc.encode("commentary")[0]}


def test_a_named_function_is_the_only_call_allowed() -> None:
    enc = get_encoding()
    constraint = ChannelGuard(must_call=ToolCallRule.for_functions(enc, ["get_time"]))
    weather = model_written_tool_call("x", "get_weather", "{}")
    header_end = len(weather) - 1 - weather[::-1].index(MESSAGE)
    with pytest.raises(AssertionError, match="was masked"):
        _walk(constraint, weather[:header_end])


def test_an_analysis_message_under_must_call_closes_only_with_end() -> None:
    enc = get_encoding()
    constraint = ChannelGuard(must_call=ToolCallRule.for_functions(enc, ["get_time"]))
    _walk(constraint, [CHANNEL, *enc.encode("analysis"), MESSAGE, *enc.encode("text")])
    allowed = _allowed(constraint)
    assert RETURN not in allowed and CALL not in allowed and END in allowed and len(allowed) == VOCAB - 2


def test_a_calls_arguments_are_held_to_a_json_object_then_the_call_ends() -> None:
    enc = get_encoding()
    constraint = ChannelGuard(must_call=ToolCallRule.for_functions(enc, ["get_time"]))
    header = enc.encode("commentary to=functions.get_time <|constrain|>json", allowed_special="all")
    _walk(constraint, [CHANNEL, *header, MESSAGE])
    start = _allowed(constraint)
    assert enc.encode("{")[0] in start and not {END, RETURN, CALL, *enc.encode("text")} & start
    _walk(constraint, enc.encode('{"city": "Oslo'))
    inside = _allowed(constraint)
    assert enc.encode(" and more")[0] in inside and CALL not in inside and END not in inside
    _walk(constraint, enc.encode('"}'))
    done = _allowed(constraint)
    assert CALL in done and not {END, RETURN} & done and enc.encode("{")[0] not in done
    assert all(get_encoding().decode([t]).isspace() for t in done - {CALL})  # whitespace at most, then the end


def test_after_an_analysis_message_the_next_header_is_held_too() -> None:
    enc = get_encoding()
    constraint = ChannelGuard(must_call=ToolCallRule.for_functions(enc, ["get_time"]))
    _walk(constraint, [CHANNEL, *enc.encode("analysis"), MESSAGE, *enc.encode("hm"), END])
    assert _allowed(constraint) == {START}
    constraint.advance(START)
    assert _allowed(constraint) == set(enc.encode("assistant"))
    constraint.advance(enc.encode("assistant")[0])
    # The channel (then the recipient, as gpt-oss writes a call) or the recipient first (as harmony renders one).
    assert _allowed(constraint) == {CHANNEL, enc.encode(" to")[0]}
    constraint.advance(CHANNEL)
    assert _allowed(constraint) == {enc.encode("commentary")[0]}  # it has thought once: now it calls


def test_a_call_with_its_recipient_before_the_channel_passes_too() -> None:
    # The form harmony renders a call in (harmony_tool_call), which models trained on rendered chats write.
    enc = get_encoding()
    completion = harmony_tool_call("Look it up.", "functions.get_time", '{"city": "Oslo"}')
    _walk(ChannelGuard(must_call=ToolCallRule.for_functions(enc, ["get_weather", "get_time"])), completion)
    with pytest.raises(AssertionError, match="was masked"):
        _walk(ChannelGuard(must_call=ToolCallRule.for_functions(enc, ["get_weather"])), completion)


def test_mask_leaves_the_callers_logits_alone() -> None:
    logits = torch.arange(VOCAB, dtype=torch.float32)
    before = logits.clone()
    constraint = ChannelGuard(must_call=ToolCallRule.for_functions(get_encoding(), ["get_time"]))
    masked = constraint.mask(logits)
    assert torch.equal(logits, before) and masked[CHANNEL] == CHANNEL and int(torch.argmax(masked)) == CHANNEL


def test_a_rule_without_a_call_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one function"):
        ToolCallRule.for_functions(get_encoding(), [])
    with pytest.raises(ValueError, match="must allow at least one call"):
        ToolCallRule(())
    with pytest.raises(ValueError, match=re.escape("end with <|message|>")):
        ToolCallRule(((CHANNEL, 2),))
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
    analysis = [CHANNEL, *enc.encode("analysis"), MESSAGE]
    assert first_header in [analysis, *(list(header) for header in rule.headers)]


# -- the reasoning budget ---------------------------------------------------------------------------------------


def _reply_tokens(thought: list[int], answer: str) -> list[int]:
    """A reply as token ids, from the thought's own tokens (so a shorter thought is an exact prefix of a longer)."""
    enc = get_encoding()
    return [
        CHANNEL, *enc.encode("analysis"), MESSAGE, *thought, END,
        START, *enc.encode("assistant"), CHANNEL, *enc.encode("final"), MESSAGE, *enc.encode(answer), RETURN,
    ]  # fmt: skip


LONG_THOUGHT = get_encoding().encode(" ".join(["Let me consider this carefully once more."] * 6))


def _thinker() -> ScriptedModel:
    """Would think LONG_THOUGHT through, and answers after any prefix of it if it must."""
    scripts = [_reply_tokens(LONG_THOUGHT, "Forty-two.")]
    scripts += [_reply_tokens(LONG_THOUGHT[:n], "Forty-two.") for n in range(len(LONG_THOUGHT))]
    return ScriptedModel.preferring(*scripts)


def _done(model: ScriptedModel, **params: object) -> Done:
    done = _events(model, SamplingParams(temperature=0, max_tokens=300, **params))[-1]  # type: ignore[arg-type]
    assert isinstance(done, Done)
    return done


def test_a_budget_cuts_the_thinking_and_the_model_answers() -> None:
    enc = get_encoding()
    free = _done(_thinker())
    assert free.reasoning_tokens > len(LONG_THOUGHT) > 20 and not free.reasoning_cut
    cut = _done(_thinker(), reasoning_budget=20)
    completion = list(cut.completion_ids)
    messages = enc.parse_messages_from_completion_tokens(completion, Role.ASSISTANT)
    assert [m.channel for m in messages] == ["analysis", "final"]
    assert enc.encode(messages[0].content[0].text) == LONG_THOUGHT[:20]  # type: ignore[union-attr]
    assert messages[1].content[0].text == "Forty-two."  # type: ignore[union-attr]
    assert cut.reasoning_cut and cut.finish_reason is FinishReason.STOP and cut.final_tokens > 0


def test_a_budget_the_model_stays_under_changes_nothing() -> None:
    free = _done(_thinker())
    roomy = _done(_thinker(), reasoning_budget=len(LONG_THOUGHT) + 1)
    assert roomy.completion_ids == free.completion_ids and not roomy.reasoning_cut
    guard = ChannelGuard(reasoning_budget=1000)
    logits = torch.zeros(VOCAB)
    assert guard.mask(logits) is logits  # nothing to hold: the logits pass through untouched, not copied


def test_a_budget_of_zero_skips_thinking() -> None:
    enc = get_encoding()
    answer_now = [CHANNEL, *enc.encode("final"), MESSAGE, *enc.encode("Forty-two."), RETURN]
    model = ScriptedModel.preferring(_reply_tokens(LONG_THOUGHT, "Forty-two."), answer_now)
    done = _done(model, reasoning_budget=0)
    assert list(done.completion_ids) == answer_now
    assert done.reasoning_tokens == 0 and done.reasoning_cut


def test_after_the_budget_a_header_may_answer_or_comment_but_not_think() -> None:
    enc = get_encoding()
    guard = ChannelGuard(reasoning_budget=2)
    _walk(guard, [CHANNEL, *enc.encode("analysis"), MESSAGE, *enc.encode("ab cd")[:2]])
    assert _allowed(guard) == {END}
    _walk(guard, [END, START, *enc.encode("assistant")])
    assert _allowed(guard) == {CHANNEL, enc.encode(" to")[0]}  # a channel, or a recipient first
    _walk(guard, [CHANNEL])
    assert _allowed(guard) == {enc.encode("final")[0], enc.encode("commentary")[0]}
    # After "commentary": a preamble's <|message|>, or a recipient (a call of the model's choosing, which it
    # finishes itself); not <|constrain|> straight away, a header that names no recipient (malformed).
    _walk(guard, [*enc.encode("commentary")])
    assert _allowed(guard) == {MESSAGE, enc.encode(" to")[0]}
    _walk(guard, [*enc.encode(" to=functions.get_time")])
    assert len(_allowed(guard)) == VOCAB
    # A call it chose after thinking was cut, recipient first, is its own too; its body is not analysis.
    cut = ChannelGuard(reasoning_budget=0)
    json_type = enc.encode("commentary <|constrain|>json", allowed_special="all")
    header = [*enc.encode(" to=functions.get_time"), CHANNEL, *json_type, MESSAGE]
    _walk(cut, [*header, *enc.encode('{"city": "Oslo"}')])
    assert len(_allowed(cut)) == VOCAB and cut.analysis_tokens == 0 and cut.reasoning_cut


def test_a_budget_and_a_must_call_together_end_in_a_call() -> None:
    enc = get_encoding()
    rule = ToolCallRule.for_functions(enc, ["get_time"])
    call = model_written_tool_call("x", "get_time", "{}")
    call_header_at = call.index(END) + 1  # <|start|>assistant<|channel|>commentary to=functions.get_time ...
    scripts = [_reply_tokens(LONG_THOUGHT, "Noon.")]
    scripts += [[*_reply_tokens(LONG_THOUGHT[:n], "")[: n + 4], *call[call_header_at:]] for n in range(30)]
    done = _done(ScriptedModel.preferring(*scripts), reasoning_budget=10, must_call=rule)
    messages = enc.parse_messages_from_completion_tokens(list(done.completion_ids), Role.ASSISTANT)
    assert [(m.channel, m.recipient) for m in messages] == [("analysis", None), ("commentary", "functions.get_time")]
    assert done.reasoning_cut and done.completion_ids[-1] == CALL


def test_a_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="reasoning_budget"):
        SamplingParams(reasoning_budget=-1)


def test_the_demo_model_answers_a_sum_itself_but_calls_the_clock_when_it_must(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real demo model (trained on harmony, tool calls included), not a scripted one: asked a sum with a clock
    # tool at hand it answers itself; held to a call, its next message after thinking is a whole call, JSON and all.
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    enc = get_encoding()
    clock = FunctionTool("get_current_time", "Current time in a timezone", {"type": "object"})
    prompt = render_prompt([ChatMessage(ChatRole.USER, "What is 17 + 25?")], tools=(clock,), current_date=None)
    generator = Generator(engine.load_model("demo"))

    def answer(**rule: Any) -> Done:
        done = list(generator.stream(prompt, SamplingParams(temperature=0, max_tokens=200, **rule)))[-1]
        assert isinstance(done, Done)
        return done

    free = answer()
    assert [m.channel for m in free.messages] == ["analysis", "final"]
    held = answer(must_call=ToolCallRule.for_functions(enc, ["get_current_time"]))
    assert held.finish_reason is FinishReason.STOP and held.completion_ids[-1] == CALL
    call = held.messages[-1]
    assert call.recipient == "functions.get_current_time" and held.final_tokens == 0
    assert isinstance(json.loads(call.content[0].text), dict)  # type: ignore[union-attr]


# -- JSON arguments -----------------------------------------------------------------------------------------------


def test_json_calls_hold_a_calls_arguments_to_json_the_model_would_have_broken() -> None:
    sloppy = model_written_tool_call("Look it up.", "get_time", '{"city": Oslo}')  # what it would write
    careful = model_written_tool_call("Look it up.", "get_time", '{"city": "Oslo"}')  # its second choice
    free = _events(ScriptedModel.preferring(sloppy, careful), SamplingParams(temperature=0, max_tokens=200))
    held = _events(
        ScriptedModel.preferring(sloppy, careful), SamplingParams(temperature=0, max_tokens=200, json_calls=True)
    )
    assert [(c.name, c.arguments) for c in free if isinstance(c, ToolCall)] == [("get_time", '{"city": Oslo}')]
    assert [(c.name, json.loads(c.arguments)) for c in held if isinstance(c, ToolCall)] == [
        ("get_time", {"city": "Oslo"})
    ]


def test_json_calls_leave_everything_but_json_arguments_alone() -> None:
    enc = get_encoding()
    guard = ChannelGuard(json_calls=True)
    logits = torch.zeros(VOCAB)
    _walk(guard, [CHANNEL, *enc.encode("analysis"), MESSAGE, *enc.encode("Some thought {not json")])
    assert guard.mask(logits) is logits  # reasoning is free text
    # A final answer marked JSON (structured output) is no call: free, and it may end as answers do.
    _walk(guard, [END, START, *enc.encode("assistant"), CHANNEL])
    _walk(guard, [*enc.encode("final <|constrain|>json", allowed_special="all"), MESSAGE, *enc.encode("{")])
    assert guard.mask(logits) is logits
    # A call whose header says code, not JSON (the python tool's): free too.
    python = ChannelGuard(json_calls=True)
    _walk(python, [*enc.encode(" to=python"), CHANNEL, *enc.encode("commentary code"), MESSAGE, *enc.encode("x=1")])
    assert python.mask(logits) is logits


# -- arguments held to the function's schema ----------------------------------------------------------------------

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
    },
    "required": ["city"],
}
SCHEMA_TOOLS = (FunctionTool("get_weather", "Weather in a city", WEATHER_SCHEMA), FunctionTool("get_time", "Time"))


def _held_call(arguments: str, fallback: str, *, schemas: bool, recipient_first: bool = False) -> str:
    """The arguments of the call a model makes when it would write ``arguments`` and its next choice is
    ``fallback``, held to JSON, and with ``schemas`` to the offered functions' schemas too."""
    if recipient_first:
        scripts = [harmony_tool_call("Look it up.", "functions.get_weather", text) for text in (arguments, fallback)]
    else:
        scripts = [model_written_tool_call("Look it up.", "get_weather", text) for text in (arguments, fallback)]
    params = SamplingParams(
        temperature=0,
        max_tokens=200,
        json_calls=True,
        call_schemas=CallSchemas.for_functions(SCHEMA_TOOLS) if schemas else None,
    )
    prompt = render_prompt([ChatMessage(ChatRole.USER, "Weather in Oslo?")], tools=SCHEMA_TOOLS, current_date=None)
    events = list(Generator(ScriptedModel.preferring(*scripts)).stream(prompt, params))
    calls = [event for event in events if isinstance(event, ToolCall)]
    assert len(calls) == 1 and calls[0].name == "get_weather", events
    return calls[0].arguments


@pytest.mark.parametrize(
    ("wrong", "right", "why"),
    [
        ('{"city": "Oslo", "units": "celsius"}', '{"city": "Oslo", "unit": "celsius"}', "a key it does not take"),
        ('{"city": "Oslo", "unit": "kelvin"}', '{"city": "Oslo", "unit": "fahrenheit"}', "a unit outside the enum"),
        ('{"city": "Oslo", "days": 2.5}', '{"city": "Oslo", "days": 2}', "a fraction for an integer"),
        ('{"unit": "celsius"}', '{"unit": "celsius", "city": "Oslo"}', "the required city left out"),
    ],
)
def test_call_schemas_hold_arguments_to_what_the_function_takes(wrong: str, right: str, why: str) -> None:
    assert _held_call(wrong, right, schemas=False) == wrong  # JSON only: the wrong call passes as written
    assert json.loads(_held_call(wrong, right, schemas=True)) == json.loads(right), why
    assert json.loads(_held_call(wrong, right, schemas=True, recipient_first=True)) == json.loads(right), why


def test_a_call_the_schema_accepts_is_written_as_the_model_wrote_it() -> None:
    good = '{"city": "Oslo", "unit": "celsius", "days": 3}'
    assert _held_call(good, '{"city": "Bergen"}', schemas=True) == good


def test_a_function_without_a_schema_is_held_to_json_only() -> None:
    enc = get_encoding()
    guard = ChannelGuard(json_calls=True, call_schemas=CallSchemas.for_functions(SCHEMA_TOOLS))
    header = enc.encode("commentary to=functions.get_time <|constrain|>json", allowed_special="all")
    _walk(guard, [CHANNEL, *header, MESSAGE, *enc.encode('{"anything": [1, 2]}')])
    assert _allowed(guard) >= {CALL}
