"""Private files (issue 15, gap 3): after the app's real flows every file and folder it wrote is the user's alone,
whatever the umask; an install made readable by an older version is tightened at start."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from gpt_oss_desktop.app import main as app_main
from gpt_oss_desktop.app.desktop import crash
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.settings import APPLICATION, ORGANIZATION, TEMPERATURE_KEY, make_settings
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, next_emission, scripted_engine

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX modes, XDG settings file")
REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def modes_under(root: Path) -> dict[str, str]:
    """The mode of every folder and file below ``root`` (itself included), by path."""
    return {str(path): oct(mode(path)) for path in [root, *root.rglob("*")]}


def private_modes(root: Path) -> dict[str, str]:
    """What :func:`modes_under` must find: 0700 folders, 0600 files (read now, while the files exist)."""
    return {str(path): "0o700" if path.is_dir() else "0o600" for path in [root, *root.rglob("*")]}


@pytest.fixture
def config_home(tmp_path: Path) -> Iterator[Path]:
    """The platform settings file (QSettings(organization, application)) lives under this folder for the test."""
    native, user = QSettings.Format.NativeFormat, QSettings.Scope.UserScope
    original = Path(QSettings(ORGANIZATION, APPLICATION).fileName()).parent.parent
    home = tmp_path / "config"
    home.mkdir()
    QSettings.setPath(native, user, str(home))
    yield home
    QSettings.setPath(native, user, str(original))


@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask022", "umask002"])
def test_every_file_of_a_session_is_private(
    umask: int, tmp_path: Path, config_home: Path, monkeypatch: pytest.MonkeyPatch, run: Any, qtbot: Any
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    exports = tmp_path / "exports"
    exports.mkdir()
    previous = os.umask(umask)
    try:
        app_main.secure_user_files(None)  # what main() does at start, before anything is written
        reporter = crash.install(show_dialogs=False, native_log=False)
        try:
            try:
                raise RuntimeError("a crash report")
            except RuntimeError:
                sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        finally:
            reporter.uninstall()
        settings = make_settings()
        store = app_main.open_history(data / app_main.HISTORY_FILE_NAME)
        assert isinstance(store, ChatStore)
        backend, _ = scripted_engine(harmony_reply("Thinking.", "Saved answer."))
        window = MainWindow(backend, settings, store=store)
        qtbot.addWidget(window)
        window.show()

        async def chat() -> None:
            await load(window)
            await next_emission(window.generation_finished, lambda: window.send_message("keep this private"))

        run(chat())
        assert store.list_chats()  # the chat was saved
        assert window.export_chat(exports / "chat.md", "markdown")
        assert window.export_chat(exports / "chat.json", "json")
        settings.setValue(TEMPERATURE_KEY, 0.5)
        settings.sync()
        # While the database is open its -wal and -shm files exist: they are checked too.
        assert (data / "history.sqlite3-wal").exists() and (data / "history.sqlite3-shm").exists()
        assert modes_under(data) == private_modes(data)
        window.close()
        backend.close()
        store.close()
    finally:
        os.umask(previous)

    settings_file = Path(settings.fileName())
    assert settings_file.is_relative_to(config_home) and "0.5" in settings_file.read_text()
    assert reporter.reports and reporter.reports[0].is_relative_to(data)
    assert (data / "history.sqlite3").exists()
    assert modes_under(data) == private_modes(data)
    assert modes_under(settings_file.parent) == private_modes(settings_file.parent)
    exported = [exports / "chat.md", exports / "chat.json"]
    assert {str(p): oct(mode(p)) for p in exported} == {str(p): "0o600" for p in exported}


def test_an_old_readable_install_is_fixed_at_start(tmp_path: Path) -> None:
    """A real start of the app (--screenshot, which opens the window and exits) over an install whose data folder,
    logs, chat database and settings file were made readable to all by an older version."""
    data, config = tmp_path / "data", tmp_path / "config"
    (data / "logs").mkdir(parents=True)
    (config / "gpt-oss-desktop").mkdir(parents=True)
    old = [
        data / "history.sqlite3",
        data / "history.sqlite3-wal",
        data / "logs" / "crash-20250101-000000-000000.log",
        config / "gpt-oss-desktop" / "gpt-oss desktop.conf",
    ]
    for path in old:
        path.write_text("private\n")
        path.chmod(0o644)
    for folder in (data, data / "logs", config / "gpt-oss-desktop"):
        folder.chmod(0o755)
    env = os.environ | {DATA_DIR_ENV: str(data), "XDG_CONFIG_HOME": str(config), "QT_QPA_PLATFORM": "offscreen"}
    started = subprocess.run(
        [sys.executable, "-P", "-m", "gpt_oss_desktop.app", "--screenshot", str(tmp_path / "shot.png")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        umask=0o022,
    )
    assert started.returncode == 0, started.stderr
    for folder in (data, data / "logs", config / "gpt-oss-desktop"):
        assert oct(mode(folder)) == "0o700", folder
    fixed = next(line for line in started.stderr.splitlines() if "other users could read" in line)
    for path in old:
        assert oct(mode(path)) == "0o600", path
        assert str(path) in fixed
    assert (data / "history.sqlite3").read_text() == "private\n"  # tightened, never rewritten
