"""render_prompt against openai_harmony's own rendering of hand-built conversations, and reasoning pruning."""

from __future__ import annotations

import datetime

import pytest
from openai_harmony import (
    Author,
    Conversation,
    DeveloperContent,
    HarmonyEncoding,
    Message,
    RenderConversationConfig,
    Role,
    SystemContent,
    ToolDescription,
)
from openai_harmony import ReasoningEffort as HE

from gpt_oss_desktop.engine.harmony import (
    ChatMessage,
    ChatRole,
    ChatSession,
    FunctionTool,
    ReasoningEffort,
    assistant_turn,
    from_harmony,
    prune_reasoning,
    render_prompt,
)
from gpt_oss_desktop.engine.vocab import END, RETURN, START, get_encoding

DATE = "2025-08-05"
ASSISTANT = 173781
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string", "description": "City"}},
    "required": ["location"],
}


@pytest.fixture(scope="module")
def enc() -> HarmonyEncoding:
    return get_encoding()


def system(effort: HE = HE.MEDIUM, date: str | None = DATE) -> Message:
    content = SystemContent.new().with_reasoning_effort(effort).with_knowledge_cutoff("2024-06")
    if date is not None:
        content = content.with_conversation_start_date(date)
    return Message.from_role_and_content(Role.SYSTEM, content)


def user(text: str) -> Message:
    return Message.from_role_and_content(Role.USER, text)


def asst(channel: str, text: str) -> Message:
    return Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel)


def expected(enc: HarmonyEncoding, messages: list[Message]) -> list[int]:
    conv = Conversation.from_messages(messages)
    return list(
        enc.render_conversation_for_completion(conv, Role.ASSISTANT, RenderConversationConfig(auto_drop_analysis=False))
    )


def harmony_default(enc: HarmonyEncoding, messages: list[Message]) -> list[int]:
    """What harmony's own auto_drop_analysis produces (to show it is not enough)."""
    return list(enc.render_conversation_for_completion(Conversation.from_messages(messages), Role.ASSISTANT))


