"""HarmonyStreamParser on hand-built completion token streams, well-formed and malformed."""

from __future__ import annotations

import pytest
from openai_harmony import HarmonyEncoding, Message, Role

from gpt_oss_desktop.engine.events import NO_CHANNEL, Delta, ToolCall
from gpt_oss_desktop.engine.stream_parser import HarmonyStreamParser
from gpt_oss_desktop.engine.vocab import CALL, CHANNEL, CONSTRAIN, END, MESSAGE, RETURN, START, get_encoding

ASSISTANT = 173781
ANALYSIS = 35644
FINAL = 17196


@pytest.fixture(scope="module")
def enc() -> HarmonyEncoding:
    return get_encoding()


def text(enc: HarmonyEncoding, s: str) -> list[int]:
    """Plain text tokens (no special tokens allowed, so the test builds the structure explicitly)."""
    return enc.encode(s)


def run_events(enc: HarmonyEncoding, tokens: list[int]) -> tuple[HarmonyStreamParser, list[Delta | ToolCall]]:
    parser = HarmonyStreamParser(enc)
    events = [e for t in tokens if (e := parser.feed(t)) is not None]
    parser.finish()
    return parser, events


def run(enc: HarmonyEncoding, tokens: list[int]) -> tuple[HarmonyStreamParser, list[Delta]]:
    parser, events = run_events(enc, tokens)
    return parser, [e for e in events if isinstance(e, Delta)]


def calls(events: list[Delta | ToolCall]) -> list[ToolCall]:
    return [e for e in events if isinstance(e, ToolCall)]


def special(enc: HarmonyEncoding, s: str) -> list[int]:
    """Tokens of text written with harmony's special tokens inline (``<|channel|>`` ...)."""
    return enc.encode(s, allowed_special="all")


def joined(deltas: list[Delta], channel: str, recipient: str | None = None) -> str:
    return "".join(d.text for d in deltas if d.channel == channel and d.recipient == recipient)


def analysis_then_final(enc: HarmonyEncoding, thought: str = "Let me think.", answer: str = "It is 4.") -> list[int]:
    return [
        CHANNEL,
        ANALYSIS,
        MESSAGE,
        *text(enc, thought),
        END,
        START,
        ASSISTANT,
        CHANNEL,
        FINAL,
        MESSAGE,
        *text(enc, answer),
    ]


def test_analysis_then_final(enc: HarmonyEncoding) -> None:
    thought, answer = text(enc, "Let me think."), text(enc, "It is 4.")
    tokens = [*analysis_then_final(enc), RETURN]
    parser, deltas = run(enc, tokens)
    assert joined(deltas, "analysis") == "Let me think."
    assert joined(deltas, "final") == "It is 4."
    assert [d.is_reasoning for d in deltas] == [True] * len(thought) + [False] * len(answer)
    assert all(d.recipient is None for d in deltas)
    # header (3) + content + <|end|> for analysis; <|start|> assistant <|channel|> final <|message|> + content + stop.
    counts = parser.counts
    assert counts.reasoning == 3 + len(thought) + 1
    assert counts.final == 5 + len(answer) + 1
    assert counts.other == 0
    assert counts.total == len(tokens)
    assert parser.stop_token == RETURN
    assert parser.malformed is None
    assert parser.completion_ids == tuple(tokens)
    assert [(m.channel, m.content[0].text) for m in parser.messages] == [
        ("analysis", "Let me think."),
        ("final", "It is 4."),
    ]


def test_tool_call_on_commentary(enc: HarmonyEncoding) -> None:
    args = '{"location":"San Francisco"}'
    header = [CHANNEL, *text(enc, "commentary to=functions.get_weather "), CONSTRAIN, *text(enc, "json"), MESSAGE]
    tokens = [CHANNEL, ANALYSIS, MESSAGE, *text(enc, "Need weather."), END, START, ASSISTANT, *header]
    tokens += [*text(enc, args), CALL]
    parser, events = run_events(enc, tokens)
    deltas = [e for e in events if isinstance(e, Delta)]
    assert joined(deltas, "commentary", "functions.get_weather") == args
    # The call comes once, last, after the Deltas of its arguments.
    assert events[-1] == ToolCall("functions.get_weather", args, "commentary", "<|constrain|>json")
    assert calls(events) == [events[-1]] and events[-1].name == "get_weather"
    assert all(d.is_tool_call for d in deltas if d.channel == "commentary")
    call = parser.messages[-1]
    assert call.recipient == "functions.get_weather"
    assert call.channel == "commentary"
    assert call.content_type == "<|constrain|>json"
    assert call.content[0].text == args
    assert parser.stop_token == CALL
    counts = parser.counts
    assert counts.reasoning == 3 + len(text(enc, "Need weather.")) + 1
    assert counts.other == 2 + len(header) + len(text(enc, args)) + 1  # <|start|>assistant + header + args + <|call|>
    assert counts.final == 0
    assert counts.total == len(tokens)
    assert parser.malformed is None


