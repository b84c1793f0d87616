"""When the history file cannot be opened, the window says so and offers a way out; real files in tmp_path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from gpt_oss_desktop.app.history import ChatStore, HistoryError
from gpt_oss_desktop.app.main import open_history
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, next_emission, scripted_engine
from tests.helpers.history_files import file_modes_enforced, write_crashed_history

NOT_A_DATABASE = b"my notes, not a database\n" * 400
CRASH_TITLE = "Only in the write-ahead log"
ASIDE_NAME = re.compile(r"history\.broken-\d{8}-\d{6}(-\d+)?\.sqlite3")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder / "history.sqlite3"


@pytest.fixture
def unreadable(db: Path) -> Iterator[Path]:
    """A real history the app's user may not read (mode 000, enforced for root too), with its last chat only in
    the -wal file, as a crash leaves it."""
    write_crashed_history(db, CRASH_TITLE)
    for part in (db, Path(f"{db}-wal")):
        part.chmod(0)
    with file_modes_enforced():
        yield db


def window_without_history(make_window: Any, db: Path) -> MainWindow:
    """As app/main.py starts it: the store fails to open, the window runs without history and shows the banner."""
    opened = open_history(db)
    assert isinstance(opened, HistoryError)
    backend, _ = scripted_engine(harmony_reply("Thinking.", "Saved again."))
    window = make_window(backend, None)
    window.history_banner.show_unavailable(db, opened)
    return window


def aside_file(db: Path) -> Path:
    (aside,) = [p for p in db.parent.iterdir() if ASIDE_NAME.fullmatch(p.name)]
    return aside


def test_banner_for_a_file_that_is_not_a_database(make_window: Any, db: Path) -> None:
    db.write_bytes(NOT_A_DATABASE)
    window = window_without_history(make_window, db)
    banner = window.history_banner
    assert banner.isVisible()
    text = banner.message.text()
    assert text.startswith("Chats are not being saved: ")
    assert "file is not a database" in text
    assert str(db) in banner.location.text()
    match = re.fullmatch(r"Start a new history \(the old file is kept as (.+)\)", banner.new_history_button.text())
    assert match is not None and ASIDE_NAME.fullmatch(match.group(1))
    assert window.store is None and window.sidebar is None
    assert db.read_bytes() == NOT_A_DATABASE  # showing the banner touched nothing


def test_banner_for_an_unreadable_file(make_window: Any, unreadable: Path) -> None:
    window = window_without_history(make_window, unreadable)
    text = window.history_banner.message.text()
    assert text.startswith("Chats are not being saved: ")
    assert "permission denied" in text.lower()


def test_open_data_folder(make_window: Any, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db.write_bytes(NOT_A_DATABASE)
    opened: list[QUrl] = []
    # The one stand-in: the desktop's file manager cannot run here.
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    window = window_without_history(make_window, db)
    window.history_banner.open_folder_button.click()
    assert [Path(url.toLocalFile()) for url in opened] == [db.parent]


@pytest.mark.parametrize("broken", ["not-a-database", "unreadable"])
def test_start_a_new_history_keeps_the_old_file_and_saves_again(
    run: Any, make_window: Any, db: Path, broken: str, request: pytest.FixtureRequest
) -> None:
    if broken == "unreadable":
        request.getfixturevalue("unreadable")
    else:
        db.write_bytes(NOT_A_DATABASE)
    window = window_without_history(make_window, db)
    banner = window.history_banner
    kept_as = re.search(r"kept as (.+)\)", banner.new_history_button.text())
    assert kept_as is not None

    banner.new_history_button.click()

    assert not banner.isVisible()
    aside = aside_file(db)
    assert aside.name == kept_as.group(1)
    if broken == "not-a-database":
        assert aside.read_bytes() == NOT_A_DATABASE
    store = window.store
    assert isinstance(store, ChatStore) and store.path == db
    assert window.sidebar is not None

    async def chat() -> None:
        await load(window)
        await next_emission(window.generation_finished, lambda: window.send_message("Is this saved?"))

    run(chat())
    assert window.chat_id is not None
    with ChatStore(db) as reopened:  # on disk, as the next start will see it
        saved = reopened.get_chat(window.chat_id)
        assert [m.text for m in saved.messages] == ["Is this saved?", "Saved again."]
    assert window.sidebar.chat_ids() == [window.chat_id]
    store.close()
    if broken == "unreadable":
        # Kept whole: with its write-ahead log beside it (left next to the new file, SQLite would have replayed it
        # into the new history), it still opens with every chat once readable again.
        for part in (aside, Path(f"{aside}-wal")):
            part.chmod(0o600)
        with ChatStore(aside) as kept:
            assert [chat.title for chat in kept.list_chats()] == [CRASH_TITLE]
