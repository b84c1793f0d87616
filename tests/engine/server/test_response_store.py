"""ResponseStore on real SQLite files: round trips, chains across a reopen, missing links, damaged and foreign files,
file modes, and saves from many threads."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from gpt_oss_desktop.engine.server.response_store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    CorruptResponseStoreError,
    ResponseStore,
    ResponseStoreError,
    StoredResponse,
    UnknownResponseError,
    default_response_store_path,
    new_response_id,
)

POSIX = os.name == "posix"


def response(rid: str, previous: str | None = None, *, text: str = "hi", usage: bool = True) -> StoredResponse:
    return StoredResponse(
        id=rid,
        previous_response_id=previous,
        created_at=1_765_000_000.25,
        model="gpt-oss-20b",
        instructions="Be terse." if previous is None else None,
        input_items=({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},),
        output_items=(
            {"type": "reasoning", "id": f"rs_{rid}", "content": [{"type": "reasoning_text", "text": "Thinking…"}]},
            {"type": "function_call", "call_id": f"call_{rid}", "name": "get_weather", "arguments": '{"city":"Bern"}'},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Grüezi 🙂"}]},
        ),
        usage={"input_tokens": 12, "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 9}}
        if usage
        else None,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "server" / "responses.sqlite3"


def test_round_trip(path: Path) -> None:
    with ResponseStore(path) as store:
        first = response("resp_a")
        bare = response("resp_b", "resp_a", usage=False)
        store.save(first)
        store.save(bare)
        assert store.get("resp_a") == first
        assert store.get("resp_b") == bare
        assert store.get("resp_b") is not None and store.get("resp_b").usage is None  # type: ignore[union-attr]
        assert store.get("resp_missing") is None


def test_status_and_fields_round_trip(path: Path) -> None:
    cut = dataclasses.replace(
        response("resp_cut"),
        status="incomplete",
        fields={"incomplete_details": {"reason": "max_output_tokens"}, "tool_choice": "required"},
    )
    with ResponseStore(path) as store:
        store.save(cut)
    with ResponseStore(path) as store:
        assert store.get("resp_cut") == cut


def test_a_schema_1_file_is_upgraded_and_keeps_its_rows(path: Path) -> None:
    # A file as the first schema wrote it: no status or fields columns, user_version 1.
    path.parent.mkdir(parents=True)
    raw = sqlite3.connect(path)
    raw.executescript(
        "CREATE TABLE responses (id TEXT PRIMARY KEY NOT NULL, previous_response_id TEXT, created_at REAL NOT NULL,"
        " model TEXT NOT NULL, instructions TEXT, input_items TEXT NOT NULL, output_items TEXT NOT NULL, usage TEXT);"
        "INSERT INTO responses VALUES ('resp_old', NULL, 5.0, 'm', NULL, '[]', '[{\"type\": \"message\"}]', NULL);"
        f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;"
    )
    raw.close()
    with ResponseStore(path) as store:
        old = store.get("resp_old")
        assert old is not None and old.output_items == ({"type": "message"},)
        assert old.status is None and old.fields is None  # not recorded then, and not made up now
        new = dataclasses.replace(response("resp_new", "resp_old"), status="completed", fields={"top_p": 1.0})
        store.save(new)
        assert [r.id for r in store.chain("resp_new")] == ["resp_old", "resp_new"]
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    raw.close()


def test_save_replaces_a_response_with_the_same_id(path: Path) -> None:
    with ResponseStore(path) as store:
        store.save(response("resp_a", text="first"))
        store.save(response("resp_a", text="second"))
        got = store.get("resp_a")
        assert got is not None and got.input_items[0]["content"][0]["text"] == "second"


def test_chain_survives_a_restart(path: Path) -> None:
    saved = [response("resp_1"), response("resp_2", "resp_1"), response("resp_3", "resp_2")]
    store = ResponseStore(path)
    for item in saved:
        store.save(item)
    store.save(response("resp_other", "resp_1"))  # a branch: not part of resp_3's chain
    store.close()
    store.close()  # idempotent

    reopened = ResponseStore(path)  # the "server restart"
    try:
        assert reopened.chain("resp_3") == saved
        assert reopened.chain("resp_1") == saved[:1]
        assert [r.id for r in reopened.chain("resp_other")] == ["resp_1", "resp_other"]
    finally:
        reopened.close()


def test_missing_link_is_unknown_response_error(path: Path) -> None:
    with ResponseStore(path) as store:
        store.save(response("resp_2", "resp_gone"))
        store.save(response("resp_3", "resp_2"))
        with pytest.raises(UnknownResponseError) as caught:
            store.chain("resp_3")
        assert caught.value.response_id == "resp_gone"
        assert "resp_3" in str(caught.value)
        with pytest.raises(UnknownResponseError) as caught:
            store.chain("resp_never")
        assert caught.value.response_id == "resp_never"
        assert isinstance(caught.value, LookupError) and isinstance(caught.value, ResponseStoreError)


def test_a_loop_of_links_is_corruption_not_a_hang(path: Path) -> None:
    with ResponseStore(path) as store:
        store.save(response("resp_a", "resp_b"))
        store.save(response("resp_b", "resp_a"))
        with pytest.raises(CorruptResponseStoreError, match="loops"):
            store.chain("resp_a")


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(path: Path) -> None:
    path.parent.mkdir()
    garbage = b"this is not sqlite, just some bytes " * 200
    path.write_bytes(garbage)
    with pytest.raises(CorruptResponseStoreError) as caught:
        ResponseStore(path)
    assert caught.value.path == path
    assert path.read_bytes() == garbage


def test_a_damaged_row_is_a_typed_error(path: Path) -> None:
    with ResponseStore(path) as store:
        store.save(response("resp_a"))
        store.save(response("resp_b", "resp_a"))
    raw = sqlite3.connect(path)
    raw.execute("UPDATE responses SET output_items = '{not json' WHERE id = 'resp_a'")
    raw.execute("UPDATE responses SET input_items = '{\"a\": 1}' WHERE id = 'resp_b'")
    raw.commit()
    raw.close()
    with ResponseStore(path) as store:
        with pytest.raises(CorruptResponseStoreError, match="resp_a") as caught:
            store.get("resp_a")
        assert caught.value.path == path
        with pytest.raises(CorruptResponseStoreError, match="array"):
            store.chain("resp_b")
        store.save(response("resp_c"))  # the store stays usable
        assert store.get("resp_c") == response("resp_c")


def test_damaged_pages_are_a_typed_error(path: Path) -> None:
    with ResponseStore(path) as store:
        for i in range(200):
            store.save(response(f"resp_{i}", text="x" * 500))
    size = path.stat().st_size
    assert size > 8 * 4096
    with path.open("r+b") as handle:  # overwrite every page but the header page
        handle.seek(4096)
        handle.write(b"\xff" * (size - 4096))
    with pytest.raises(CorruptResponseStoreError), ResponseStore(path) as store:
        for i in range(200):
            store.get(f"resp_{i}")


def test_another_programs_database_is_not_touched(path: Path) -> None:
    path.parent.mkdir()
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE notes (body TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(ResponseStoreError, match="another program") as caught:
        ResponseStore(path)
    assert not isinstance(caught.value, CorruptResponseStoreError)
    raw = sqlite3.connect(path)
    assert [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]
    raw.close()


def test_a_newer_schema_is_refused(path: Path) -> None:
    ResponseStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(ResponseStoreError, match="newer"):
        ResponseStore(path)


def test_schema_is_versioned_and_wal(path: Path) -> None:
    with ResponseStore(path) as store:
        store.save(response("resp_a"))
        raw = sqlite3.connect(path)
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        raw.close()


@pytest.mark.skipif(not POSIX, reason="POSIX file modes")
def test_file_0600_and_new_folders_0700(tmp_path: Path) -> None:
    path = tmp_path / "data" / "server" / "responses.sqlite3"
    old_umask = os.umask(0o022)
    try:
        with ResponseStore(path) as store:
            store.save(response("resp_a"))
            wal = path.with_name(path.name + "-wal")
            assert wal.exists()
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_concurrent_saves_from_threads(path: Path) -> None:
    threads_n, per_thread = 8, 25
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)
    with ResponseStore(path) as store:

        def work(t: int) -> None:
            try:
                start.wait()
                previous = None
                for i in range(per_thread):
                    rid = f"resp_{t}_{i}"
                    store.save(response(rid, previous, text=f"{t}/{i}"))
                    previous = rid
                    assert store.get(rid) is not None
                    if i % 5 == 4:
                        assert len(store.chain(rid)) == i + 1
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert errors == []
        for t in range(threads_n):
            chain = store.chain(f"resp_{t}_{per_thread - 1}")
            assert [r.input_items[0]["content"][0]["text"] for r in chain] == [f"{t}/{i}" for i in range(per_thread)]
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == threads_n * per_thread
    raw.close()


def test_items_that_are_not_json_are_refused_before_writing(path: Path) -> None:
    with ResponseStore(path) as store:
        bad = StoredResponse("resp_bad", None, 0.0, "m", None, ({"x": object()},), (), None)
        with pytest.raises(ValueError, match="input_items"):
            store.save(bad)
        not_objects = StoredResponse("resp_bad", None, 0.0, "m", None, (), ("text",), None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="output_items"):
            store.save(not_objects)
        assert store.get("resp_bad") is None


def test_closed_store_raises(path: Path) -> None:
    store = ResponseStore(path)
    store.close()
    with pytest.raises(ResponseStoreError, match="closed"):
        store.get("resp_a")
    with pytest.raises(ResponseStoreError, match="closed"):
        store.save(response("resp_a"))


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(ResponseStoreError, match="folder"):
        ResponseStore(tmp_path)


def test_default_path_is_under_the_user_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_DESKTOP_DATA_DIR", str(tmp_path))
    assert default_response_store_path() == tmp_path / "server" / "responses.sqlite3"


def test_new_response_ids_are_unique_and_prefixed() -> None:
    ids = {new_response_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(rid.startswith("resp_") and len(rid) == 53 for rid in ids)