def test_tool_call_on_analysis_channel_is_routed_by_recipient(enc: HarmonyEncoding) -> None:
    tokens = [CHANNEL, *text(enc, "analysis to=browser.search"), MESSAGE, *text(enc, '{"q":"x"}'), CALL]
    parser, events = run_events(enc, tokens)
    assert calls(events) == [ToolCall("browser.search", '{"q":"x"}', "analysis", None)]
    deltas = [e for e in events if isinstance(e, Delta)]
    assert deltas and all(d.channel == "analysis" and d.recipient == "browser.search" for d in deltas)
    assert not any(d.is_reasoning for d in deltas)
    assert parser.counts.reasoning == 0
    assert parser.counts.other == len(tokens)


def test_multibyte_text_streams_whole_characters(enc: HarmonyEncoding) -> None:
    answer = "日本語です 🙂"
    _, deltas = run(enc, [CHANNEL, FINAL, MESSAGE, *text(enc, answer), RETURN])
    assert joined(deltas, "final") == answer
    assert all("\ufffd" not in d.text for d in deltas)


def test_end_then_return_keeps_answer(enc: HarmonyEncoding) -> None:
    tokens = [*analysis_then_final(enc), END, RETURN]
    parser, deltas = run(enc, tokens)
    assert joined(deltas, "final") == "It is 4."
    assert [m.channel for m in parser.messages] == ["analysis", "final"]
    assert parser.stop_token == RETURN
    assert parser.malformed is not None and "<|return|>" in parser.malformed
    assert parser.counts.other == 1  # the stray <|return|>
    assert parser.counts.total == len(tokens)


def test_unknown_role_assistantassistant_salvaged(enc: HarmonyEncoding) -> None:
    tokens = [CHANNEL, ANALYSIS, MESSAGE, *text(enc, "Hmm."), END, START, ASSISTANT, ASSISTANT]
    tokens += [CHANNEL, FINAL, MESSAGE, *text(enc, "Hi there!"), RETURN]
    parser, deltas = run(enc, tokens)
    assert joined(deltas, "analysis") == "Hmm."
    assert joined(deltas, "final") == "Hi there!"
    assert [(m.channel, m.content[0].text) for m in parser.messages] == [("analysis", "Hmm."), ("final", "Hi there!")]
    assert parser.malformed is not None and "assistantassistant" in parser.malformed
    assert parser.counts.final == 6 + len(text(enc, "Hi there!")) + 1
    assert parser.counts.total == len(tokens)


def test_header_with_no_channel_value(enc: HarmonyEncoding) -> None:
    tokens = [CHANNEL, MESSAGE, *text(enc, "Orphan text"), RETURN]
    parser, deltas = run(enc, tokens)
    assert joined(deltas, NO_CHANNEL) == "Orphan text"
    assert parser.malformed is not None and "no channel value" in parser.malformed
    assert parser.counts.other == len(tokens)
    assert parser.messages[-1].content[0].text == "Orphan text"


def test_salvaged_header_keeps_recipient(enc: HarmonyEncoding) -> None:
    tokens = [START, *text(enc, "assistantassistant to=functions.f"), CHANNEL, *text(enc, "commentary ")]
    tokens = tokens[1:]  # the prompt already holds <|start|>; the model repeats the role
    tokens += [CONSTRAIN, *text(enc, "json"), MESSAGE, *text(enc, "{}"), CALL]
    parser, events = run_events(enc, tokens)
    deltas = [e for e in events if isinstance(e, Delta)]
    assert joined(deltas, "commentary", "functions.f") == "{}"
    assert calls(events) == [ToolCall("functions.f", "{}", "commentary", "<|constrain|>json")]
    assert parser.messages[-1].recipient == "functions.f"
    assert parser.messages[-1].content_type == "<|constrain|>json"


