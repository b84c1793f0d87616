"""The scripted test double driving a whole function-call loop through the real Generator and stream parser:
call -> tool result -> final answer."""

from __future__ import annotations

import pytest
from openai_harmony import HarmonyEncoding, Message, Role

from gpt_oss_desktop.engine.events import Delta, Done, FinishReason, ToolCall
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.harmony import ChatMessage, FunctionTool, from_harmony, render_prompt
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.scripted_model import (
    ScriptedModel,
    ends_with_tool_result,
    harmony_reply,
    harmony_tool_call,
)
from gpt_oss_desktop.engine.vocab import CALL, get_encoding

DATE = "2025-08-05"
ARGS = '{"location":"Paris"}'
TOOLS = [FunctionTool("get_weather", "Gets the weather", {"type": "object", "properties": {"location": {}}})]
GREEDY = SamplingParams(temperature=0)


def prompt_for(messages: list[ChatMessage]) -> list[int]:
    return render_prompt(messages, tools=TOOLS, current_date=DATE)


def split(events: list[Delta | ToolCall | Done]) -> tuple[list[Delta], list[ToolCall], Done]:
    done = events[-1]
    assert isinstance(done, Done)
    assert not any(isinstance(e, Done) for e in events[:-1])
    return [e for e in events if isinstance(e, Delta)], [e for e in events if isinstance(e, ToolCall)], done


def test_tool_call_script_is_harmonys_own_rendering() -> None:
    enc: HarmonyEncoding = get_encoding()
    script = harmony_tool_call("Need the weather.", "functions.get_weather", ARGS)
    assert enc.decode(script) == (
        "<|channel|>analysis<|message|>Need the weather.<|end|>"
        "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json"
        f"<|message|>{ARGS}<|call|>"
    )
    parsed = enc.parse_messages_from_completion_tokens(script, Role.ASSISTANT, strict=True)
    assert [(m.channel, m.recipient, m.content_type) for m in parsed] == [
        ("analysis", None, None),
        ("commentary", "functions.get_weather", "<|constrain|>json"),
    ]


def test_ends_with_tool_result() -> None:
    asked = [ChatMessage.user("Weather in Paris?")]
    called = [*asked, ChatMessage.tool_call("functions.get_weather", ARGS)]
    answered = [*called, ChatMessage.tool_result("functions.get_weather", '{"temp": 21}')]
    assert not ends_with_tool_result(prompt_for(asked))
    assert not ends_with_tool_result(prompt_for(called))
    assert ends_with_tool_result(prompt_for(answered))
    assert not ends_with_tool_result(prompt_for([*answered, ChatMessage.final("21 °C."), ChatMessage.user("Thanks")]))
    assert not ends_with_tool_result([])


def test_scripted_call_result_answer_loop_through_the_generator() -> None:
    model = ScriptedModel.tool_loop(
        harmony_tool_call("Need the weather.", "functions.get_weather", ARGS),
        harmony_reply("It is sunny.", "21 °C and sunny in Paris."),
    )
    generator = Generator(model, max_context=4096)
    history = [ChatMessage.user("Weather in Paris?")]

    # Turn 1: reasoning and the call's arguments stream as Deltas, then one ToolCall, then Done on <|call|>.
    prompt1 = prompt_for(history)
    deltas, tool_calls, done = split(list(generator.stream(prompt1, GREEDY)))
    assert "".join(d.text for d in deltas if d.is_reasoning) == "Need the weather."
    assert "".join(d.text for d in deltas if d.is_tool_call) == ARGS
    assert not any(d.is_final for d in deltas)
    assert tool_calls == [ToolCall("functions.get_weather", ARGS, "commentary", "<|constrain|>json")]
    assert tool_calls[0].name == "get_weather"
    assert done.finish_reason is FinishReason.STOP
    assert done.completion_ids[-1] == CALL
    assert done.tool_call is not None and done.tool_call.recipient == "functions.get_weather"
    assert done.malformed is None

    # Turn 2: the call and the tool's result go back; the model answers.
    history += [*from_harmony(done.messages), ChatMessage.tool_result("functions.get_weather", '{"temp": 21}')]
    prompt2 = prompt_for(history)
    deltas, tool_calls, done2 = split(list(generator.stream(prompt2, GREEDY)))
    assert tool_calls == []
    assert "".join(d.text for d in deltas if d.is_final) == "21 °C and sunny in Paris."
    assert done2.finish_reason is FinishReason.STOP and done2.tool_call is None
    # Inside the tool loop the call's reasoning stays in the prompt...
    assert "Need the weather." in get_encoding().decode(prompt2)
    # ...and the re-rendered call is token for token what the model wrote, so the whole first turn (all but the
    # <|call|> that was sampled but never fed back) is reused from the KV cache.
    assert done2.reused_prompt_tokens == len(prompt1) + len(done.completion_ids) - 1
    assert prompt2[: len(prompt1) + len(done.completion_ids)] == [*prompt1, *done.completion_ids]
    assert [ends_with_tool_result(p) for p in model.prompts] == [False, True]


def test_without_choose_scripts_cycle_in_turn() -> None:
    model = ScriptedModel([harmony_reply("a", "first"), harmony_reply("b", "second")])
    generator = Generator(model, max_context=4096)
    answers = []
    for question in ("one", "two", "three"):  # different prompts: an identical one reuses the last prefill
        deltas, _, _ = split(list(generator.stream(prompt_for([ChatMessage.user(question)]), GREEDY)))
        answers.append("".join(d.text for d in deltas if d.is_final))
    assert answers == ["first", "second", "first"]


def test_tool_call_script_on_the_analysis_channel_without_constraint() -> None:
    script = harmony_tool_call("Search.", "browser.search", '{"query":"x"}', channel="analysis", content_type=None)
    model = ScriptedModel([script])
    _, tool_calls, done = split(list(Generator(model).stream(prompt_for([ChatMessage.user("q")]), GREEDY)))
    assert tool_calls == [ToolCall("browser.search", '{"query":"x"}', "analysis", None)]
    assert done.tool_call is not None
    assert isinstance(done.messages[-1], Message)


def test_preferring_by_prompt_prefers_within_the_group_its_prompt_picks() -> None:
    # Group 0 before a tool result, group 1 after one; inside each, the first script that still matches wins.
    before = [harmony_reply("a", "first choice"), harmony_reply("a", "second choice")]
    after = [harmony_reply("b", "after the tool"), harmony_reply("c", "never")]
    model = ScriptedModel.preferring_by_prompt([before, after], lambda prompt: int(ends_with_tool_result(prompt)))
    generator = Generator(model, max_context=4096)
    asked = [ChatMessage.user("Weather?")]
    answered = [
        *asked,
        ChatMessage.tool_call("functions.get_weather", ARGS),
        ChatMessage.tool_result("functions.get_weather", '{"temp": 21}'),
    ]
    finals = []
    for messages in (asked, answered):
        deltas, _, _ = split(list(generator.stream(prompt_for(messages), GREEDY)))
        finals.append("".join(d.text for d in deltas if d.is_final))
    assert finals == ["first choice", "after the tool"]
    with pytest.raises(ValueError, match="at least one script"):
        ScriptedModel.preferring_by_prompt([before, []], lambda prompt: 0)
