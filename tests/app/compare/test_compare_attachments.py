"""Attached files in the effort comparison's prompt, with real widgets offscreen, real files in tmp_path, the real
engine thread and batch generator over the ScriptedModel double, and the history in a real SQLite file: the paperclip
and drops, the chips, refusals, the context check, what each column's model reads, what is saved, reopened and
continued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from gpt_oss_desktop.app.chat.attachments import MAX_ATTACHMENT_BYTES, describe
from gpt_oss_desktop.app.chat.chat_view import UserBubble
from gpt_oss_desktop.app.compare.compare_view import CompareView
from gpt_oss_desktop.app.history import ChatStore, message_text
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.conftest import load, next_emission, scripted_engine, until
from tests.app.dropped_files import NOTES, TABLE, drop, write

PROMPT = "Which animal is heavier?"
LOW = harmony_reply("50 > 20.", "The capybara.")
MEDIUM = harmony_reply("Read the table: 50 and 20.", "The capybara, at 50 kg.")
HIGH = harmony_reply("The table says capybara 50, beaver 20; the notes agree it is the largest.", "The capybara.")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def compare_mode(window: MainWindow) -> CompareView:
    # Greedy: the scripted double's one-hot logits give the same tokens, without sampling 201,088 probabilities.
    window.composer.sampling.temperature.setValue(0.0)
    QTest.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.compare_mode and window.compare.isVisible()
    return window.compare


def user_turns(model: ScriptedModel, first: int = 0) -> list[str]:
    """Each prompt the model was given from ``first`` on, decoded."""
    return [get_encoding().decode(prompt) for prompt in model.prompts[first:]]


def test_files_reach_every_column_and_are_saved_reopened_and_continued(
    run: Any, make_window: Any, store: ChatStore, tmp_path: Path
) -> None:
    backend, model = scripted_engine(LOW, MEDIUM, HIGH, harmony_reply("Again.", "Still the capybara."))
    window = make_window(backend, store)
    notes, table = write(tmp_path, "notes.md", NOTES), write(tmp_path, "table.csv", TABLE)

    async def body() -> None:
        await load(window)
        view = compare_mode(window)
        assert view.files.button.accessibleName() == "Attach files" and view.files.button.isVisible()
        assert view.files.bar.isHidden()
        view.attach_files([notes])  # what the paperclip's file dialog hands on
        await until(lambda: len(view.attachments) == 1)
        # Dropped on the prompt (its viewport takes the drag): attached, not pasted as a file:// address.
        assert drop(view.prompt.viewport(), [table]).isAccepted()
        await until(lambda: len(view.attachments) == 2)
        assert view.prompt.toPlainText() == ""
        assert view.files.bar.isVisible() and all(chip.isVisible() for chip in view.files.bar.chips)
        assert [chip.label.text() for chip in view.files.bar.chips] == [describe(a) for a in view.attachments]
        QTest.keyClicks(view.prompt, PROMPT)
        await next_emission(view.finished, lambda: QTest.keyClick(view.prompt, Qt.Key.Key_Return))

    run(body())
    view = window.compare
    files = view.attachments
    assert [f.name for f in files] == ["notes.md", "table.csv"]
    # Every effort read the prompt with its files, exactly as a chat's question is sent.
    sent = f"<|start|>user<|message|>{message_text(PROMPT, files)}<|end|>"
    prompts = user_turns(model)
    assert len(prompts) == 3 and all(sent in p for p in prompts)
    assert all(f"Reasoning: {e}" in p for p, e in zip(prompts, ("low", "medium", "high"), strict=True))
    # The prompt and its chips stay for the next comparison, as the prompt's text does.
    assert view.prompt.toPlainText() == PROMPT and view.files.bar.isVisible()
    # Saved with the comparison's question: the names, never the folder.
    assert view.chat_id is not None
    comparison_id = view.chat_id
    saved = store.get_chat(comparison_id)
    question = next(m for m in saved.messages if m.role == "user")
    assert (question.text, question.attachments, saved.title) == (PROMPT, files, PROMPT)
    assert str(tmp_path) not in store.export_json(comparison_id)
    markdown = tmp_path / "comparison.md"
    assert view.export_markdown(markdown)
    assert message_text(PROMPT, files) in markdown.read_text(encoding="utf-8")

    # Reopened from the sidebar, the prompt comes back with its chips; an older comparison without files shows none.
    window.set_compare_mode(False)
    view.clear()
    view.files.set_attachments(())
    view.prompt.clear()
    assert window.sidebar is not None
    window.sidebar.list.setCurrentItem(window.sidebar.item_for(comparison_id))
    assert window.compare_mode and view.chat_id == comparison_id
    assert view.prompt.toPlainText() == PROMPT and view.attachments == files
    assert view.show_saved(store.create_comparison("Is 91 prime?"))
    assert view.attachments == () and view.files.bar.isHidden()
    assert view.show_saved(store.get_chat(comparison_id))

    # Continue from the high column: the files go with the question, and are read again by the next answer.
    view.columns[2].continue_button.click()
    assert not window.compare_mode and window.chat_id is not None and window.chat_id != comparison_id
    assert store.get_chat(window.chat_id).messages[0].attachments == files
    assert window.conversation.turns[0].attachments == files
    (bubble,) = [w for w in window.chat.messages() if isinstance(w, UserBubble)]
    assert [chip.attachment for chip in bubble.chips] == list(files)

    async def follow_up() -> None:
        await next_emission(window.generation_finished, lambda: window.send_message("Are you sure?"))

    run(follow_up())
    assert sent in user_turns(model, 3)[0] and "Are you sure?" in user_turns(model, 3)[0]


def test_files_alone_without_a_store_are_compared_and_continued_from_memory(
    run: Any, make_window: Any, tmp_path: Path
) -> None:
    backend, model = scripted_engine(LOW, MEDIUM, HIGH)
    window = make_window(backend)  # no history: export and continue work from the comparison in memory

    async def body() -> None:
        await load(window)
        view = compare_mode(window)
        assert view.start() is None  # nothing typed, nothing attached
        assert drop(view, [write(tmp_path, "table.csv", TABLE)]).isAccepted()  # anywhere on the view
        await until(lambda: len(view.attachments) == 1)
        await next_emission(view.finished, view.run_button.click)

    run(body())
    view = window.compare
    (table,) = view.attachments
    assert all(f"<|start|>user<|message|>{message_text('', [table])}<|end|>" in p for p in user_turns(model))
    assert view.record is not None and view.record.title == "table.csv"  # named after its file, as a chat is
    question, _answer = view.column_thread(0)
    assert (question.text, question.attachments) == ("", (table,))
    view.columns[0].continue_button.click()
    assert not window.compare_mode and window.chat_id is None
    assert window.conversation.turns[0].attachments == (table,)


def test_files_that_cannot_be_attached_are_named_and_nothing_else_changes(
    run: Any, make_window: Any, tmp_path: Path
) -> None:
    backend, model = scripted_engine(LOW, MEDIUM, HIGH)
    window = make_window(backend)
    good = write(tmp_path, "notes.md", NOTES)
    binary = write(tmp_path, "photo.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    big = write(tmp_path, "huge.log", b"z" * (MAX_ATTACHMENT_BYTES + 10))

    async def body() -> None:
        await load(window)
        view = compare_mode(window)
        view.prompt.setPlainText(PROMPT)
        view.attach_files([binary, good, big])
        # Asked before the files are read: nothing runs, and the notice says to wait.
        assert view.start() is None and not view.running
        assert view.files.notice.text() == "Wait a moment: the attached files are still being read."
        await until(lambda: view.files.reader.pending == 0)
        assert [a.name for a in view.attachments] == ["notes.md"]
        assert view.files.notice.isVisible() and view.files.notice.accessibleName() == "Attachment notice"
        assert view.files.notice.text() == (
            "photo.png is not a text file (text in UTF-8, or UTF-16 with a byte-order mark, and PDFs can be attached); "
            "huge.log is 2,097,162 bytes: files of up to 2 MiB can be attached"
        )
        assert view.prompt.toPlainText() == PROMPT and model.prompts == []
        # A chip's remove button takes its file off the prompt.
        view.attach_files([write(tmp_path, "table.csv", TABLE)])
        await until(lambda: len(view.attachments) == 2)
        assert view.files.notice.isHidden()
        remove = view.files.bar.chips[0].remove_button
        assert remove is not None
        remove.click()
        await until(lambda: [a.name for a in view.attachments] == ["table.csv"])

    run(body())


def test_files_that_do_not_fit_the_context_are_named_before_comparing(
    run: Any, make_window: Any, store: ChatStore, tmp_path: Path
) -> None:
    backend, model = scripted_engine(harmony_reply("Long.", "Noted."), LOW, MEDIUM, HIGH)  # a context of 4,096 tokens
    window = make_window(backend, store)
    long_chat = "The capybara is large. " * 300  # about 2,100 tokens

    async def body() -> None:
        await load(window)
        await next_emission(window.generation_finished, lambda: window.send_message(long_chat))
        view = compare_mode(window)
        view.prompt.setPlainText(PROMPT)
        # More than the whole context: refused every time, and nothing is lost.
        view.attach_files([write(tmp_path, "book.md", NOTES * 400)])
        await until(lambda: len(view.attachments) == 1)
        for _ in range(2):
            assert view.start() is None
            assert "more than the model's whole context (4,096): remove some" in view.files.notice.text()
        assert len(view.attachments) == 1 and view.prompt.toPlainText() == PROMPT
        # About 2,100 tokens: they fit an empty context, but not what the included chat leaves of it.
        view.files.set_attachments(())
        view.attach_files([write(tmp_path, "notes.md", NOTES * 80)])
        await until(lambda: len(view.attachments) == 1)
        view.include_context.setChecked(True)
        assert view.start() is None
        notice = view.files.notice.text()
        assert "of the context are left: untick “Include the current chat”, remove some" in notice, notice
        assert "compare again to compare anyway" in notice
        assert len(model.prompts) == 1  # the chat's answer only: nothing was compared
        # Without the chat they fit, and go.
        view.include_context.setChecked(False)
        await next_emission(view.finished, view.start)
        assert view.files.notice.isHidden()

    run(body())
    prompts = user_turns(model, 1)
    assert len(prompts) == 3 and all("Attached file: notes.md" in p and long_chat not in p for p in prompts)