def test_garbage_after_call_ignored(enc: HarmonyEncoding) -> None:
    tokens = [CHANNEL, *text(enc, "commentary to=functions.get_weather "), CONSTRAIN, *text(enc, "json"), MESSAGE]
    tokens += [*text(enc, '{"location":"SF"}'), CALL]
    garbage = [*text(enc, " garbage"), END, START, ASSISTANT]
    parser, deltas = run(enc, tokens + garbage)
    assert joined(deltas, "commentary", "functions.get_weather") == '{"location":"SF"}'
    assert len(parser.messages) == 1
    assert parser.stop_token == CALL
    assert parser.malformed is not None and f"{len(garbage)} token(s) after <|call|>" in parser.malformed
    assert parser.counts.total == len(tokens) + len(garbage)


def test_eos_mid_header(enc: HarmonyEncoding) -> None:
    tokens = [CHANNEL, ANALYSIS, MESSAGE, *text(enc, "Thinking"), END, START, ASSISTANT, CHANNEL, *text(enc, "fin")]
    parser, deltas = run(enc, tokens)
    assert joined(deltas, "analysis") == "Thinking"
    assert [m.channel for m in parser.messages] == ["analysis"]
    assert parser.stop_token is None
    assert parser.malformed is not None and "inside a message header" in parser.malformed
    assert parser.counts.other == 3 + len(text(enc, "fin"))
    assert parser.counts.total == len(tokens)


def test_eos_mid_content_keeps_partial_message(enc: HarmonyEncoding) -> None:
    tokens = [CHANNEL, FINAL, MESSAGE, *text(enc, "The answer is")]
    parser, deltas = run(enc, tokens)
    assert joined(deltas, "final") == "The answer is"
    assert parser.messages[-1].content[0].text == "The answer is"
    assert parser.malformed is None  # running out of tokens is a length stop, not malformed output
    assert parser.counts.final == len(tokens)


def test_missing_start_between_messages(enc: HarmonyEncoding) -> None:
    tokens = [CHANNEL, ANALYSIS, MESSAGE, *text(enc, "a"), END, CHANNEL, FINAL, MESSAGE, *text(enc, "b"), RETURN]
    parser, deltas = run(enc, tokens)
    assert joined(deltas, "final") == "b"
    assert parser.malformed is not None and "<|start|>" in parser.malformed


def test_stray_end_skipped(enc: HarmonyEncoding) -> None:
    tokens = [CHANNEL, ANALYSIS, MESSAGE, *text(enc, "a"), END, END, START, ASSISTANT, CHANNEL, FINAL, MESSAGE]
    tokens += [*text(enc, "b"), RETURN]
    parser, deltas = run(enc, tokens)
    assert joined(deltas, "final") == "b"
    assert parser.counts.other == 1


def test_empty_and_idempotent_finish(enc: HarmonyEncoding) -> None:
    parser = HarmonyStreamParser(enc)
    parser.finish()
    parser.finish()
    assert parser.messages == ()
    assert parser.malformed is None
    assert parser.counts.total == 0


@pytest.mark.parametrize("seed", range(5))
def test_random_token_soup_never_raises(enc: HarmonyEncoding, seed: int) -> None:
    import random

    rng = random.Random(seed)
    pool = [CHANNEL, MESSAGE, START, END, CONSTRAIN, ASSISTANT, ANALYSIS, FINAL, *text(enc, "a b to=x json")]
    tokens = [rng.choice(pool) for _ in range(300)]
    parser, _ = run(enc, tokens)
    assert parser.counts.total == len(tokens)


def test_headerless_text_streams_after_max_header_tokens(enc: HarmonyEncoding) -> None:
    from gpt_oss_desktop.engine.stream_parser import MAX_HEADER_TOKENS

    words = "".join(f" word{i}" for i in range(MAX_HEADER_TOKENS))
    body = text(enc, words)
    assert len(body) > MAX_HEADER_TOKENS
    parser, deltas = run(enc, [*body, RETURN])
    assert joined(deltas, NO_CHANNEL) == words
    assert parser.messages[-1].content[0].text == words
    assert parser.malformed is not None and "longer than" in parser.malformed
    assert parser.counts.other == len(body) + 1


