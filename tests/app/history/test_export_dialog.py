"""The export dialog opens in Documents (or the last export's folder) and suggests the chat's title as the name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from gpt_oss_desktop.app.history import ChatStore, export_dialog
from gpt_oss_desktop.app.history.export_dialog import export_folder
from gpt_oss_desktop.app.settings import EXPORT_FOLDER_KEY
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, next_emission, scripted_engine


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of the test's own (Qt reads $HOME for Documents), without user-dirs.dirs overrides."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


def test_the_dialog_opens_in_documents_then_home(home: Path, settings: QSettings) -> None:
    assert export_folder(settings) == home  # no Documents folder: home, never the working folder
    (home / "Documents").mkdir()
    assert export_folder(settings) == home / "Documents"
    assert export_folder(None) == home / "Documents"


def test_the_last_export_folder_wins_while_it_exists(home: Path, settings: QSettings, tmp_path: Path) -> None:
    (home / "Documents").mkdir()
    last = tmp_path / "exports"
    last.mkdir()
    settings.setValue(EXPORT_FOLDER_KEY, str(last))
    assert export_folder(settings) == last
    last.rmdir()
    assert export_folder(settings) == home / "Documents"


def test_exporting_a_renamed_chat(
    run: Any, make_window: Any, settings: QSettings, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "Documents").mkdir()
    asked: list[str] = []
    target = tmp_path / "elsewhere"
    target.mkdir()

    def save_dialog(_parent: Any, _caption: str, start: str, _filter: str) -> tuple[str, str]:
        asked.append(start)
        return str(target / Path(start).name), _filter

    monkeypatch.setattr(export_dialog.QFileDialog, "getSaveFileName", save_dialog)
    backend, _ = scripted_engine(harmony_reply("Sums.", "4"))
    with ChatStore(tmp_path / "history.sqlite3") as store:
        window = make_window(backend, store)

        async def body() -> None:
            await load(window)
            await next_emission(window.generation_finished, lambda: window.send_message("2+2?"))

        run(body())
        assert window.chat_id is not None
        store.rename_chat(window.chat_id, "Arithmetic test (renamed)")
        window.choose_export_file("markdown")
        window.choose_export_file("json")
    # The first dialog opened in Documents; the second where the first export went.
    assert asked == [
        str(home / "Documents" / "Arithmetic test (renamed).md"),
        str(target / "Arithmetic test (renamed).json"),
    ]
    assert "2+2?" in (target / "Arithmetic test (renamed).md").read_text(encoding="utf-8")
    assert (target / "Arithmetic test (renamed).json").is_file()
    assert settings.value(EXPORT_FOLDER_KEY) == str(target)
