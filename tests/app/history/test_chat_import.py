"""Importing exported chats from real files into a real SQLite history: each good file becomes a new chat, each bad
one is named with its reason, and the others still come in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.history.chat_import import ImportReport, import_chat_files

from .test_store import STATS


def exported(store: ChatStore, folder: Path, title: str) -> Path:
    chat = store.create_chat(title)
    store.add_message(chat.id, "user", f"{title}?")
    store.add_message(chat.id, "assistant", f"About {title}.", analysis="Think.", effort="high", stats=STATS)
    path = folder / f"{title}.json"
    path.write_text(store.export_json(chat.id), encoding="utf-8")
    return path


def test_good_files_come_in_and_bad_ones_are_named(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "old.sqlite3") as old:
        rain, snow = exported(old, tmp_path, "Rain"), exported(old, tmp_path, "Snow")
    (tmp_path / "notes.md").write_text("# Rain\n\nnot JSON", encoding="utf-8")
    (tmp_path / "other.json").write_text(json.dumps({"format": "someone-else"}), encoding="utf-8")
    (tmp_path / "latin.json").write_bytes("caf\xe9".encode("latin-1"))
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + snow.read_bytes())
    files = [rain, tmp_path / "notes.md", tmp_path / "missing.json", tmp_path / "other.json", tmp_path / "latin.json"]
    with ChatStore(tmp_path / "new.sqlite3") as store:
        report = import_chat_files(store, [*files, bom])
        assert [chat.title for chat in report.chats] == ["Rain", "Snow"]
        assert sorted(chat.title for chat in store.list_chats()) == ["Rain", "Snow"]
        thread = store.get_chat(report.chats[0].id).thread()
        assert [m.text for m in thread] == ["Rain?", "About Rain."] and thread[1].analysis == "Think."
    reasons = {problem.path.name: problem.reason for problem in report.problems}
    assert list(reasons) == ["notes.md", "missing.json", "other.json", "latin.json"]
    assert reasons["notes.md"].startswith("not a JSON document")
    assert reasons["missing.json"] == "No such file or directory"
    assert "not a gpt-oss desktop chat export" in reasons["other.json"]
    assert "not UTF-8 text" in reasons["latin.json"]
    assert report.summary() == (
        "Imported 2 chats; not imported: notes.md: " + reasons["notes.md"] + " (and 3 more files not imported)."
    )


def test_a_file_too_large_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gpt_oss_desktop.app.history.chat_import as chat_import

    monkeypatch.setattr(chat_import, "MAX_IMPORT_BYTES", 10)
    big = tmp_path / "big.json"
    big.write_text("{" + " " * 2_000_000 + "}", encoding="utf-8")
    with ChatStore(tmp_path / "h.sqlite3") as store:
        report = import_chat_files(store, [big])
    assert report.chats == () and "too large to import" in report.problems[0].reason


def test_summaries() -> None:
    assert ImportReport().summary() == "Imported 0 chats."


def test_a_file_nested_too_deeply_is_named_not_raised(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000, encoding="utf-8")
    with ChatStore(tmp_path / "h.sqlite3") as store:
        report = import_chat_files(store, [deep])
    assert report.chats == () and report.problems[0].reason == "not a JSON document: nested too deeply"
