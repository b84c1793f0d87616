"""The permission helpers: exact modes whatever the umask, strict checks of folders that must be private."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_oss_desktop.engine import private_files
from gpt_oss_desktop.engine.private_files import (
    UnsafeFolderError,
    create_private_file,
    make_private_dir,
    open_private,
    require_private_dir,
    secure_data_folder,
    write_private_text,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
OTHER_UID = 65534  # "nobody"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o000], ids=["umask022", "umask002", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def test_new_folders_and_files_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    folder = make_private_dir(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == 0o700 and mode(folder) == 0o700
    create_private_file(folder / "db")
    with open_private(folder / "log", exclusive=True) as handle:
        handle.write("x")
    write_private_text(folder / "export.md", "# chat")
    for name in ("db", "log", "export.md"):
        assert mode(folder / name) == 0o600, name
    assert (folder / "export.md").read_text(encoding="utf-8") == "# chat"


def test_an_open_private_file_is_named_by_its_path(tmp_path: Path) -> None:
    with open_private(tmp_path / "native-1.log") as handle:
        assert handle.name == str(tmp_path / "native-1.log")  # the crash reporter finds the file by this name


def test_rewriting_an_existing_readable_file_makes_it_private(tmp_path: Path) -> None:
    target = tmp_path / "export.json"
    target.write_text("old")
    target.chmod(0o644)
    write_private_text(target, "new")
    assert mode(target) == 0o600 and target.read_text() == "new"


def test_exclusive_open_never_replaces(tmp_path: Path) -> None:
    (tmp_path / "crash.log").write_text("first")
    with pytest.raises(FileExistsError):
        open_private(tmp_path / "crash.log", exclusive=True)
    assert (tmp_path / "crash.log").read_text() == "first"


def test_existing_files_lose_group_and_other_bits_but_keep_the_owners(tmp_path: Path) -> None:
    readable, readonly = tmp_path / "a", tmp_path / "b"
    readable.write_text("")
    readable.chmod(0o664)
    readonly.write_text("")
    readonly.chmod(0o444)
    create_private_file(readable)
    create_private_file(readonly)
    assert mode(readable) == 0o600
    assert mode(readonly) == 0o400


def test_an_old_install_is_tightened_and_each_fix_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "models" / "20b").mkdir(parents=True)
    data.chmod(0o755)
    (data / "logs").chmod(0o755)
    wide = [data / "history.sqlite3", data / "history.sqlite3-wal", data / "history.sqlite3-shm"]
    wide += [data / "logs" / "crash-1.log", data / "logs" / "native-crash-2-3.log"]
    settings = tmp_path / "config" / "settings.conf"
    settings.parent.mkdir()
    for path in [*wide, settings]:
        path.write_text("private")
        path.chmod(0o644)
    (data / "models.json").write_text("{}")
    (data / "models.json").chmod(0o600)  # already right: not reported
    weights = data / "models" / "20b" / "model.safetensors"
    weights.write_text("")
    weights.chmod(0o644)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("")
    outside.chmod(0o644)
    (data / "link").symlink_to(outside)

    with caplog.at_level(logging.WARNING, logger=private_files.__name__):
        fixed = secure_data_folder(data, extra_files=[settings])

    assert set(fixed) == {data, data / "logs", *wide, settings}
    assert mode(data) == mode(data / "logs") == 0o700
    assert all(mode(p) == 0o600 for p in [*wide, settings, data / "models.json"])
    assert mode(weights) == 0o644  # inside the 0700 data folder: closed by it, not rewritten one by one
    assert mode(outside) == 0o644  # symlinks are never followed
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for path in fixed:
        assert str(path) in logged
    assert secure_data_folder(data, extra_files=[settings]) == []  # a second start has nothing to fix


def test_a_missing_data_folder_is_created_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        assert secure_data_folder(tmp_path / "new" / "data") == []
    finally:
        os.umask(previous)
    assert mode(tmp_path / "new" / "data") == 0o700


def test_a_private_folder_is_created_0700_and_accepted(tmp_path: Path) -> None:
    previous = os.umask(0o002)
    try:
        folder = require_private_dir(tmp_path / "sock")
    finally:
        os.umask(previous)
    assert mode(folder) == 0o700
    assert require_private_dir(folder) == folder  # again: it exists and is fine


@pytest.mark.parametrize("wide", [0o755, 0o770, 0o701, 0o1777])
def test_a_folder_open_to_others_is_refused_not_repaired(tmp_path: Path, wide: int) -> None:
    folder = tmp_path / "sock"
    folder.mkdir()
    folder.chmod(wide)
    with pytest.raises(UnsafeFolderError, match="open to other users"):
        require_private_dir(folder)
    assert mode(folder) == wide


def test_a_symlink_is_refused_even_to_a_private_folder(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "sock").symlink_to(real)
    with pytest.raises(UnsafeFolderError, match="symbolic link"):
        require_private_dir(tmp_path / "sock")


def test_a_file_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sock").write_text("")
    with pytest.raises(UnsafeFolderError, match="not a folder"):
        require_private_dir(tmp_path / "sock")


@pytest.mark.skipif(not AS_ROOT, reason="handing a folder to another user needs root")
def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "sock"
    folder.mkdir(mode=0o700)
    os.chown(folder, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeFolderError, match=f"another user \\(uid {OTHER_UID}"):
        require_private_dir(folder)


@pytest.mark.skipif(not AS_ROOT, reason="handing a file to another user needs root")
def test_a_file_of_another_user_is_left_alone_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = tmp_path / "theirs"
    theirs.write_text("")
    theirs.chmod(0o644)
    os.chown(theirs, OTHER_UID, OTHER_UID)

    def refuse(path: object, mode: int) -> None:  # root may chmod anything; a user may not: as a user would see it
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(private_files.os, "chmod", refuse)
    with caplog.at_level(logging.WARNING, logger=private_files.__name__):
        assert not private_files.tighten(theirs)
    assert "cannot make" in caplog.text and mode(theirs) == 0o644
