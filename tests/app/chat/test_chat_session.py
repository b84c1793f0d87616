"""ChatSession without any GUI: a plain asyncio loop, the real engine thread (LocalEngine) over the ScriptedModel test
double, and a real SQLite history in tmp_path. No QApplication is created here and PySide6 is not imported."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_session import (
    ChatListener,
    ChatSession,
    CompareRequest,
    LiveAnswer,
    SendRequest,
    stored_turn,
)
from gpt_oss_desktop.app.history import Attachment, ChatStore, HistoryError, Message, message_text
from gpt_oss_desktop.engine.events import Done, FinishReason
from gpt_oss_desktop.engine.harmony import ReasoningEffort, render_prompt
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply
from gpt_oss_desktop.engine.vocab import get_encoding

GREEDY = SamplingParams(temperature=0.0)  # the double's one-hot logits: the same tokens without sampling
SLOW_THOUGHT = "thinking hard " * 5
SLOW_ANSWER = "word " * 800


@pytest.fixture(scope="module", autouse=True)
def gui_thread_gc() -> None:
    """Replaces tests/app/conftest.py's fixture of that name, which needs a QApplication: nothing here is Qt."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


class Recorder(ChatListener):
    """Everything a session reports, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.reasoning: dict[int, str] = {}
        self.answers: dict[int, str] = {}
        self.finished: list[LiveAnswer] = []
        self.saved: list[Message] = []
        self.failures: list[str] = []
        self.ended: tuple[LiveAnswer, ...] | None = None

    def busy_changed(self, running: bool) -> None:
        self.events.append(f"busy {running}")

    def answer_started(self, answer: LiveAnswer) -> None:
        self.events.append(f"started {answer.effort.value}")

    def reasoning_added(self, answer: LiveAnswer, text: str) -> None:
        self.reasoning[answer.index] = self.reasoning.get(answer.index, "") + text

    def answer_added(self, answer: LiveAnswer, text: str) -> None:
        assert answer.first_answer_seconds is not None
        self.answers[answer.index] = self.answers.get(answer.index, "") + text

    def request_failed(self, error: str) -> None:
        self.failures.append(error)

    def answer_finished(self, answer: LiveAnswer) -> None:
        self.events.append("finished")
        self.finished.append(answer)

    def answer_saved(self, answer: LiveAnswer, record: Message) -> None:
        self.saved.append(record)

    def history_failed(self, what: str, error: HistoryError) -> None:
        self.failures.append(f"{what}: {error}")

    def run_finished(self, answers: tuple[LiveAnswer, ...]) -> None:
        self.events.append("ended")
        self.ended = answers


def drive(backend: LocalEngine, steps: Callable[[], Awaitable[None]], *, load: bool = True) -> None:
    """Run ``steps`` on a fresh asyncio loop (no Qt) with the scripted model loaded, then stop the engine."""

    async def body() -> None:
        if load:
            await backend.load("scripted")
        await steps()

    try:
        asyncio.run(asyncio.wait_for(body(), 30.0))
    finally:
        backend.close()


def engine(*scripts: list[int], **kwargs: Any) -> tuple[LocalEngine, ScriptedModel]:
    model = ScriptedModel(list(scripts), **kwargs)
    return LocalEngine(loader=lambda _ref, _progress: model, max_context=4096), model


async def until(condition: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


async def answered(task: asyncio.Task[None] | None) -> None:
    """Wait for an answer the session started (None would mean it refused to start one)."""
    assert task is not None
    await task


def rows(store: ChatStore, chat_id: int) -> list[tuple[int, str, str]]:
    return [(m.position, m.role, m.text) for m in store.get_chat(chat_id).messages]


def test_the_session_module_does_not_import_qt() -> None:
    modules = "gpt_oss_desktop.app.chat.chat_session, gpt_oss_desktop.app.chat.comparison_record"
    listed = (
        f"import sys, {modules}; print(*sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'qasync')))"
    )
    imported = subprocess.check_output([sys.executable, "-P", "-c", listed], text=True, timeout=120)
    assert "PySide6" not in imported and imported.split() == []


def test_turns_are_stored_question_at_2i_answer_at_2i_plus_1() -> None:
    assert [(stored_turn(i).user, stored_turn(i).answer) for i in range(3)] == [(0, 1), (2, 3), (4, 5)]
    with pytest.raises(ValueError, match="negative"):
        stored_turn(-1)


def test_bad_requests_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="text"):
        SendRequest("   ")
    with pytest.raises(ValueError, match="effort"):
        CompareRequest("Is 91 prime?", efforts=())
    with pytest.raises(ValueError, match="a comparison needs a prompt or an attached file"):
        CompareRequest("   ")
    table = Attachment("table.csv", "name,kg\n", 8, 4)
    assert CompareRequest("", attachments=(table,)).attachments == (table,)  # files alone, as in a chat


def test_a_turn_streams_reasoning_and_answer_and_is_saved_with_its_stats(store: ChatStore) -> None:
    backend, _ = engine(harmony_reply("Two and two.", "4"), harmony_reply("Again.", "Still 4"))
    listener = Recorder()
    session = ChatSession(backend, store=store, listener=listener)

    async def steps() -> None:
        task = session.send(SendRequest("What is 2+2?", ReasoningEffort.LOW, GREEDY))
        assert task is not None and session.running
        assert session.send(SendRequest("twice")) is None  # one answer at a time
        await task
        await answered(session.send(SendRequest("Sure?", ReasoningEffort.HIGH, GREEDY)))

    drive(backend, steps)
    assert listener.events[:5] == ["started low", "busy True", "finished", "busy False", "ended"]
    assert listener.failures == [] and not session.running
    (first, second) = listener.finished
    assert first.reasoning == "Two and two." and first.answer == "4"
    assert first.done is not None and first.done.finish_reason is FinishReason.STOP
    assert first.stats is not None and first.stats.reasoning_tokens == first.done.reasoning_tokens > 0
    assert first.first_answer_seconds is not None and first.total_seconds is not None
    assert first.first_answer_seconds <= first.total_seconds
    assert session.chat_id is not None
    assert rows(store, session.chat_id) == [
        (0, "user", "What is 2+2?"), (1, "assistant", "4"), (2, "user", "Sure?"), (3, "assistant", "Still 4")
    ]  # fmt: skip
    saved = store.get_chat(session.chat_id).messages
    assert (saved[1].analysis, saved[1].effort, saved[1].complete) == ("Two and two.", "low", True)
    assert saved[1].stats["finish_reason"] == "stop" and saved[1].stats["reasoning_tokens"] > 0
    assert saved[3].effort == "high" and [r.id for r in listener.saved] == [saved[1].id, saved[3].id]
    assert second.answer == session.conversation.turns[1].answer == "Still 4"
    # Where each turn lives in the store is where the session says it does.
    for index in range(2):
        assert (saved[stored_turn(index).user].role, saved[stored_turn(index).answer].role) == ("user", "assistant")


def test_the_next_request_leaves_earlier_reasoning_out(store: ChatStore) -> None:
    backend, model = engine(harmony_reply("secret thought", "first answer"), harmony_reply("t", "second answer"))
    session = ChatSession(backend, store=store)
    session.set_instructions("Answer briefly.")

    async def steps() -> None:
        await answered(session.send(SendRequest("one", ReasoningEffort.LOW, GREEDY)))
        await answered(session.send(SendRequest("two", ReasoningEffort.MEDIUM, GREEDY)))

    drive(backend, steps)
    # The request the session builds for the last turn is the one the engine rendered and prefilled.
    request = session.build_request(ReasoningEffort.MEDIUM, GREEDY)
    assert request.instructions == "Answer briefly." and request.effort is ReasoningEffort.MEDIUM
    expected = render_prompt(request.messages, effort=request.effort, instructions=request.instructions)
    assert model.last_prompt == expected
    text = get_encoding().decode(model.last_prompt)
    assert "first answer" in text and "secret thought" not in text and "Answer briefly." in text


def test_regenerate_replaces_the_saved_answer_at_another_effort(store: ChatStore) -> None:
    backend, model = engine(harmony_reply("t1", "first"), harmony_reply("t2", "regenerated"))
    listener = Recorder()
    session = ChatSession(backend, store=store, listener=listener)

    async def steps() -> None:
        await answered(session.send(SendRequest("question", ReasoningEffort.LOW, GREEDY)))
        await answered(session.regenerate(ReasoningEffort.HIGH, GREEDY))

    drive(backend, steps)
    assert session.chat_id is not None
    assert rows(store, session.chat_id) == [(0, "user", "question"), (1, "assistant", "regenerated")]
    assert store.get_chat(session.chat_id).messages[1].effort == "high"
    turn = session.conversation.turns[0]
    assert (turn.answer, turn.reasoning, turn.effort) == ("regenerated", "t2", ReasoningEffort.HIGH)
    assert "Reasoning: high" in get_encoding().decode(model.last_prompt)


def test_stop_mid_answer_saves_it_interrupted_then_stopped(store: ChatStore) -> None:
    # The engine is held inside one decode step, so the answer cannot end until the test releases it.
    release = threading.Event()
    model = ScriptedModel([harmony_reply(SLOW_THOUGHT, SLOW_ANSWER)], hold_after=40, release=release)
    backend = LocalEngine(loader=lambda _ref, _progress: model, max_context=4096)
    listener = Recorder()
    session = ChatSession(backend, store=store, listener=listener)

    async def steps() -> None:
        task = session.send(SendRequest("write a lot", ReasoningEffort.MEDIUM, GREEDY))
        assert task is not None and session.chat_id is not None
        await until(lambda: model.steps >= 40 and listener.answers.get(0, "") != "")
        # Left mid-answer: what has arrived is written at once, marked incomplete (a crash now keeps it).
        assert session.detach() is task and session.detached
        partial = store.get_chat(session.chat_id).messages[-1]
        assert partial.role == "assistant" and not partial.complete and partial.text.startswith("word")
        assert partial.analysis == SLOW_THOUGHT
        release.set()
        await task

    try:
        drive(backend, steps)
    finally:
        release.set()
    assert session.chat_id is not None
    record = store.get_chat(session.chat_id).messages[-1]
    assert record.complete and record.stats["finish_reason"] == "cancelled"
    assert record.text.startswith("word word") and len(record.text) < len(SLOW_ANSWER)
    assert record.stats["final_tokens"] > 0 and record.analysis == SLOW_THOUGHT
    assert session.conversation.turns[0].answer == record.text
    # A session opened on that chat later takes the final copy as its last answer (the position it is stored at).
    reopened = ChatSession(backend, store=store)
    reopened.chat_id = session.chat_id
    reopened.restore(store.get_chat(session.chat_id).thread())
    assert reopened.accept_saved_answer(record) is reopened.conversation.turns[0]
    assert reopened.accept_saved_answer(store.get_chat(session.chat_id).messages[0]) is None  # a question's row


def test_a_request_that_cannot_run_is_reported_and_the_question_kept(store: ChatStore) -> None:
    backend, _ = engine(harmony_reply("t", "a"))  # never loaded: the engine refuses the request
    listener = Recorder()
    session = ChatSession(backend, store=store, listener=listener)

    async def steps() -> None:
        await answered(session.send(SendRequest("hello?")))

    drive(backend, steps, load=False)
    assert listener.failures == ["no model is loaded"]
    assert listener.ended is not None and [a.done for a in listener.ended] == [None]
    assert session.chat_id is not None and rows(store, session.chat_id) == [(0, "user", "hello?")]


def test_a_comparison_runs_three_efforts_as_one_batch_and_saves_each(store: ChatStore) -> None:
    scripts = [harmony_reply("Hello.", "Hi there.")] + [
        harmony_reply(f"Thought {e}.", f"No ({e}).") for e in ("low", "medium", "high")
    ]
    backend, model = engine(*scripts)
    chat = ChatSession(backend, store=store)
    listener = Recorder()
    comparison = ChatSession(backend, store=store, listener=listener)

    async def steps() -> None:
        await answered(chat.send(SendRequest("My name is Ada.", ReasoningEffort.LOW, GREEDY)))
        comparison.add_context(chat.conversation.turns)
        await answered(comparison.compare(CompareRequest("Is 91 prime?", sampling=GREEDY)))

    drive(backend, steps)
    assert len(model.prompts) == 4 and 3 in model.decode_batches  # one batch of three after the chat's answer
    rendered = [get_encoding().decode(p) for p in model.prompts[1:]]
    assert all(
        f"Reasoning: {e}" in r and "My name is Ada." in r
        for r, e in zip(rendered, ("low", "medium", "high"), strict=True)
    )
    assert listener.ended is not None
    dones = [a.done for a in listener.ended]
    assert all(isinstance(d, Done) and d.finish_reason is FinishReason.STOP for d in dones)
    assert listener.answers == {0: "No (low).", 1: "No (medium).", 2: "No (high)."}
    assert listener.reasoning[2] == "Thought high."
    assert comparison.chat_id is not None and comparison.chat_id != chat.chat_id
    saved = store.get_chat(comparison.chat_id)
    assert saved.kind == "comparison" and saved.meta["include_context"] is True
    assert [(m.position, m.column, m.role, m.text, m.complete) for m in saved.messages] == [
        (0, 0, "user", "My name is Ada.", True), (1, 0, "assistant", "Hi there.", True),
        (2, 0, "user", "Is 91 prime?", True), (3, 0, "assistant", "No (low).", True),
        (3, 1, "assistant", "No (medium).", True), (3, 2, "assistant", "No (high).", True),
    ]  # fmt: skip
    assert [m.stats["total_s"] > 0 for m in saved.messages[3:]] == [True] * 3
    # The same comparison is kept in memory (export and continue without a store).
    assert comparison.comparison is not None
    assert [m.text for m in comparison.comparison.thread(2)] == [
        "My name is Ada.",
        "Hi there.",
        "Is 91 prime?",
        "No (high).",
    ]
    # The chat it took its context from is untouched.
    assert chat.chat_id is not None and rows(store, chat.chat_id) == [
        (0, "user", "My name is Ada."),
        (1, "assistant", "Hi there."),
    ]


def test_a_comparison_sends_its_files_to_every_effort_and_saves_them_with_its_prompt(store: ChatStore) -> None:
    files = (Attachment("table.csv", "name,kg\ncapybara,50\n", 20, 9), Attachment("a.py", "x = 1\n", 6, 4))
    backend, model = engine(*(harmony_reply(f"Thought {e}.", f"Capybara ({e}).") for e in ("low", "medium", "high")))
    comparison = ChatSession(backend, store=store, listener=Recorder())

    async def steps() -> None:
        await answered(comparison.compare(CompareRequest("Which is heavier?", sampling=GREEDY, attachments=files)))

    drive(backend, steps)
    sent = f"<|start|>user<|message|>{message_text('Which is heavier?', files)}<|end|>"
    assert len(model.prompts) == 3 and all(sent in get_encoding().decode(p) for p in model.prompts)
    assert comparison.chat_id is not None and comparison.comparison is not None
    question = store.get_chat(comparison.chat_id).messages[0]
    assert (question.role, question.text, question.attachments) == ("user", "Which is heavier?", files)
    # In memory too, for continuing a column without a store.
    assert comparison.comparison.thread(1)[0].attachments == files
