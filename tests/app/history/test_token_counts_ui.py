"""Token counts of saved answers in the window: a count the history file does not hold reads as not recorded, never
as 0, and a recorded count (a real 0 included) reads as before. Real SQLite files, real widgets."""

from __future__ import annotations

from typing import Any

from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.stats import readable
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.shell.main_window import MainWindow
from tests.app.conftest import scripted_engine

# About a megabyte of reasoning, as a runaway answer leaves it: the header above it must still not claim 0 tokens.
RUNAWAY_REASONING = "Let me check the forecast once more.\n" * 30_000


def opened(make_window: Any, store: ChatStore, chat_id: int) -> list[AssistantMessage]:
    """The answers of chat ``chat_id`` as a window over ``store`` shows them once the chat is picked in the sidebar."""
    window: MainWindow = make_window(scripted_engine()[0], store)
    bar = window.sidebar
    assert bar is not None
    bar.list.setCurrentItem(bar.item_for(chat_id))  # as a click or an arrow key would
    assert window.chat_id == chat_id
    return [widget for widget in window.chat.messages() if isinstance(widget, AssistantMessage)]


def test_answers_saved_without_counts_say_so_instead_of_zero(make_window: Any, store: ChatStore) -> None:
    chat = store.create_chat("Saved without counts")
    store.add_message(chat.id, "user", "Will it rain?")
    # As an older version, an import or a crash leaves them: no stats at all.
    store.add_message(chat.id, "assistant", "Probably.", analysis=RUNAWAY_REASONING, effort="high")
    store.add_message(chat.id, "user", "And tomorrow?")
    store.add_message(chat.id, "assistant", "Sun", analysis="Look at the map.", effort="low", complete=False)

    finished, cut_off = opened(make_window, store, chat.id)

    assert finished.reasoning.text() == RUNAWAY_REASONING and not finished.reasoning.isHidden()
    assert finished.reasoning.header.text() == "Reasoning"
    assert readable(finished.stats.text()) == "tokens not recorded"
    # Cut off mid-answer: its line says so (as before), and its reasoning claims no count either.
    assert cut_off.reasoning.header.text() == "Reasoning" and not cut_off.reasoning.isHidden()
    assert readable(cut_off.stats.text()) == "interrupted · partial answer"


def test_recorded_counts_and_real_zeros_read_as_before(make_window: Any, store: ChatStore) -> None:
    chat = store.create_chat("Saved with counts")
    store.add_message(chat.id, "user", "Hi")
    # Answered straight away: a real 0 reasoning tokens, and no reasoning to show.
    straight = {"reasoning_tokens": 0, "final_tokens": 12, "ttft": 0.05, "answer_s": 0.4, "finish_reason": "stop"}
    store.add_message(chat.id, "assistant", "Hello!", effort="low", stats=straight)
    store.add_message(chat.id, "user", "Is 91 prime?")
    counted = {
        "reasoning_tokens": 1843,
        "final_tokens": 96,
        "ttft": 0.21,
        "thinking_s": 12.34,
        "answer_s": 2.5,
        "finish_reason": "stop",
    }
    store.add_message(chat.id, "assistant", "No: 7 × 13.", analysis="Try 7.", effort="high", stats=counted)
    store.add_message(chat.id, "user", "Sure?")
    zero_with_text = {"reasoning_tokens": 0, "final_tokens": 3, "finish_reason": "stop"}
    store.add_message(chat.id, "assistant", "Yes.", analysis="(empty)", effort="low", stats=zero_with_text)

    answered, thought, zero = opened(make_window, store, chat.id)

    assert answered.reasoning.isHidden()
    assert readable(answered.stats.text()).startswith("0 reasoning · 12 answer tokens · first token 0.05 s")
    assert thought.reasoning.header.text() == "Thought for 12.3 s · 1,843 tokens"
    assert readable(thought.stats.text()).startswith("1,843 reasoning · 96 answer tokens · first token 0.21 s")
    assert zero.reasoning.header.text() == "Reasoning · 0 tokens"
    assert readable(zero.stats.text()) == "0 reasoning · 3 answer tokens"
