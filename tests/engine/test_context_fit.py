"""Fitting a long chat to the context (engine/context_fit.py) with harmony's real rendering: whole turns go, oldest
first, as few as make room for the answer; later requests of the same chat keep the cut, so their prompts start
alike (the KV cache's prefix stays reusable)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from gpt_oss_desktop.engine.context_fit import ContextWindow, answer_room, fit_to_context, turn_starts
from gpt_oss_desktop.engine.harmony import ChatMessage, ChatRole, render_prompt

FILLER = "The quick brown fox jumps over the lazy dog. " * 6  # ~60 tokens


def chat(turns: int) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for i in range(turns):
        out.append(ChatMessage(ChatRole.USER, f"Question {i}: {FILLER}"))
        if i % 3 == 1:  # a turn with a tool call and its result between the question and the answer
            out.append(ChatMessage(ChatRole.ASSISTANT, "Checking.", channel="analysis"))
            out.append(
                ChatMessage(
                    ChatRole.ASSISTANT,
                    '{"city": "Oslo"}',
                    channel="commentary",
                    recipient="functions.get_weather",
                    content_type="<|constrain|>json",
                )
            )
            out.append(ChatMessage(ChatRole.TOOL, '{"temp": 3}', name="functions.get_weather"))
        out.append(ChatMessage(ChatRole.ASSISTANT, f"Answer {i}: {FILLER}", channel="final"))
    return out[:-1]  # the last question waits for its answer


def length(messages: Sequence[ChatMessage]) -> int:
    return len(render_prompt(messages, instructions="Be brief.", current_date=None))


@pytest.mark.parametrize("limit", [300, 600, 900, 1500])
def test_the_fewest_oldest_turns_go_and_the_prompt_fits(limit: int) -> None:
    messages = chat(12)
    fitted = fit_to_context(messages, length, limit)
    assert fitted.dropped_turns > 0 and length(fitted.messages) <= limit
    starts = turn_starts(messages)
    assert fitted.messages == tuple(messages[starts[fitted.dropped_turns] :])  # whole turns, oldest first
    assert fitted.messages[0].role is ChatRole.USER
    assert length(messages[starts[fitted.dropped_turns - 1] :]) > limit  # one turn fewer would not fit
    # A call is never kept without its result, nor a result without its call.
    recipients = [m for m in fitted.messages if m.recipient]
    results = [m for m in fitted.messages if m.role is ChatRole.TOOL]
    assert len(recipients) == len(results)


def test_a_chat_that_fits_is_sent_whole() -> None:
    messages = chat(3)
    fitted = fit_to_context(messages, length, length(messages))
    assert fitted.dropped_turns == 0 and fitted.messages == tuple(messages)


def test_the_question_being_answered_is_never_left_out() -> None:
    messages = [*chat(4), ChatMessage(ChatRole.USER, FILLER * 20)][:-1]
    messages.append(ChatMessage(ChatRole.USER, FILLER * 20))  # a last question longer than the limit
    fitted = fit_to_context(messages, length, 500)
    assert fitted.dropped_turns == 0 and fitted.messages == tuple(messages)  # the request fails as before


def test_the_answer_keeps_a_quarter_of_the_context_or_its_max_tokens() -> None:
    assert answer_room(8192, 100_000) == 2048 and answer_room(8192, 500) == 500


def test_a_growing_chat_keeps_its_cut_so_prompts_start_alike() -> None:
    window = ContextWindow()
    context, max_tokens = 2048, 4096  # room for the answer: 512 tokens, so prompts up to 1,536
    messages = chat(14)
    first = window.fit(messages, length, context=context, max_tokens=max_tokens)
    assert first.dropped_turns > 0 and length(first.messages) <= context // 2  # cut deep: room to grow
    prompts = [render_prompt(first.messages, instructions="Be brief.", current_date=None)]
    grown = list(messages)
    cuts = {first.dropped_turns}
    for i in range(14, 22):  # the answer comes, then the next question: the chat grows a turn at a time
        grown += [ChatMessage(ChatRole.ASSISTANT, f"Answer: {FILLER}", channel="final")]
        grown += [ChatMessage(ChatRole.USER, f"Question {i}: {FILLER}")]
        fitted = window.fit(grown, length, context=context, max_tokens=max_tokens)
        assert length(fitted.messages) <= context - answer_room(context, max_tokens)
        cuts.add(fitted.dropped_turns)
        prompts.append(render_prompt(fitted.messages, instructions="Be brief.", current_date=None))
    # Most requests kept the cut of the one before: their prompts start with it (a reused prefix)...
    # (The earlier prompt ends with "<|start|>assistant", which the answer's own header follows.)
    kept_prefix = sum(1 for a, b in itertools.pairwise(prompts) if b[: len(a) - 2] == a[:-2])
    assert kept_prefix >= 6, kept_prefix
    # ...and the cut moved only when the kept part no longer left the answer its room.
    assert 2 <= len(cuts) <= 3


def test_an_edited_earlier_message_is_cut_afresh() -> None:
    window = ContextWindow()
    messages = chat(14)
    first = window.fit(messages, length, context=2048, max_tokens=4096)
    edited = [ChatMessage(ChatRole.USER, "Another first question."), *messages[1:]]
    again = window.fit(edited, length, context=2048, max_tokens=4096)
    assert again.messages == first.messages and again.dropped_turns == first.dropped_turns  # the same cut, found anew
    short = window.fit(chat(2), length, context=2048, max_tokens=4096)
    assert short.dropped_turns == 0  # another, short chat: sent whole