# A header without <|channel|> (issue 15). openai_harmony itself accepts it and reads the word as a recipient, so
# without a check of our own it was kept as a tool call to "final", counted as other, with no malformed mark.
def test_harmony_reads_a_bare_channel_name_as_a_recipient(enc: HarmonyEncoding) -> None:
    tokens = [*text(enc, "final"), MESSAGE, *text(enc, "Answer"), RETURN]
    (message,) = enc.parse_messages_from_completion_tokens(tokens, Role.ASSISTANT, strict=True)
    assert (message.channel, message.recipient) == (None, "final")


def test_header_without_channel_is_marked_and_a_bare_channel_name_read_as_the_channel(enc: HarmonyEncoding) -> None:
    tokens = [*text(enc, "final"), MESSAGE, *text(enc, "Answer"), RETURN]
    parser, deltas = run(enc, tokens)
    assert parser.malformed is not None and "no <|channel|>" in parser.malformed
    assert joined(deltas, "final") == "Answer"
    assert [(m.channel, m.recipient, m.content[0].text) for m in parser.messages] == [("final", None, "Answer")]
    assert parser.counts.final == len(tokens) and parser.counts.total == len(tokens)


def test_header_with_only_a_recipient_is_marked_and_kept(enc: HarmonyEncoding) -> None:
    tokens = [*text(enc, " to=functions.f"), MESSAGE, *text(enc, "{}"), CALL]
    parser, deltas = run(enc, tokens)
    assert parser.malformed is not None and "no <|channel|>" in parser.malformed
    assert joined(deltas, NO_CHANNEL, "functions.f") == "{}"
    assert parser.messages[-1].recipient == "functions.f"


def test_harmony_rendered_messages_are_not_marked(enc: HarmonyEncoding) -> None:
    for message in (
        Message.from_role_and_content(Role.ASSISTANT, "Think.").with_channel("analysis"),
        Message.from_role_and_content(Role.ASSISTANT, "Answer.").with_channel("final"),
        Message.from_role_and_content(Role.ASSISTANT, "{}").with_channel("commentary").with_recipient("functions.f"),
    ):
        rendered = enc.render(message)
        assert rendered[:2] == [START, ASSISTANT]
        parser, _ = run(enc, rendered[2:])  # the prompt already holds <|start|>assistant
        assert parser.malformed is None, message
        assert [(m.channel, m.recipient) for m in parser.messages] == [(message.channel, message.recipient)]


# -- tool calls as typed events ---------------------------------------------------------------------------------

ARGS = '{"location":"San Francisco"}'


def test_harmony_rendered_call_order_is_a_call_and_not_marked(enc: HarmonyEncoding) -> None:
    # openai_harmony renders history calls with the recipient before the channel; the model may write either order.
    tokens = special(enc, f" to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{ARGS}<|call|>")
    parser, events = run_events(enc, tokens)
    assert calls(events) == [ToolCall("functions.get_weather", ARGS, "commentary", "<|constrain|>json")]
    assert parser.malformed is None
    assert parser.counts.other == len(tokens)


@pytest.mark.parametrize(
    ("header", "channel", "finding"),
    [
        # harmony rejects these (openai/harmony#38, ggml-org/llama.cpp#27720): a broken <|constrain|>.
        ("<|channel|>commentary to=functions.get_weather <|constrain|> json", "commentary", "unexpected tokens"),
        ("<|channel|>commentary to=functions.get_weather <|constrain|>json <|constrain|>json", "commentary", "tokens"),
        ("<|constrain|>json<|channel|>commentary to=functions.get_weather", "commentary", "unexpected tokens"),
        ("<|channel|><|constrain|>json to=functions.get_weather", NO_CHANNEL, "no channel value"),
        # harmony accepts this one but swallows the channel into the recipient.
        ("<|channel|>commentary to=functions.get_weather<|channel|>commentary <|constrain|>json", "commentary", "read"),
    ],
)
def test_salvaged_call_header_still_yields_a_tool_call(
    enc: HarmonyEncoding, header: str, channel: str, finding: str
) -> None:
    tokens = special(enc, f"<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant{header}<|message|>")
    tokens += [*text(enc, ARGS), CALL]
    parser, events = run_events(enc, tokens)
    assert calls(events) == [ToolCall("functions.get_weather", ARGS, channel, "<|constrain|>json")]
    assert events[-1] == calls(events)[0]
    deltas = [e for e in events if isinstance(e, Delta)]
    assert joined(deltas, channel, "functions.get_weather") == ARGS
    assert joined(deltas, "analysis") == "Need weather."
    assert parser.malformed is not None and "malformed message header" in parser.malformed
    assert finding in parser.malformed
    assert parser.messages[-1].recipient == "functions.get_weather"
    assert parser.stop_token == CALL
    assert parser.counts.reasoning == len(special(enc, "<|channel|>analysis<|message|>Need weather.<|end|>"))
    assert parser.counts.total == len(tokens)


