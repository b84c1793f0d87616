"""Reasoning across turns, through the real engine thread, generator and harmony parser (the scripted double):
turn two's reasoning is counted apart from its answer, and a turn answered without reasoning (as the demo model does
on later turns: it was trained on single-turn chats only) never claims "Thought for … · 0 tokens"."""

from __future__ import annotations

from typing import Any

from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.stats import readable
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.events import Done
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from gpt_oss_desktop.engine.vocab import CHANNEL, END, MESSAGE, RETURN, get_encoding
from tests.app.conftest import load, next_emission, scripted_engine, until

FIRST = harmony_reply("Add the tens, then the ones: 27 + 58 = 85.", "27 + 58 = 85.")
SECOND_THOUGHT = 'Spell it: s t r a w b e r r y. The letter "r" is at 3, 8 and 9.'
SECOND = harmony_reply(SECOND_THOUGHT, "3.")


def answer_only(text: str) -> list[int]:
    """A reply straight on the final channel, with no reasoning message before it."""
    enc = get_encoding()
    return [CHANNEL, *enc.encode("final"), MESSAGE, *enc.encode(text), RETURN]


def answers(window: MainWindow) -> list[AssistantMessage]:
    return [w for w in window.chat.messages() if isinstance(w, AssistantMessage)]


def test_turn_two_counts_its_reasoning_apart_from_its_answer(run: Any, make_window: Any) -> None:
    backend, _ = scripted_engine(FIRST, SECOND)
    window: MainWindow = make_window(backend)
    window.composer.sampling.temperature.setValue(0.0)

    async def body() -> tuple[Done, Done]:
        await load(window)
        first: Done = await next_emission(window.generation_finished, lambda: window.send_message("27 + 58?"))
        second: Done = await next_emission(window.generation_finished, lambda: window.send_message("r in strawberry?"))
        return first, second

    first, second = run(body())
    enc = get_encoding()
    # The engine's counts: the analysis message (header, text, <|end|>) is reasoning; the final one is the answer.
    expected_reasoning = len([CHANNEL, *enc.encode("analysis"), MESSAGE, *enc.encode(SECOND_THOUGHT), END])
    assert second.reasoning_tokens == expected_reasoning > 0
    assert second.final_tokens > 0 and second.reasoning_tokens + second.final_tokens == second.completion_tokens
    message = answers(window)[1]
    assert message.reasoning.isVisible() and message.reasoning.text() == SECOND_THOUGHT
    assert message.reasoning.header.text().endswith(f"· {second.reasoning_tokens} tokens")
    assert f"{second.reasoning_tokens} reasoning" in readable(message.stats.text())
    assert first.reasoning_tokens > 0 and answers(window)[0].reasoning.not_sent.isVisible()


def test_a_turn_answered_without_reasoning_shows_no_thinking_header(run: Any, make_window: Any) -> None:
    backend, _ = scripted_engine(FIRST, answer_only("It is 85."), token_seconds=0.02)
    window: MainWindow = make_window(backend)
    window.composer.sampling.temperature.setValue(0.0)

    async def body() -> Done:
        await load(window)
        await next_emission(window.generation_finished, lambda: window.send_message("27 + 58?"))
        window.send_message("Are you sure?")
        message = answers(window)[1]
        await until(lambda: bool(message.answer_text))
        # Live, mid-answer: no panel claiming thought that never happened.
        assert not message.reasoning.isVisible() and "0 tokens" not in message.reasoning.header.text()
        done: Done = await next_emission(window.generation_finished)
        return done

    done = run(body())
    assert done.reasoning_tokens == 0 and done.final_tokens > 0
    message = answers(window)[1]
    assert not message.reasoning.isVisible() and "0 reasoning" in readable(message.stats.text())