def contains(haystack: list[int], needle: list[int]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def test_single_user_message_matches_harmony(enc: HarmonyEncoding) -> None:
    ours = render_prompt([ChatMessage.user("What is 2+2?")], effort=ReasoningEffort.HIGH, current_date=DATE)
    assert ours == expected(enc, [system(HE.HIGH), user("What is 2+2?")])
    assert ours[-2:] == [START, ASSISTANT]
    text = enc.decode(ours)
    assert "Reasoning: high" in text
    assert f"Current date: {DATE}" in text
    assert "Knowledge cutoff: 2024-06" in text


@pytest.mark.parametrize("effort", list(ReasoningEffort))
def test_effort_is_rendered(enc: HarmonyEncoding, effort: ReasoningEffort) -> None:
    ours = render_prompt([ChatMessage.user("hi")], effort=effort, current_date=None)
    harmony_effort = {"low": HE.LOW, "medium": HE.MEDIUM, "high": HE.HIGH}[effort.value]
    assert ours == expected(enc, [system(harmony_effort, date=None), user("hi")])
    assert f"Reasoning: {effort.value}" in enc.decode(ours)
    assert "Current date" not in enc.decode(ours)


def test_default_date_is_today(enc: HarmonyEncoding) -> None:
    ours = render_prompt([ChatMessage.user("hi")])
    assert f"Current date: {datetime.date.today().isoformat()}" in enc.decode(ours)


def test_instructions_and_tools_go_in_developer_message(enc: HarmonyEncoding) -> None:
    tools = [FunctionTool("get_weather", "Gets the weather", WEATHER_SCHEMA), FunctionTool("now", "Current time")]
    ours = render_prompt([ChatMessage.user("Weather in SF?")], instructions="Be terse.", tools=tools, current_date=DATE)
    developer = (
        DeveloperContent.new()
        .with_instructions("Be terse.")
        .with_function_tools(
            [
                ToolDescription.new("get_weather", "Gets the weather", parameters=WEATHER_SCHEMA),
                ToolDescription.new("now", "Current time"),
            ]
        )
    )
    want = expected(enc, [system(), Message.from_role_and_content(Role.DEVELOPER, developer), user("Weather in SF?")])
    assert ours == want
    text = enc.decode(ours)
    assert "# Instructions\n\nBe terse." in text
    assert "Calls to these tools must go to the commentary channel: 'functions'." in text


def test_instructions_only(enc: HarmonyEncoding) -> None:
    ours = render_prompt([ChatMessage.user("x")], instructions="Speak French.", current_date=DATE)
    developer = Message.from_role_and_content(Role.DEVELOPER, DeveloperContent.new().with_instructions("Speak French."))
    assert ours == expected(enc, [system(), developer, user("x")])


def test_history_uses_end_never_return(enc: HarmonyEncoding) -> None:
    history = [ChatMessage.user("Hi"), *assistant_turn("Hello!", analysis="Greet back."), ChatMessage.user("Bye")]
    ours = render_prompt(history, current_date=DATE)
    assert RETURN not in ours
    assert ours == expected(enc, [system(), user("Hi"), asst("final", "Hello!"), user("Bye")])
    final_tokens = enc.encode("<|channel|>final<|message|>Hello!<|end|>", allowed_special="all")
    assert contains(ours, final_tokens)
    assert END in ours


def test_two_turns_prior_analysis_pruned(enc: HarmonyEncoding) -> None:
    history = [
        ChatMessage.user("Q1"),
        ChatMessage.analysis("SECRET-1"),
        ChatMessage.final("A1"),
        ChatMessage.user("Q2"),
    ]
    ours = render_prompt(history, current_date=DATE)
    assert ours == expected(enc, [system(), user("Q1"), asst("final", "A1"), user("Q2")])
    assert "SECRET-1" not in enc.decode(ours)


def test_three_turns_prune_turn_two_analysis_where_harmony_keeps_it(enc: HarmonyEncoding) -> None:
    history = [
        ChatMessage.user("Q1"),
        ChatMessage.analysis("SECRET-1"),
        ChatMessage.final("A1"),
        ChatMessage.user("Q2"),
        ChatMessage.analysis("SECRET-2"),
        ChatMessage.final("A2"),
        ChatMessage.user("Q3"),
    ]
    ours = render_prompt(history, current_date=DATE)
    want = expected(enc, [system(), user("Q1"), asst("final", "A1"), user("Q2"), asst("final", "A2"), user("Q3")])
    assert ours == want
    # The library's own auto-drop keeps turn 2's reasoning (docs/model.md#dropping-earlier-reasoning, case (a));
    # ours does not.
    lib = harmony_default(
        enc,
        [
            system(),
            user("Q1"),
            asst("analysis", "SECRET-1"),
            asst("final", "A1"),
            user("Q2"),
            asst("analysis", "SECRET-2"),
            asst("final", "A2"),
            user("Q3"),
        ],
    )
    assert "SECRET-2" in enc.decode(lib)
    assert "SECRET-2" not in enc.decode(ours)
    assert "SECRET-1" not in enc.decode(ours)


def tool_call_msg(text: str, channel: str = "commentary") -> Message:
    return (
        Message.from_role_and_content(Role.ASSISTANT, text)
        .with_channel(channel)
        .with_recipient("functions.get_weather")
        .with_content_type("<|constrain|>json")
    )


def tool_result_msg(text: str) -> Message:
    return (
        Message.from_author_and_content(Author.new(Role.TOOL, "functions.get_weather"), text)
        .with_recipient("assistant")
        .with_channel("commentary")
    )


def test_during_tool_call_current_analysis_kept_prior_pruned(enc: HarmonyEncoding) -> None:
    tools = [FunctionTool("get_weather", "Gets the weather", WEATHER_SCHEMA)]
    history = [
        ChatMessage.user("Q1"),
        ChatMessage.analysis("SECRET-1"),
        ChatMessage.final("A1"),
        ChatMessage.user("Weather in SF?"),
        ChatMessage.analysis("Need the weather tool."),
        ChatMessage.tool_call("functions.get_weather", '{"location":"SF"}'),
        ChatMessage.tool_result("functions.get_weather", '{"temp": 20}'),
    ]
    ours = render_prompt(history, tools=tools, current_date=DATE)
    developer = Message.from_role_and_content(
        Role.DEVELOPER,
        DeveloperContent.new().with_function_tools(
            [ToolDescription.new("get_weather", "Gets the weather", parameters=WEATHER_SCHEMA)]
        ),
    )
    full = [
        system(),
        developer,
        user("Q1"),
        asst("analysis", "SECRET-1"),
        asst("final", "A1"),
        user("Weather in SF?"),
        asst("analysis", "Need the weather tool."),
        tool_call_msg('{"location":"SF"}'),
        tool_result_msg('{"temp": 20}'),
    ]
    pruned = [m for i, m in enumerate(full) if i != 3]
    assert ours == expected(enc, pruned)
    text = enc.decode(ours)
    assert "SECRET-1" not in text
    assert "Need the weather tool." in text
    # The call renders with <|call|>, the result as a tool message to the assistant.
    call = enc.encode(
        "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json"
        '<|message|>{"location":"SF"}<|call|>',
        allowed_special="all",
    )
    assert contains(ours, call)
    result = enc.encode(
        '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{"temp": 20}<|end|>',
        allowed_special="all",
    )
    assert contains(ours, result)
    # harmony's auto-drop keeps everything while a tool call is in progress
    # (docs/model.md#dropping-earlier-reasoning, case (b)).
    assert "SECRET-1" in enc.decode(harmony_default(enc, full))


def test_a_finished_turns_builtin_tool_traffic_goes_with_its_reasoning_and_function_calls_stay() -> None:
    history = [
        ChatMessage.user("Q1"),
        ChatMessage.tool_call("browser.search", '{"query":"x"}', channel="analysis", content_type=None),
        ChatMessage.tool_result("browser.search", "results", channel="analysis"),
        ChatMessage.tool_call("python", "print(1)", channel="analysis", content_type="code"),
        ChatMessage.tool_result("python", "1", channel="analysis"),
        ChatMessage.tool_call("functions.get_time", "{}", channel="analysis"),  # a function called from analysis
        ChatMessage.tool_result("functions.get_time", "12:00", channel="analysis"),
        ChatMessage.tool_call("functions.convert", "{}"),
        ChatMessage.tool_result("functions.convert", "3 mi", channel="commentary"),
        ChatMessage.analysis("think"),
        ChatMessage.final("A1"),
        ChatMessage.user("Q2"),
        ChatMessage.tool_call("browser.open", '{"id": 0}', channel="analysis", content_type=None),
        ChatMessage.tool_result("browser.open", "page", channel="analysis"),
    ]
    kept = prune_reasoning(history)
    # earlier: functions' calls and results (facts) and the answer; now: everything of the turn in progress
    assert [m.text for m in kept] == ["Q1", "{}", "12:00", "{}", "3 mi", "A1", "Q2", '{"id": 0}', "page"]


def test_from_harmony_roundtrip_of_parsed_messages(enc: HarmonyEncoding) -> None:
    completion = enc.encode(
        "<|channel|>analysis<|message|>hmm<|end|><|start|>assistant<|channel|>final<|message|>Yes.<|return|>",
        allowed_special="all",
    )
    parsed = enc.parse_messages_from_completion_tokens(completion, Role.ASSISTANT)
    msgs = from_harmony(parsed)
    assert msgs == [ChatMessage.analysis("hmm"), ChatMessage.final("Yes.")]
    session = ChatSession(effort=ReasoningEffort.LOW).with_messages(ChatMessage.user("Q"), *msgs)
    session = session.with_messages(ChatMessage.user("Q2"))
    ours = session.prompt(current_date=DATE)
    assert ours == expected(enc, [system(HE.LOW), user("Q"), asst("final", "Yes."), user("Q2")])


def test_message_validation() -> None:
    with pytest.raises(ValueError, match="channel"):
        ChatMessage(ChatRole.ASSISTANT, "x")
    with pytest.raises(ValueError, match="name"):
        ChatMessage(ChatRole.TOOL, "x")


# -- a whole function-call loop, against openai_harmony's rendering ---------------------------------------------

WEATHER_TOOLS = [FunctionTool("get_weather", "Gets the weather", WEATHER_SCHEMA)]


def weather_developer() -> Message:
    return Message.from_role_and_content(
        Role.DEVELOPER,
        DeveloperContent.new().with_function_tools(
            [ToolDescription.new("get_weather", "Gets the weather", parameters=WEATHER_SCHEMA)]
        ),
    )


def test_tool_loop_then_later_turn_matches_harmony_token_for_token(enc: HarmonyEncoding) -> None:
    history = [
        ChatMessage.user("Weather in SF?"),
        ChatMessage.analysis("THINK-CALL"),
        ChatMessage.tool_call("functions.get_weather", '{"location":"SF"}'),
        ChatMessage.tool_result("functions.get_weather", '{"temp": 20}'),
        ChatMessage.analysis("THINK-ANSWER"),
        ChatMessage.final("20 degrees."),
        ChatMessage.user("And tomorrow?"),
    ]
    ours = render_prompt(history, tools=WEATHER_TOOLS, current_date=DATE)
    # Built by hand: the finished turn's reasoning is gone; its call and result (facts) stay.
    by_hand = [
        system(),
        weather_developer(),
        user("Weather in SF?"),
        tool_call_msg('{"location":"SF"}'),
        tool_result_msg('{"temp": 20}'),
        asst("final", "20 degrees."),
        user("And tomorrow?"),
    ]
    assert ours == expected(enc, by_hand)
    text = enc.decode(ours)
    assert "THINK-CALL" not in text and "THINK-ANSWER" not in text
    assert "<|constrain|>json<|message|>" in text and '{"location":"SF"}<|call|>' in text
    assert "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>" in text
    assert "namespace functions" in text
    # Here harmony's own auto-drop agrees with ours.
    full = [
        system(),
        weather_developer(),
        user("Weather in SF?"),
        asst("analysis", "THINK-CALL"),
        tool_call_msg('{"location":"SF"}'),
        tool_result_msg('{"temp": 20}'),
        asst("analysis", "THINK-ANSWER"),
        asst("final", "20 degrees."),
        user("And tomorrow?"),
    ]
    assert harmony_default(enc, full) == ours


def test_reasoning_is_kept_across_every_call_of_one_tool_loop(enc: HarmonyEncoding) -> None:
    history = [
        ChatMessage.user("Weather in SF and LA?"),
        ChatMessage.analysis("THINK-1"),
        ChatMessage.tool_call("functions.get_weather", '{"location":"SF"}'),
        ChatMessage.tool_result("functions.get_weather", '{"temp": 20}'),
        ChatMessage.analysis("THINK-2"),
        ChatMessage.tool_call("functions.get_weather", '{"location":"LA"}'),
        ChatMessage.tool_result("functions.get_weather", '{"temp": 25}'),
    ]
    ours = render_prompt(history, tools=WEATHER_TOOLS, current_date=DATE)
    by_hand = [
        system(),
        weather_developer(),
        user("Weather in SF and LA?"),
        asst("analysis", "THINK-1"),
        tool_call_msg('{"location":"SF"}'),
        tool_result_msg('{"temp": 20}'),
        asst("analysis", "THINK-2"),
        tool_call_msg('{"location":"LA"}'),
        tool_result_msg('{"temp": 25}'),
    ]
    assert ours == expected(enc, by_hand)
    assert ours == harmony_default(enc, by_hand)  # nothing to drop inside the loop, for harmony either
    assert ours[-2:] == [START, ASSISTANT]


def test_a_new_turns_tool_loop_drops_the_last_turns_reasoning_where_harmony_keeps_it(enc: HarmonyEncoding) -> None:
    history = [
        ChatMessage.user("Weather in SF?"),
        ChatMessage.analysis("OLD-THINK"),
        ChatMessage.tool_call("functions.get_weather", '{"location":"SF"}'),
        ChatMessage.tool_result("functions.get_weather", '{"temp": 20}'),
        ChatMessage.analysis("OLD-ANSWER-THINK"),
        ChatMessage.final("20 degrees."),
        ChatMessage.user("And LA?"),
        ChatMessage.analysis("NEW-THINK"),
        ChatMessage.tool_call("functions.get_weather", '{"location":"LA"}'),
        ChatMessage.tool_result("functions.get_weather", '{"temp": 25}'),
    ]
    ours = render_prompt(history, tools=WEATHER_TOOLS, current_date=DATE)
    kept = [
        system(),
        weather_developer(),
        user("Weather in SF?"),
        tool_call_msg('{"location":"SF"}'),
        tool_result_msg('{"temp": 20}'),
        asst("final", "20 degrees."),
        user("And LA?"),
        asst("analysis", "NEW-THINK"),
        tool_call_msg('{"location":"LA"}'),
        tool_result_msg('{"temp": 25}'),
    ]
    assert ours == expected(enc, kept)
    text = enc.decode(ours)
    assert "NEW-THINK" in text
    assert "OLD-THINK" not in text and "OLD-ANSWER-THINK" not in text
    # openai_harmony drops nothing while a call is in progress, so the finished turn's reasoning comes back.
    full = [*kept[:3], asst("analysis", "OLD-THINK"), *kept[3:5], asst("analysis", "OLD-ANSWER-THINK"), *kept[5:]]
    lib = enc.decode(harmony_default(enc, full))
    assert "OLD-THINK" in lib and "OLD-ANSWER-THINK" in lib


def test_a_tool_loop_between_two_finals_is_pruned_where_harmony_keeps_its_reasoning(enc: HarmonyEncoding) -> None:
    history = [
        ChatMessage.user("Q1"),
        ChatMessage.analysis("T1"),
        ChatMessage.final("A1"),
        ChatMessage.user("Weather in SF?"),
        ChatMessage.analysis("LOOP-THINK"),
        ChatMessage.tool_call("functions.get_weather", '{"location":"SF"}'),
        ChatMessage.tool_result("functions.get_weather", '{"temp": 20}'),
        ChatMessage.analysis("LOOP-ANSWER-THINK"),
        ChatMessage.final("20 degrees."),
        ChatMessage.user("Q3"),
    ]
    ours = render_prompt(history, tools=WEATHER_TOOLS, current_date=DATE)
    kept = [
        system(),
        weather_developer(),
        user("Q1"),
        asst("final", "A1"),
        user("Weather in SF?"),
        tool_call_msg('{"location":"SF"}'),
        tool_result_msg('{"temp": 20}'),
        asst("final", "20 degrees."),
        user("Q3"),
    ]
    assert ours == expected(enc, kept)
    # openai_harmony's auto-drop only drops analysis before the first final: the loop between the two finals
    # keeps its chain of thought there.
    full = [
        *kept[:3],
        asst("analysis", "T1"),
        *kept[3:5],
        asst("analysis", "LOOP-THINK"),
        *kept[5:7],
        asst("analysis", "LOOP-ANSWER-THINK"),
        *kept[7:],
    ]
    lib = enc.decode(harmony_default(enc, full))
    assert "LOOP-THINK" in lib and "LOOP-ANSWER-THINK" in lib and "T1" not in lib
    assert "LOOP-THINK" not in enc.decode(ours)


def test_python_tool_is_offered_in_the_system_message_as_openai_harmony_renders_it() -> None:
    from openai_harmony import Author, Conversation, Message, Role, SystemContent, ToolNamespaceConfig

    from gpt_oss_desktop.engine.harmony import PYTHON_TOOL_DESCRIPTION, ChatMessage, render_prompt
    from gpt_oss_desktop.engine.vocab import get_encoding

    messages = [
        ChatMessage.user("What is 17 * 23?"),
        ChatMessage.tool_call("python", "print(17 * 23)", channel="analysis", content_type="code"),
        ChatMessage.tool_result("python", "391\n", channel="analysis"),
    ]
    ours = render_prompt(messages, python_tool=True, current_date=None)
    system = (
        SystemContent.new()
        .with_reasoning_effort(ReasoningEffort.MEDIUM.to_harmony())
        .with_knowledge_cutoff("2024-06")
        .with_tools(ToolNamespaceConfig(name="python", description=PYTHON_TOOL_DESCRIPTION, tools=[]))
    )
    theirs = Conversation.from_messages(
        [
            Message.from_role_and_content(Role.SYSTEM, system),
            Message.from_role_and_content(Role.USER, "What is 17 * 23?"),
            Message.from_role_and_content(Role.ASSISTANT, "print(17 * 23)")
            .with_channel("analysis")
            .with_recipient("python")
            .with_content_type("code"),
            Message.from_author_and_content(Author.new(Role.TOOL, "python"), "391\n")
            .with_recipient("assistant")
            .with_channel("analysis"),
        ]
    )
    encoding = get_encoding()
    assert ours == list(encoding.render_conversation_for_completion(theirs, Role.ASSISTANT))
    text = encoding.decode(ours)
    assert "## python" in text and "stateless" in text
    assert "<|start|>python to=assistant<|channel|>analysis<|message|>391\n<|end|>" in text


def test_browser_tool_is_offered_and_called_as_openai_harmony_renders_it() -> None:
    from openai_harmony import Author, Conversation, Message, Role, SystemContent

    from gpt_oss_desktop.engine.harmony import ChatMessage, render_prompt
    from gpt_oss_desktop.engine.vocab import get_encoding

    result = "[0] harmony\n**viewing lines [0 - 0] of 0**\n\nL0: * 【0†openai/harmony†github.com】"
    messages = [
        ChatMessage.user("What is harmony?"),
        ChatMessage.tool_call("browser.search", '{"query": "harmony"}', channel="analysis"),
        ChatMessage.tool_result("browser.search", result, channel="analysis"),
    ]
    ours = render_prompt(messages, browser_tool=True, python_tool=True, current_date=None)
    system = (
        SystemContent.new()
        .with_reasoning_effort(ReasoningEffort.MEDIUM.to_harmony())
        .with_knowledge_cutoff("2024-06")
        .with_browser_tool()
    )
    theirs = Conversation.from_messages(
        [
            Message.from_role_and_content(Role.SYSTEM, system),
            Message.from_role_and_content(Role.USER, "What is harmony?"),
            Message.from_role_and_content(Role.ASSISTANT, '{"query": "harmony"}')
            .with_channel("analysis")
            .with_recipient("browser.search")
            .with_content_type("<|constrain|>json"),
            Message.from_author_and_content(Author.new(Role.TOOL, "browser.search"), result)
            .with_recipient("assistant")
            .with_channel("analysis"),
        ]
    )
    encoding = get_encoding()
    text = encoding.decode(ours)
    # Both built-in tools: the browser first, then python, each in its own section of the system message.
    assert text.index("## browser") < text.index("## python") < text.index("# Valid channels")
    without_python = render_prompt(messages, browser_tool=True, current_date=None)
    assert without_python == list(encoding.render_conversation_for_completion(theirs, Role.ASSISTANT))
    assert "type search = (_: {" in text and "【{cursor}†L{line_start}(-L{line_end})?】" in text
