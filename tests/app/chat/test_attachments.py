"""Attaching text files to a message: reading them (size cap, encodings, refusals), the composer's chips with real
widgets (the Attach button's method, a real drop of file URLs, removing a chip), and what the model receives through
the real engine thread (ScriptedModel double) when a message with files is sent, regenerated, edited and continued
in a reopened chat, with the history in a real SQLite file."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLabel

from gpt_oss_desktop.app.chat.attachments import (
    MAX_ATTACHMENT_BYTES,
    AttachmentError,
    ContextRoom,
    FileTooLargeError,
    Fit,
    NotTextError,
    UnreadableFileError,
    count_tokens,
    describe,
    file_size,
    read_attachment,
)
from gpt_oss_desktop.app.chat.chat_view import UserBubble
from gpt_oss_desktop.app.chat.comparison_record import context_records
from gpt_oss_desktop.app.chat.composer import Composer, PromptEdit
from gpt_oss_desktop.app.chat.conversation import Conversation
from gpt_oss_desktop.app.history import Attachment, ChatStore, message_text
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.conftest import load, next_emission, scripted_engine, until
from tests.app.dropped_files import NOTES, TABLE, drop, write
from tests.helpers.pdf_files import pdf_bytes


def tokens(text: str) -> int:
    return len(get_encoding().encode(text, disallowed_special=()))


# -- reading --------------------------------------------------------------------------------------------------------


def test_a_utf8_file_is_read_with_its_name_size_and_tokens(tmp_path: Path) -> None:
    folder = tmp_path / "private folder"
    folder.mkdir()
    attachment = read_attachment(write(folder, "notes.md", NOTES))
    assert attachment == Attachment("notes.md", NOTES, len(NOTES.encode()), tokens(NOTES))
    assert describe(attachment) == f"notes.md · {len(NOTES.encode())} B · {tokens(NOTES)} tokens"
    assert "private folder" not in repr(attachment)  # the name only, never where it came from


@pytest.mark.parametrize(
    ("encoded", "kind"),
    [
        (codecs.BOM_UTF8 + "héllo wörld\n".encode(), "utf-8 with a byte-order mark"),
        ("héllo wörld\n".encode("utf-16"), "utf-16, the machine's order, with its mark"),
        (codecs.BOM_UTF16_LE + "héllo wörld\n".encode("utf-16-le"), "utf-16 little-endian"),
        (codecs.BOM_UTF16_BE + "héllo wörld\n".encode("utf-16-be"), "utf-16 big-endian"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_byte_order_marks_are_decoded_and_dropped(tmp_path: Path, encoded: bytes, kind: str) -> None:
    attachment = read_attachment(write(tmp_path, "greeting.txt", encoded))
    assert attachment.text == "héllo wörld\n", kind
    assert attachment.size == len(encoded)  # the file's own bytes, mark included


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # an image
        b"plain words then a NUL\x00 byte",
        "café au lait".encode("latin-1"),  # text, but not UTF-8
        codecs.BOM_UTF16_LE + b"\x00\xd8",  # a UTF-16 mark, then half a surrogate pair
        codecs.BOM_UTF32_LE + "hi".encode("utf-32-le"),  # UTF-32 (decodes as UTF-16 to a NUL first)
    ],
    ids=["png", "nul", "latin-1", "broken-utf-16", "utf-32"],
)
def test_what_is_not_utf8_or_utf16_text_is_refused(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(NotTextError) as info:
        read_attachment(write(tmp_path, "photo.png", content))
    assert (
        str(info.value)
        == "photo.png is not a text file (text in UTF-8, or UTF-16 with a byte-order mark, and PDFs can be attached)"
    )
    assert info.value.name == "photo.png"


def test_a_pdfs_text_is_attached_page_by_page_and_scans_are_refused(tmp_path: Path) -> None:
    data = pdf_bytes([["Rainfall rose 12% in 2024."], ["See table 3."]], title="Rain report")
    attachment = read_attachment(write(tmp_path, "report.pdf", data))
    assert attachment.text == "[Page 1]\nRainfall rose 12% in 2024.\n\n[Page 2]\nSee table 3."
    assert attachment.size == len(data) and attachment.tokens == count_tokens(attachment.text)
    # the model reads it as any attached file: named, its text fenced
    block = f"Attached file: report.pdf\n```\n{attachment.text}\n```"
    assert message_text("Summarise", [attachment]) == f"Summarise\n\n{block}"
    # found by its content, whatever its name says; and a ".pdf" that is not one is named as such
    assert read_attachment(write(tmp_path, "download", data)).text.startswith("[Page 1]")
    with pytest.raises(NotTextError, match=r"^fake\.pdf is not a PDF"):
        read_attachment(write(tmp_path, "fake.pdf", b"just text"))
    with pytest.raises(NotTextError, match=r"^scan\.pdf has no text in it \(a scan"):
        read_attachment(write(tmp_path, "scan.pdf", pdf_bytes([[], []])))
    # a PDF may be larger than a text file (fonts and pictures around its text)
    padded = pdf_bytes([["Rainfall rose 12% in 2024."]], padding=MAX_ATTACHMENT_BYTES + 10)
    assert read_attachment(write(tmp_path, "big.pdf", padded)).text.startswith("[Page 1]")


def test_a_file_over_the_cap_is_refused_naming_the_cap(tmp_path: Path) -> None:
    big = write(tmp_path, "server.log", b"x" * (MAX_ATTACHMENT_BYTES + 1))
    with pytest.raises(
        FileTooLargeError, match=r"^server\.log is 2,097,153 bytes: files of up to 2 MiB can be attached$"
    ):
        read_attachment(big)
    # Exactly the cap is fine, and a smaller cap is one argument away.
    lines = b"y" * 99 + b"\n"  # (a file of one unbroken run is refused for another reason: see below)
    edge = lines * (MAX_ATTACHMENT_BYTES // len(lines)) + b"z" * (MAX_ATTACHMENT_BYTES % len(lines))
    assert read_attachment(write(tmp_path, "edge.log", edge)).size == MAX_ATTACHMENT_BYTES
    with pytest.raises(FileTooLargeError, match="files of up to 10 B can be attached"):
        read_attachment(write(tmp_path, "eleven.txt", b"0123456789\n"), max_bytes=10)


def test_an_empty_file_is_attached_as_empty(tmp_path: Path) -> None:
    attachment = read_attachment(write(tmp_path, "empty.txt", b""))
    assert (attachment.text, attachment.size, attachment.tokens) == ("", 0, 0)
    assert message_text("", [attachment]) == "Attached file: empty.txt\n```txt\n\n```"


def test_folders_and_missing_files_are_refused_by_name_only(tmp_path: Path) -> None:
    folder = tmp_path / "secret-place" / "docs"
    folder.mkdir(parents=True)
    with pytest.raises(UnreadableFileError, match=r"^docs is a folder: attach the files in it instead$"):
        read_attachment(folder)
    with pytest.raises(UnreadableFileError) as info:
        read_attachment(tmp_path / "secret-place" / "gone.txt")
    assert str(info.value) == "gone.txt cannot be read: no such file or directory"
    assert "secret-place" not in str(info.value)


def test_a_long_run_of_one_letter_is_counted_not_a_crash() -> None:
    # One run this long overflows the tokenizer's stack (a Rust panic, not even an Exception) when encoded whole.
    text = "a" * MAX_ATTACHMENT_BYTES
    assert 0 < count_tokens(text) < len(text)
    # Cut at line ends, the count is the whole text's but for a token here and there at the cuts.
    whole = tokens(NOTES * 50)
    assert whole <= count_tokens(NOTES * 50) <= whole * 1.01
    assert count_tokens(NOTES) == tokens(NOTES)  # one piece: exact


def test_a_file_the_encoder_would_stall_on_is_refused_when_attached(tmp_path: Path) -> None:
    # 100,000 letters in a row: the model's tokenizer would take ~25 s to encode them (it is quadratic in such a
    # run), so the file is refused at once, by name, rather than freeze the answer later.
    path = tmp_path / "blob.txt"
    path.write_text("header\n" + "a" * 100_000 + "\n")
    with pytest.raises(NotTextError, match=r"cannot be read by the model: .*100,000 characters in a row"):
        read_attachment(path)


def test_the_fence_is_longer_than_any_run_of_backticks_in_the_file() -> None:
    tricky = Attachment("README.md", "Use ```` to fence\n```\nnot closed by this\n", 40, 12)
    block = message_text("What does it say?", [tricky])
    assert block == (
        "What does it say?\n\nAttached file: README.md\n`````md\nUse ```` to fence\n```\nnot closed by this\n`````"
    )


def test_context_room_says_whether_files_fit() -> None:
    room = ContextRoom(used=3000, total=4096)
    assert (room.left, room.fit(1000), room.fit(1097), room.fit(5000)) == (
        1096,
        Fit.FITS,
        Fit.NOT_IN_WHAT_IS_LEFT,
        Fit.NEVER,
    )


def test_a_message_that_alone_leaves_its_answer_less_than_a_quarter_is_cramped() -> None:
    empty = ContextRoom(used=0, total=4096)
    assert (empty.fit(3072), empty.fit(3073), empty.fit(4096), empty.fit(4097)) == (
        Fit.FITS,
        Fit.CRAMPED,
        Fit.CRAMPED,
        Fit.NEVER,
    )
    assert Fit.CRAMPED.sendable_anyway and Fit.NOT_IN_WHAT_IS_LEFT.sendable_anyway
    assert not Fit.NEVER.sendable_anyway and not Fit.FITS.sendable_anyway


def test_every_turn_is_sent_with_its_files_and_comparisons_keep_them() -> None:
    files = (Attachment("a.py", "x = 1\n", 6, 4),)
    conversation = Conversation()
    first = conversation.add_user("Explain this.", files)
    first.answer, first.effort = "It sets x.", ReasoningEffort.LOW
    conversation.add_user("And again?")
    assert conversation.request_messages() == (
        ChatMessage.user("Explain this.\n\nAttached file: a.py\n```py\nx = 1\n```"),
        ChatMessage.final("It sets x."),
        ChatMessage.user("And again?"),
    )
    records = context_records(conversation.turns[:1])
    assert [(r.role, r.text, r.attachments) for r in records] == [
        ("user", "Explain this.", files),
        ("assistant", "It sets x.", ()),
    ]


# -- the composer ---------------------------------------------------------------------------------------------------


@pytest.fixture
def composer(qtbot: Any, settings: QSettings) -> Composer:
    widget = Composer(settings)
    qtbot.addWidget(widget)
    widget.resize(760, 220)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_can_send(True)
    return widget


def sent(composer: Composer) -> list[tuple[str, tuple[Attachment, ...]]]:
    messages: list[tuple[str, tuple[Attachment, ...]]] = []
    composer.send_requested.connect(lambda text, files: messages.append((text, files)))
    return messages


def test_attached_files_show_as_chips_and_one_can_be_removed(qtbot: Any, composer: Composer, tmp_path: Path) -> None:
    assert composer.attach_button.accessibleName() == "Attach files" and composer.attachment_bar.isHidden()
    notes, table = write(tmp_path, "notes.md", NOTES), write(tmp_path, "table.csv", TABLE)
    composer.attach_files([notes, table])  # what the Attach button's file dialog hands on
    qtbot.waitUntil(lambda: len(composer.attachments) == 2)
    assert [a.name for a in composer.attachments] == ["notes.md", "table.csv"]
    chips = composer.attachment_bar.chips
    assert composer.attachment_bar.isVisible() and all(chip.isVisible() for chip in chips)
    assert chips[1].label.text() == f"table.csv · {len(TABLE)} B · {tokens(TABLE)} tokens"
    assert [chip.accessibleName() for chip in chips] == ["Attached file notes.md", "Attached file table.csv"]
    assert chips[0].remove_button is not None and chips[0].remove_button.accessibleName() == "Remove notes.md"
    # Every chip is shown whole: its label's text fits the label (nothing clipped at the edge).
    for chip in chips:
        assert chip.label.fontMetrics().horizontalAdvance(chip.label.text()) <= chip.label.contentsRect().width()
    chips[0].remove_button.click()
    qtbot.waitUntil(lambda: [a.name for a in composer.attachments] == ["table.csv"])
    # The same file again is not added twice.
    composer.attach_files([table])
    qtbot.waitUntil(lambda: composer.reader.pending == 0)
    assert [a.name for a in composer.attachments] == ["table.csv"]


def test_files_that_cannot_be_attached_are_named_and_nothing_else_changes(
    qtbot: Any, composer: Composer, tmp_path: Path
) -> None:
    composer.prompt.setPlainText("keep this text")
    good = write(tmp_path, "notes.md", NOTES)
    binary = write(tmp_path, "photo.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    big = write(tmp_path, "huge.log", b"z" * (MAX_ATTACHMENT_BYTES + 10))
    composer.attach_files([binary, good, big])
    qtbot.waitUntil(lambda: composer.reader.pending == 0)
    assert [a.name for a in composer.attachments] == ["notes.md"]
    assert composer.notice.isVisible() and composer.notice.accessibleName() == "Attachment notice"
    assert composer.notice.text() == (
        "photo.png is not a text file (text in UTF-8, or UTF-16 with a byte-order mark, and PDFs can be attached); "
        "huge.log is 2,097,162 bytes: files of up to 2 MiB can be attached"
    )
    assert composer.prompt.toPlainText() == "keep this text"
    # The next files start afresh: the notice goes once they are read without a problem.
    composer.attach_files([write(tmp_path, "table.csv", TABLE)])
    qtbot.waitUntil(lambda: len(composer.attachments) == 2)
    assert composer.notice.isHidden()


def test_files_dropped_on_the_composer_or_its_text_box_are_attached(
    qtbot: Any, composer: Composer, tmp_path: Path
) -> None:
    notes, table = write(tmp_path, "notes.md", NOTES), write(tmp_path, "table.csv", TABLE)
    assert drop(composer, [notes]).isAccepted()
    qtbot.waitUntil(lambda: len(composer.attachments) == 1)
    # On the text box (its viewport takes the drag): attached, not pasted as a file:// address.
    assert drop(composer.prompt.viewport(), [table]).isAccepted()
    qtbot.waitUntil(lambda: len(composer.attachments) == 2)
    assert [a.name for a in composer.attachments] == ["notes.md", "table.csv"]
    assert all(chip.isVisible() for chip in composer.attachment_bar.chips)  # the second joined a bar on screen
    assert composer.prompt.toPlainText() == ""


def test_a_text_box_that_takes_no_files_keeps_its_own_drop(qtbot: Any, tmp_path: Path) -> None:
    # A PromptEdit that takes no files (takes_files unset) keeps Qt's own drop: a file is not swallowed by
    # attachments it lacks.
    prompt = PromptEdit()
    qtbot.addWidget(prompt)
    prompt.show()
    qtbot.waitExposed(prompt)
    dropped: list[object] = []
    prompt.files_dropped.connect(dropped.append)
    drop(prompt.viewport(), [write(tmp_path, "notes.md", NOTES)])
    assert dropped == [] and prompt.toPlainText().endswith("notes.md")  # Qt's own: the file's address as text


def test_files_alone_can_be_sent_and_the_chips_clear(qtbot: Any, composer: Composer, tmp_path: Path) -> None:
    messages = sent(composer)
    composer.submit()
    assert messages == []  # nothing typed, nothing attached: nothing to send
    composer.attach_files([write(tmp_path, "notes.md", NOTES)])
    qtbot.waitUntil(lambda: len(composer.attachments) == 1)
    files = composer.attachments
    composer.send_button.click()
    assert messages == [("", files)]
    assert composer.attachments == () and composer.attachment_bar.isHidden()


def test_files_that_do_not_fit_the_context_are_named_before_sending(
    qtbot: Any, composer: Composer, tmp_path: Path
) -> None:
    messages = sent(composer)
    room = ContextRoom(used=0, total=100_000)
    composer.context_room = lambda: room
    composer.attach_files([write(tmp_path, "notes.md", NOTES * 40)])
    qtbot.waitUntil(lambda: len(composer.attachments) == 1)
    needed = composer.attachments[0].tokens
    assert needed is not None and needed > 1000
    composer.prompt.setPlainText("Summarise")
    # More than the whole context: refused, every time, and everything is kept.
    room = ContextRoom(used=0, total=1000)
    for _ in range(2):
        composer.submit()
        assert messages == [] and "more than the model's whole context (1,000): remove some" in composer.notice.text()
    assert composer.prompt.toPlainText() == "Summarise" and len(composer.attachments) == 1
    # More than what is left: said once; the same message sent again goes.
    room = ContextRoom(used=99_000, total=100_000)
    composer.submit()
    assert messages == [] and "but only 1,000 of the context are left" in composer.notice.text()
    assert "send again to send anyway" in composer.notice.text()
    files = composer.attachments
    composer.submit()
    assert messages == [("Summarise", files)] and composer.notice.isHidden()


def test_long_typed_text_is_checked_against_the_context_too(qtbot: Any, composer: Composer) -> None:
    messages = sent(composer)
    room = ContextRoom(used=0, total=1000)
    composer.context_room = lambda: room
    pasted = "The quick brown fox jumps over the lazy dog. " * 80  # about 800 tokens
    composer.prompt.setPlainText(pasted)
    composer.submit()  # alone it leaves the answer less than a quarter: said once, then it goes
    notice = composer.notice.text()
    assert messages == [] and notice.startswith("This message needs about ") and "of the model's 1,000" in notice
    assert "would have room for only about " in notice and "Shorten it, or send again to send anyway." in notice
    composer.submit()
    assert [text for text, _files in messages] == [pasted.strip()]
    # More than the whole context: refused, kept in the box.
    composer.prompt.setPlainText(pasted * 2)
    composer.submit()
    composer.submit()
    assert len(messages) == 1 and "more than the model's whole context (1,000): shorten it." in composer.notice.text()
    # A long chat's full context does not stop it: the oldest turns make room, as for any message.
    room = ContextRoom(used=990, total=100_000)
    composer.submit()
    assert len(messages) == 2


def test_an_edit_brings_its_files_back_and_a_cancel_restores_the_draft(
    qtbot: Any, composer: Composer, tmp_path: Path
) -> None:
    composer.attach_files([write(tmp_path, "draft.txt", "unsent\n")])
    qtbot.waitUntil(lambda: len(composer.attachments) == 1)
    composer.prompt.setPlainText("half written")
    edited = (Attachment("a.py", "x = 1\n", 6, 4),)
    composer.begin_edit("Explain this.", edited)
    assert (composer.prompt.toPlainText(), composer.attachments) == ("Explain this.", edited)
    assert composer.draft().before_edit_attachments[0].name == "draft.txt"
    composer.cancel_edit()
    assert composer.prompt.toPlainText() == "half written"
    assert [a.name for a in composer.attachments] == ["draft.txt"]


# -- what the model receives ----------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def user_bubbles(window: MainWindow) -> list[UserBubble]:
    return [w for w in window.chat.messages() if isinstance(w, UserBubble)]


def prompt_text(model: ScriptedModel) -> str:
    return get_encoding().decode(model.last_prompt)


async def attach(window: MainWindow, paths: list[Path]) -> tuple[Attachment, ...]:
    """Attach ``paths`` through the composer and wait (on the running loop: a nested Qt wait inside a qasync
    coroutine stalls the loop's later callbacks) until their chips are there."""
    before = len(window.composer.attachments)
    window.composer.attach_files(paths)
    await until(lambda: len(window.composer.attachments) == before + len(paths))
    return window.composer.attachments


def test_files_are_sent_with_their_message_again_on_regenerate_edit_and_reopen(
    run: Any, make_window: Any, store: ChatStore, tmp_path: Path
) -> None:
    backend, model = scripted_engine(*(harmony_reply("t", f"answer {n}") for n in range(5)))
    window = make_window(backend, store)
    paths = [write(tmp_path, "notes.md", NOTES), write(tmp_path, "table.csv", TABLE)]

    async def body() -> None:
        await load(window)
        files = await attach(window, paths)
        window.composer.prompt.setPlainText("Summarise these.")
        await next_emission(window.generation_finished, window.composer.submit)
        sent_text = message_text("Summarise these.", files)
        assert f"<|start|>user<|message|>{sent_text}<|end|>" in prompt_text(model)
        assert window.composer.attachments == ()  # the chips went with the message
        # The bubble shows the typed text and a chip per file, never the files' content.
        (bubble,) = user_bubbles(window)
        assert bubble.label.text() == "Summarise these."
        assert [chip.label.text() for chip in bubble.chips] == [describe(f) for f in files]
        assert not any("largest living rodent" in label.text() for label in bubble.findChildren(QLabel))
        # Saved with the message: the name, never the folder.
        chat_id = window.chat_id
        assert chat_id is not None
        question = store.get_chat(chat_id).messages[0]
        assert (question.text, question.attachments) == ("Summarise these.", files)
        assert str(tmp_path) not in store.export_json(chat_id)
        # Regenerate: the same files go again.
        await next_emission(window.generation_finished, lambda: window.regenerate(ReasoningEffort.HIGH))
        assert sent_text in prompt_text(model)
        # Reopen the chat and go on: the earlier files are part of the conversation the model reads.
        window.new_chat()
        assert window.open_chat(chat_id)
        assert [chip.attachment for chip in user_bubbles(window)[0].chips] == list(files)
        await next_emission(window.generation_finished, lambda: window.send_message("Which is heavier?"))
        assert sent_text in prompt_text(model) and "Which is heavier?" in prompt_text(model)
        # Edit the first question: its files come back into the composer; one removed, the other goes alone.
        assert window.edit_message(0)
        assert window.composer.attachments == files
        window.composer.attachment_bar.chips[0].remove_button.click()  # type: ignore[union-attr]
        await until(lambda: len(window.composer.attachments) == 1)
        await next_emission(window.generation_finished, window.composer.submit)
        last = prompt_text(model)
        assert message_text("Summarise these.", files[1:]) in last and "notes.md" not in last
        assert store.get_chat(chat_id).messages[0].attachments == files[1:]
        assert store.version_messages(chat_id, 0, 0)[0].attachments == files  # the earlier version keeps both

    run(body())


def test_files_alone_start_a_chat_named_after_the_first(
    run: Any, make_window: Any, store: ChatStore, tmp_path: Path
) -> None:
    backend, model = scripted_engine(harmony_reply("t", "A table of two rodents."))
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        (table,) = await attach(window, [write(tmp_path, "table.csv", TABLE)])
        await next_emission(window.generation_finished, window.composer.send_button.click)
        assert f"<|start|>user<|message|>{message_text('', [table])}<|end|>" in prompt_text(model)
        (bubble,) = user_bubbles(window)
        assert bubble.label.isHidden() and len(bubble.chips) == 1
        assert window.chat_id is not None and store.get_chat(window.chat_id).title == "table.csv"

    run(body())


def test_files_larger_than_the_context_are_not_sent(
    run: Any, make_window: Any, store: ChatStore, tmp_path: Path
) -> None:
    backend, model = scripted_engine(harmony_reply("t", "first"))  # a context of 4,096 tokens
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        await next_emission(window.generation_finished, lambda: window.send_message("hello"))
        room = window._context_room()  # what the composer asks before sending files
        assert room is not None and room.total == 4096 and room.used == window._context_used and room.used > 0
        prompts = len(model.prompts)
        await attach(window, [write(tmp_path, "book.md", NOTES * 400)])
        window.composer.submit()
        assert "more than the model's whole context (4,096)" in window.composer.notice.text()
        assert len(user_bubbles(window)) == 1 and len(model.prompts) == prompts  # nothing was sent
        assert len(window.composer.attachments) == 1  # and nothing lost

    run(body())


def test_a_file_read_for_one_chat_does_not_land_in_another(
    run: Any, make_window: Any, store: ChatStore, tmp_path: Path
) -> None:
    backend, _ = scripted_engine(harmony_reply("t", "ok"))
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        await attach(window, [write(tmp_path, "notes.md", NOTES)])
        await next_emission(window.generation_finished, lambda: window.send_message("hello"))
        chat_id = window.chat_id
        assert chat_id is not None and len(window.composer.attachments) == 1  # an unsent file stays in the draft
        window.new_chat()
        assert window.composer.attachments == ()
        window.composer.attach_files([write(tmp_path, "late.txt", "late\n")])
        assert window.open_chat(chat_id)  # before the file was reported: it is dropped with the draft it was for
        await until(lambda: window.composer.reader.pending == 0)
        assert [a.name for a in window.composer.attachments] == ["notes.md"]
        assert isinstance(window.composer.notice, QLabel) and window.composer.notice.isHidden()

    run(body())


def test_error_messages_are_typed(tmp_path: Path) -> None:
    # Every refusal is an AttachmentError the composer can show; none is an OSError or a UnicodeError.
    for path in (tmp_path, tmp_path / "missing.txt", write(tmp_path, "bin.dat", b"\x00\x01")):
        with pytest.raises(AttachmentError):
            read_attachment(path)
    assert file_size(MAX_ATTACHMENT_BYTES) == "2 MiB" and file_size(1536) == "1.5 KiB"