def test_constrained_final_answer_is_not_read_as_a_call_to_the_constraint(enc: HarmonyEncoding) -> None:
    # harmony reads the word after the channel as a recipient, so this would be a "call" to "<|constrain|>json".
    tokens = special(enc, '<|channel|>final <|constrain|>json<|message|>{"ok":true}<|return|>')
    assert enc.parse_messages_from_completion_tokens(tokens, Role.ASSISTANT)[0].recipient == "<|constrain|>json"
    parser, events = run_events(enc, tokens)
    assert calls(events) == []
    assert joined([e for e in events if isinstance(e, Delta)], "final") == '{"ok":true}'
    assert [(m.channel, m.recipient) for m in parser.messages] == [("final", None)]
    assert parser.counts.final == len(tokens)
    assert parser.malformed is not None and "recipient" in parser.malformed


def test_call_closed_by_end_is_emitted_at_end_and_the_turn_goes_on(enc: HarmonyEncoding) -> None:
    tokens = special(enc, f"<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{ARGS}")
    parser = HarmonyStreamParser(enc)
    assert all(not isinstance(parser.feed(t), ToolCall) for t in tokens)
    assert parser.feed(END) == ToolCall("functions.get_weather", ARGS, "commentary", "<|constrain|>json")
    rest = special(enc, "<|start|>assistant<|channel|>final<|message|>Done.<|return|>")
    events = [e for t in rest if (e := parser.feed(t)) is not None]
    parser.finish()
    assert calls(events) == []
    assert joined([e for e in events if isinstance(e, Delta)], "final") == "Done."
    assert parser.stop_token == RETURN


def test_end_then_call_emits_the_call_once(enc: HarmonyEncoding) -> None:
    tokens = special(enc, "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|end|><|call|>")
    parser, events = run_events(enc, tokens)
    assert calls(events) == [ToolCall("functions.f", "{}", "commentary", "<|constrain|>json")]
    assert parser.stop_token == CALL
    assert parser.counts.total == len(tokens)


def test_call_cut_off_by_the_end_of_output_is_not_emitted(enc: HarmonyEncoding) -> None:
    # Even complete JSON: the model never wrote <|call|>, so it had not committed to the call (max_tokens, cancel).
    tokens = special(enc, f"<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{ARGS}")
    parser, events = run_events(enc, tokens)
    assert calls(events) == []
    assert parser.messages[-1].recipient == "functions.get_weather"
    assert parser.messages[-1].content[0].text == ARGS
    assert parser.stop_token is None


def test_header_closed_by_call_before_message_is_not_a_call(enc: HarmonyEncoding) -> None:
    tokens = special(enc, "<|channel|>commentary to=functions.f<|call|>")
    parser, events = run_events(enc, tokens)
    assert calls(events) == []
    assert parser.malformed is not None and "without <|message|>" in parser.malformed
    assert parser.counts.total == len(tokens)


def test_two_calls_in_one_output_each_emitted(enc: HarmonyEncoding) -> None:
    tokens = special(
        enc,
        '<|channel|>commentary to=functions.a <|constrain|>json<|message|>{"x":1}<|end|>'
        '<|start|>assistant<|channel|>commentary to=functions.b <|constrain|>json<|message|>{"y":2}<|call|>',
    )
    _, events = run_events(enc, tokens)
    assert [(c.name, c.arguments) for c in calls(events)] == [("a", '{"x":1}'), ("b", '{"y":2}')]
