"""The desktop entry: install/uninstall into a temporary XDG_DATA_HOME, file contents, Exec quoting, the CLI flags."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from PySide6.QtSvg import QSvgRenderer

from gpt_oss_desktop.app.desktop import desktop_entry
from gpt_oss_desktop.app.desktop.desktop_entry import (
    APP_ID,
    ICON_SIZES,
    DesktopEntryError,
    DesktopEntryPaths,
    Launcher,
    current_launcher,
    install,
    parse_desktop_entry,
    uninstall,
)

REPO = Path(__file__).resolve().parents[3]


def split_exec(value: str) -> list[str]:
    """An independent reading of an Exec value, following the Desktop Entry Specification: first the string-type
    escapes of the file format, then the Exec quoting rules (double quotes; inside them \\ escapes " ` $ \\)."""
    unescaped = []
    i = 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            unescaped.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(value[i + 1], value[i + 1]))
            i += 2
        else:
            unescaped.append(value[i])
            i += 1
    text = "".join(unescaped)
    args: list[str] = []
    current: list[str] = []
    in_quotes = started = False
    i = 0
    while i < len(text):
        c = text[i]
        if in_quotes:
            if c == "\\" and i + 1 < len(text) and text[i + 1] in '"`$\\':
                current.append(text[i + 1])
                i += 1
            elif c == '"':
                in_quotes = False
            else:
                current.append(c)
        elif c == '"':
            in_quotes = started = True
        elif c == " ":
            if started:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(c)
            started = True
        i += 1
    assert not in_quotes, f"unbalanced quotes in {value!r}"
    if started:
        args.append("".join(current))
    return [a.replace("%%", "%") for a in args]


def test_the_shipped_entry_names_the_app_id_everywhere() -> None:
    entry = parse_desktop_entry(desktop_entry.bundled_desktop_file().read_text(encoding="utf-8"))
    assert entry["Type"] == "Application"
    assert entry["Icon"] == APP_ID
    assert entry["StartupWMClass"] == APP_ID
    assert entry["Exec"] == APP_ID
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")


def test_every_icon_size_is_shipped_at_its_size() -> None:
    for source, rel in desktop_entry.icon_files():
        assert source.is_file(), source
        if source.suffix == ".png":
            size = int(rel.parts[0].split("x")[0])
            image = QImage(str(source))
            assert (image.width(), image.height()) == (size, size), source
            assert image.hasAlphaChannel()
        else:
            assert QSvgRenderer(str(source)).isValid(), source
    assert len(desktop_entry.icon_files()) == len(ICON_SIZES) + 1


def test_install_writes_entry_and_icons_under_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_home = tmp_path / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    launcher = Launcher(("/opt/gpt oss/bin/gpt-oss-desktop",))
    written = install(launcher=launcher)

    paths = DesktopEntryPaths(data_home)
    assert paths.desktop_file == data_home / "applications" / "gpt-oss-desktop.desktop"
    assert set(written) == {paths.desktop_file, *paths.icons()}
    for source, rel in desktop_entry.icon_files():
        assert (data_home / "icons" / "hicolor" / rel).read_bytes() == source.read_bytes()
    entry = parse_desktop_entry(paths.desktop_file.read_text(encoding="utf-8"))
    assert split_exec(entry["Exec"]) == list(launcher.argv)
    assert entry["TryExec"] == launcher.argv[0]
    assert "Path" not in entry
    assert entry["StartupWMClass"] == entry["Icon"] == APP_ID
    assert not list(paths.desktop_file.parent.glob(".*partial"))


def test_a_relative_xdg_data_home_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/share")
    assert desktop_entry.xdg_data_home() == tmp_path / ".local" / "share"


@pytest.mark.parametrize(
    "argv",
    [
        ("/usr/bin/gpt-oss-desktop",),
        ("/home/a b/venv/bin/python", "-m", "gpt_oss_desktop.app"),
        ('/tmp/we"ird $HOME `x` back\\slash/python', "-m", "gpt_oss_desktop.app"),
        ("/tmp/100%/python", "--flag=a;b"),
    ],
)
def test_exec_quoting_round_trips(argv: tuple[str, ...]) -> None:
    line = desktop_entry.exec_line(Launcher(argv))
    assert split_exec(line) == list(argv)
    assert "\n" not in line


