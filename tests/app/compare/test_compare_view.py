"""Compare mode in the window: three efforts streaming side by side as one batch, their numbers and summary, cancel,
history (save, reopen, export, continue a column as a chat). The scripted test double runs behind the real engine
thread, batch generator and harmony parser; the last test drives a whole comparison on the real demo model."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage, UserBubble
from gpt_oss_desktop.app.compare.compare_view import CompareView
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.history.sidebar import KIND_ROLE
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.events import Done, FinishReason
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.conftest import load, next_emission, scripted_engine, until

logger = logging.getLogger(__name__)

PROMPT = "Is 91 prime?"
LOW = harmony_reply("91 = 7 x 13.", "No.")
MEDIUM = harmony_reply("Check small primes: 91 / 7 = 13.", "**No**")
HIGH_THOUGHT = "Try 2, 3, 5: no. Try 7: 7 x 13 = 91, so it has divisors. " * 3
HIGH = harmony_reply(HIGH_THOUGHT, "Yes, it is prime.")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def enter_compare_mode(window: MainWindow) -> CompareView:
    # Greedy: the scripted double's one-hot logits give the same tokens, without sampling 201,088 probabilities.
    window.composer.sampling.temperature.setValue(0.0)
    QTest.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.compare_mode and window.compare.isVisible() and not window.composer.isVisible()
    return window.compare


def type_and_compare(view: CompareView, text: str) -> None:
    QTest.keyClicks(view.prompt, text)
    QTest.keyClick(view.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def test_compare_streams_three_columns_with_numbers_and_summary(run: Any, make_window: Any, store: ChatStore) -> None:
    backend, model = scripted_engine(LOW, MEDIUM, HIGH, token_seconds=0.005)
    window = make_window(backend, store)

    async def body() -> tuple[Done, ...]:
        await load(window)
        view = enter_compare_mode(window)
        type_and_compare(view, PROMPT)
        assert view.running and window.busy and view.stop_button.isVisible()
        # Live: the high column is still thinking while the low one has already answered.
        await until(lambda: view.columns[0].answer_text == "No." and view.columns[2].reasoning.deltas > 3)
        assert view.columns[2].answer_text == "" and view.columns[2].reasoning.header.text() == "Thinking…"
        assert view.columns[2].reasoning_tokens.text().startswith("~")
        dones: tuple[Done, ...] = await next_emission(view.finished)
        return dones

    dones = run(body())
    view = window.compare
    assert not view.running and not window.busy and view.run_button.isVisible()
    assert all(d.finish_reason is FinishReason.STOP for d in dones)
    for column, done, script in zip(view.columns, dones, (LOW, MEDIUM, HIGH), strict=True):
        assert list(done.completion_ids) == script
        assert column.reasoning_tokens.text() == str(done.reasoning_tokens)
        assert column.answer_tokens.text() == str(done.final_tokens)
        assert column.first_answer.text().endswith(" s") and column.total_time.text().endswith(" s")
        assert float(column.tokens_per_second.text()) > 0
        assert column.continue_button.isEnabled()
        assert not column.reasoning.expanded  # collapsed once its answer started
    assert [c.answer_text for c in view.columns] == ["No.", "**No**", "Yes, it is prime."]
    # One batch: three prefills, then decode steps shared by all running columns.
    assert len(model.prompts) == 3 and model.decode_batches[0] == 3 and model.decode_batches[-1] == 1
    rendered = [get_encoding().decode(p) for p in model.prompts]
    assert all(f"Reasoning: {e}" in r for r, e in zip(rendered, ("low", "medium", "high"), strict=True))
    # Summary: low and medium agree once normalised ("No." vs "**No**"); high took more tokens and time.
    summary = view.summary_result
    assert summary is not None and summary.groups == (("low", "medium"), ("high",))
    tokens = [d.completion_tokens for d in dones]
    assert summary.token_ratio == pytest.approx(tokens[2] / tokens[0])
    assert summary.time_ratio is not None and summary.time_ratio > 1
    assert view.summary.text().startswith("low and medium agree; high differs · high took ")

    # Saved as a comparison entry, listed (and marked) in the sidebar.
    assert view.chat_id is not None
    chat = store.get_chat(view.chat_id)
    assert chat.kind == "comparison" and chat.title == PROMPT and chat.model
    answers = [m for m in chat.messages if m.role == "assistant"]
    assert [(m.column, m.effort, m.text, m.complete) for m in answers] == [
        (0, "low", "No.", True), (1, "medium", "**No**", True), (2, "high", "Yes, it is prime.", True)
    ]  # fmt: skip
    assert answers[2].analysis == HIGH_THOUGHT
    assert answers[2].stats["reasoning_tokens"] == dones[2].reasoning_tokens
    assert answers[2].stats["completion_tokens"] == dones[2].completion_tokens
    assert answers[2].stats["total_s"] > answers[0].stats["total_s"] > 0
    assert window.sidebar is not None
    item = window.sidebar.item_for(view.chat_id)
    assert item is not None and item.data(KIND_ROLE) == "comparison" and not item.icon().isNull()
    assert item.toolTip().startswith("Effort comparison")


def test_export_reopen_and_continue_from_a_column(run: Any, make_window: Any, store: ChatStore, tmp_path: Path) -> None:
    backend, _ = scripted_engine(LOW, MEDIUM, HIGH, harmony_reply("Follow-up.", "Still 7 x 13."))
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        view = enter_compare_mode(window)
        await next_emission(view.finished, lambda: view.start(PROMPT))

    run(body())
    view = window.compare
    comparison_id = view.chat_id
    assert comparison_id is not None

    markdown = tmp_path / "comparison.md"
    assert view.export_markdown(markdown)
    text = markdown.read_text(encoding="utf-8")
    assert oct(markdown.stat().st_mode & 0o777) == "0o600"  # private like the chat it comes from
    assert text.startswith(f"# {PROMPT}") and "Effort comparison" in text
    assert "| First answer token (s) |" in text and "| low |" in text and "| high |" in text
    assert "low and medium agree; high differs · high took" in text
    assert "Yes, it is prime." in text and HIGH_THOUGHT.strip() in text

    # Back to the chat, then reopen the comparison from the sidebar: compare mode with the saved columns.
    window.set_compare_mode(False)
    view.clear()
    assert window.sidebar is not None
    window.sidebar.list.setCurrentItem(window.sidebar.item_for(comparison_id))
    assert window.compare_mode and view.chat_id == comparison_id
    assert [c.answer_text for c in view.columns] == ["No.", "**No**", "Yes, it is prime."]
    assert view.columns[2].reasoning.text() == HIGH_THOUGHT
    # A comparison has no later prompt to leave reasoning out of: no "not sent to model" in its columns.
    assert all(c.reasoning.not_sent.isHidden() for c in view.columns)
    assert view.summary.text().startswith("low and medium agree")
    assert view.prompt.toPlainText() == PROMPT

    # Continue from the high column: a new normal chat holding the prompt and that answer, ready to go on.
    view.columns[2].continue_button.click()
    assert not window.compare_mode and window.composer.isVisible()
    assert window.chat_id is not None and window.chat_id != comparison_id
    continued = store.get_chat(window.chat_id)
    assert continued.kind == "chat" and continued.meta["continued_from"] == {"chat_id": comparison_id, "column": 2}
    assert [type(w) for w in window.chat.messages()] == [UserBubble, AssistantMessage]
    assert [t.user for t in window.conversation.turns] == [PROMPT]
    assert window.conversation.turns[0].answer == "Yes, it is prime."

    async def follow_up() -> None:
        await next_emission(window.generation_finished, lambda: window.send_message("Why?"))

    run(follow_up())
    assert [m.text for m in store.get_chat(window.chat_id).messages][-2:] == ["Why?", "Still 7 x 13."]


def test_include_the_current_chat_as_context(run: Any, make_window: Any, store: ChatStore) -> None:
    backend, model = scripted_engine(harmony_reply("Hello.", "Hi there."), LOW, MEDIUM, HIGH)
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        await next_emission(window.generation_finished, lambda: window.send_message("My name is Ada."))
        view = enter_compare_mode(window)
        view.include_context.setChecked(True)
        await next_emission(view.finished, lambda: view.start(PROMPT))

    run(body())
    batch_prompts = [get_encoding().decode(p) for p in model.prompts[1:]]
    assert len(batch_prompts) == 3 and all("My name is Ada." in p and "Hi there." in p for p in batch_prompts)
    view = window.compare
    assert view.chat_id is not None
    saved = store.get_chat(view.chat_id)
    assert [(m.position, m.column, m.role) for m in saved.messages] == [
        (0, 0, "user"), (1, 0, "assistant"), (2, 0, "user"), (3, 0, "assistant"), (3, 1, "assistant"),
        (3, 2, "assistant"),
    ]  # fmt: skip
    assert saved.meta["include_context"] is True and saved.messages[1].text == "Hi there."
    # The chat itself is untouched by the comparison.
    assert window.chat_id is not None and window.chat_id != view.chat_id
    assert [m.text for m in store.get_chat(window.chat_id).messages] == ["My name is Ada.", "Hi there."]
    # Reopened, the comparison says it was asked with context, and shows that context on hover.
    assert view.show_saved(saved)
    assert view.context_note.isVisible() and "2 earlier messages" in view.context_note.text()
    assert "My name is Ada." in view.context_note.toolTip()
    view.clear()
    assert not view.context_note.isVisible()


def test_escape_stops_all_three_columns(run: Any, make_window: Any, store: ChatStore) -> None:
    long = harmony_reply("thinking " * 400, "never")
    backend, _ = scripted_engine(long, long, long, token_seconds=0.005)
    window = make_window(backend, store)

    async def body() -> tuple[Done, ...]:
        await load(window)
        view = enter_compare_mode(window)
        view.start(PROMPT)
        await until(lambda: all(c.reasoning.deltas >= 3 for c in view.columns))
        dones: tuple[Done, ...] = await next_emission(view.finished, lambda: QTest.keyClick(window, Qt.Key.Key_Escape))
        return dones

    dones = run(body())
    assert all(d.finish_reason is FinishReason.CANCELLED for d in dones)
    assert all(d.completion_tokens < 200 for d in dones)
    view = window.compare
    # isHidden(): in a narrow window the columns are tabs, and only the current tab's column is visible.
    assert all(c.note.text() == "Stopped" and not c.note.isHidden() for c in view.columns)
    assert not window.busy and view.run_button.isVisible()
    assert window.composer.send_button.isVisibleTo(window.composer)
    assert view.chat_id is not None
    answers = [m for m in store.get_chat(view.chat_id).messages if m.role == "assistant"]
    assert [m.stats["finish_reason"] for m in answers] == ["cancelled"] * 3
    assert all(m.analysis.startswith("thinking thinking") for m in answers)


def test_compare_waits_for_a_model_and_blocks_chat_while_running(run: Any, make_window: Any) -> None:
    backend, _ = scripted_engine(LOW, MEDIUM, HIGH, token_seconds=0.005)
    window = make_window(backend)  # no store: nothing is saved, export and continue work from memory

    async def body() -> None:
        view = enter_compare_mode(window)
        assert not view.run_button.isEnabled() and view.start(PROMPT) is None
        await load(window)
        assert view.run_button.isEnabled() and window.compare_mode
        view.start(PROMPT)
        assert window.send_message("a chat message meanwhile") is None and window.busy
        assert view.start("twice") is None
        await next_emission(view.finished)

    run(body())
    view = window.compare
    assert view.chat_id is None and view.record is not None
    thread = view.column_thread(0)
    assert [(m.role, m.text) for m in thread] == [("user", PROMPT), ("assistant", "No.")]
    view.columns[0].continue_button.click()
    assert not window.compare_mode and window.conversation.turns[0].answer == "No."
    assert window.chat_id is None


def test_real_engine_whole_comparison_on_the_demo_model(
    run: Any, make_window: Any, store: ChatStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-qt drives a comparison end to end on the real demo checkpoint (real loader, model, batch decode)."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    window = make_window(LocalEngine(max_context=1024), store)
    window.composer.sampling.temperature.setValue(0.0)
    window.composer.sampling.max_tokens.setValue(200)

    async def body() -> tuple[tuple[Done, ...], Done]:
        await next_emission(window.model_loaded, lambda: window.load_model("demo"), timeout=60)
        view = enter_compare_mode(window)
        type_and_compare(view, "What is 17 + 25?")
        compared: tuple[Done, ...] = await next_emission(view.finished, timeout=120)
        # The same request as a normal chat at high effort (one sequence): batched greedy must match it exactly.
        window.set_compare_mode(False)
        window.composer.set_effort(window.composer.effort.itemData(2))
        single: Done = await next_emission(
            window.generation_finished, lambda: window.send_message("What is 17 + 25?"), timeout=120
        )
        return compared, single

    compared, single = run(body(), timeout=240)
    view = window.compare
    assert all(d.finish_reason is FinishReason.STOP for d in compared)
    # The demo reasons for longer at higher effort.
    assert compared[0].reasoning_tokens < compared[1].reasoning_tokens < compared[2].reasoning_tokens
    assert compared[2].completion_ids == single.completion_ids
    for column, done in zip(view.columns, compared, strict=True):
        assert column.reasoning_tokens.text() == str(done.reasoning_tokens) and column.answer_text
    assert view.summary_result is not None and view.summary_result.token_ratio is not None
    assert view.summary_result.token_ratio > 1
    logger.info("demo comparison: %s", view.summary.text())