def test_installed_entry_passes_desktop_file_validate(tmp_path: Path) -> None:
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    launcher = Launcher(("/home/a b/venv/bin/python", "-m", "gpt_oss_desktop.app"), working_dir=Path("/home/a b/src"))
    install(tmp_path, launcher)
    result = subprocess.run(
        [validator, str(DesktopEntryPaths(tmp_path).desktop_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


def test_uninstall_removes_only_what_install_wrote(tmp_path: Path) -> None:
    install(tmp_path, Launcher(("/usr/bin/gpt-oss-desktop",)))
    neighbour = tmp_path / "applications" / "other-app.desktop"
    neighbour.write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n", encoding="utf-8")
    other_icon = tmp_path / "icons" / "hicolor" / "48x48" / "apps" / "other-app.png"
    other_icon.write_bytes(b"png")

    removed = uninstall(tmp_path)

    paths = DesktopEntryPaths(tmp_path)
    assert set(removed) == {paths.desktop_file, *paths.icons()}
    assert not any(p.exists() for p in removed)
    assert neighbour.exists() and other_icon.exists()
    assert uninstall(tmp_path) == []


def test_install_into_an_unwritable_place_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "share"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    with pytest.raises(DesktopEntryError, match="share"):
        install(blocker, Launcher(("/usr/bin/gpt-oss-desktop",)))


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_other_platforms_are_refused(platform: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    with pytest.raises(DesktopEntryError, match=platform):
        install(tmp_path, Launcher(("gpt-oss-desktop",)))
    with pytest.raises(DesktopEntryError, match=platform):
        uninstall(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_frozen_executable_is_its_own_launcher(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exe = tmp_path / "bundle" / "gpt-oss-desktop"
    exe.parent.mkdir()
    exe.write_bytes(b"")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    assert current_launcher() == Launcher((str(exe.resolve()),))


def test_the_source_launcher_starts_this_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No gui-script beside an interpreter in an empty folder: the entry runs `python -P -m gpt_oss_desktop.app`.
    monkeypatch.setattr("sysconfig.get_path", lambda *_args: str(tmp_path))
    launcher = current_launcher()
    assert launcher.argv[1:] == ("-P", "-m", "gpt_oss_desktop.app")
    assert launcher.working_dir is None
    # What a menu would run, with --help appended: it must reach this app's argument parser.
    entry = parse_desktop_entry(desktop_entry.render_desktop_entry("[Desktop Entry]\nExec=x\n", launcher))
    result = subprocess.run(
        [*split_exec(entry["Exec"]), "--help"],
        cwd=entry.get("Path", tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr
    assert "--install-desktop-entry" in result.stdout


def test_cli_flags_install_and_uninstall(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    paths = DesktopEntryPaths(tmp_path)

    def cli(flag: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-P", "-m", "gpt_oss_desktop.app", flag],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    installed = cli("--install-desktop-entry")
    assert installed.returncode == 0, installed.stderr
    assert str(paths.desktop_file) in installed.stdout
    entry = parse_desktop_entry(paths.desktop_file.read_text(encoding="utf-8"))
    # This interpreter with -m gpt_oss_desktop.app (an editable install) or the gui-script pip installed beside it.
    assert split_exec(entry["Exec"])[0] in {
        str(Path(sys.executable).absolute()),
        str(Path(sysconfig.get_path("scripts")) / APP_ID),
    }
    assert all(p.is_file() for p in paths.icons())

    removed = cli("--uninstall-desktop-entry")
    assert removed.returncode == 0, removed.stderr
    assert not paths.desktop_file.exists()
    assert not any(p.exists() for p in paths.icons())


def test_cli_reports_an_install_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "share"
    blocker.write_text("", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-P", "-m", "gpt_oss_desktop.app", "--install-desktop-entry"],
        cwd=REPO,
        env={**os.environ, "XDG_DATA_HOME": str(blocker)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot install the desktop entry" in result.stderr
