"""Entry point of ``gpt-oss-desktop`` and ``python -m gpt_oss_desktop.app``:
parse flags, start Qt on a qasync loop, show the window."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import qasync

    from gpt_oss_desktop.app.desktop.single_instance import SingleInstance
    from gpt_oss_desktop.app.history import ChatStore, HistoryError

logger = logging.getLogger(__name__)

HISTORY_FILE_NAME = "history.sqlite3"  # in the user data folder


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpt-oss-desktop", description="Chat with a local gpt-oss model.")
    parser.add_argument("--model", metavar="PATH|demo", help="checkpoint folder to load, or 'demo'")
    shots = parser.add_argument_group("screenshots")
    target = shots.add_mutually_exclusive_group()
    target.add_argument(
        "--screenshot", metavar="FILE", type=Path, help="render the window in one sample state to a PNG, then exit"
    )
    target.add_argument(
        "--screenshot-gallery",
        metavar="DIR",
        type=Path,
        help="render every sample state in every theme and size into DIR (<state>-<theme>-<W>x<H>.png, with an "
        "index: README.md and index.json), then exit",
    )
    shots.add_argument(
        "--state", metavar="NAME", help="with --screenshot: the state to show (an unknown name lists them)"
    )
    shots.add_argument(
        "--states", metavar="A,B", type=_names, help="with --screenshot-gallery: only these states (default: all)"
    )
    shots.add_argument("--theme", choices=_THEMES, default="light", help="with --screenshot: the colours")
    shots.add_argument(
        "--themes", metavar="A,B", type=_themes, default="light,dark", help="with --screenshot-gallery: the themes"
    )
    shots.add_argument(
        "--size", metavar="WxH", type=_size, default="1280x800", help="with --screenshot: the window size"
    )
    shots.add_argument(
        "--sizes", metavar="WxH,...", type=_sizes, default="1280x800,800x600", help="with --screenshot-gallery"
    )
    shots.add_argument(
        "--scale",
        metavar="FACTOR",
        type=float,
        help="render at this display scale (2 for 200 %%; sets QT_SCALE_FACTOR)",
    )
    parser.add_argument("--settings", metavar="INI", help="keep preferences in this ini file instead")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show info and debug messages on the terminal (and in the log)"
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="open the window, load the demo model, answer one question, check it; exit 0 or name what failed",
    )
    parser.add_argument(
        "--self-test-timeout", metavar="SECONDS", type=float, default=600.0, help="time limit of --self-test"
    )
    entry = parser.add_mutually_exclusive_group()
    entry.add_argument(
        "--install-desktop-entry", action="store_true", help="add the app to your applications menu, then exit"
    )
    entry.add_argument(
        "--uninstall-desktop-entry", action="store_true", help="remove the app from your applications menu, then exit"
    )
    return parser.parse_args(argv)


_THEMES = ("light", "dark", "system")


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _themes(text: str) -> list[str]:
    themes = _names(text)
    unknown = [t for t in themes if t not in _THEMES]
    if unknown or not themes:
        raise argparse.ArgumentTypeError(f"themes are {', '.join(_THEMES)}; got {text!r}")
    return themes


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 1 or int(height) < 1:
        raise argparse.ArgumentTypeError(f"a size is WIDTHxHEIGHT, e.g. 1280x800; got {text!r}")
    return int(width), int(height)


def _sizes(text: str) -> list[tuple[int, int]]:
    sizes = [_size(part) for part in _names(text)]
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one size, e.g. 1280x800")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    flags = list(sys.argv[1:] if argv is None else argv)
    if flags[:1] == ["--python-sandbox-child"]:  # the python tool's sandboxed child in the frozen app: before any Qt
        from gpt_oss_desktop.engine.tools.sandbox_child import main as sandbox_child

        return sandbox_child(flags[1:])
    args = parse_args(argv)
    screenshots = args.screenshot is not None or args.screenshot_gallery is not None
    if screenshots and args.scale:
        os.environ["QT_SCALE_FACTOR"] = f"{args.scale:g}"  # read when the QApplication starts, just below
    from gpt_oss_desktop.engine.logging_setup import configure_terminal

    # One line per warning or error on the terminal; INFO and tracebacks only with -v, or in the log file below.
    configure_terminal(args.verbose)
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        return _desktop_entry(install=args.install_desktop_entry)
    faulthandler.enable()  # torch and Qt can crash in native code; leave a traceback when they do
    # Deferred so that --help works without a display and without loading Qt.
    import qasync
    from PySide6.QtWidgets import QApplication

    from gpt_oss_desktop.app.desktop import crash
    from gpt_oss_desktop.app.desktop.app_icon import app_icon
    from gpt_oss_desktop.app.desktop.desktop_entry import APP_ID
    from gpt_oss_desktop.app.settings import APPLICATION, ORGANIZATION

    # argv[0] names the X11 WM_CLASS instance, which must equal the desktop entry's StartupWMClass.
    app = QApplication.instance() or QApplication([APP_ID])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("gpt-oss desktop")
    app.setDesktopFileName(APP_ID)  # the Wayland app id: docks match the window to the installed entry
    app.setWindowIcon(app_icon())
    instance: SingleInstance | None = None
    if not args.self_test and not screenshots:
        from gpt_oss_desktop.app.desktop.single_instance import ActivationRequest, claim, resolve_model_ref

        forwarded_argv = tuple(sys.argv[1:] if argv is None else argv)
        instance = claim(ActivationRequest(resolve_model_ref(args.model, Path.cwd()), forwarded_argv), parent=app)
        if instance is None:
            # The running app came to the front (and loads the model asked for). Said here, not logged: INFO is
            # off on the terminal, and whoever typed the command should see why no second window opens.
            _say(sys.stdout, "gpt-oss desktop is already running; asked it to come to the front")
            return 0
    # Before anything is written: the data folder 0700, and whatever an older version left readable made private.
    secure_user_files(args.settings)
    attach_app_log(args.verbose)
    # From here uncaught errors get a log file under the data folder (and a dialog, except in the self-test).
    reporter = crash.install(show_dialogs=not args.self_test)
    from gpt_oss_desktop.app.shell.async_generators import close_dropped_generators_on
    from gpt_oss_desktop.app.shell.garbage_collector import GuiThreadGarbageCollector

    GuiThreadGarbageCollector(app)  # owned by the app: Python cycles are collected on this thread only
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    close_dropped_generators_on(loop)  # qasync installs no async-generator hooks (app/shell/async_generators.py)
    reporter.watch_loop(loop)
    if args.self_test:
        from gpt_oss_desktop.app.shell import self_test

        with loop:
            return self_test.run(loop, timeout=args.self_test_timeout)
    if screenshots:
        with loop:
            return _screenshots(loop, args)
    assert instance is not None
    try:
        return _run_app(app, loop, args, instance)
    finally:
        instance.close()


def _screenshots(loop: qasync.QEventLoop, args: argparse.Namespace) -> int:
    from gpt_oss_desktop.app.shell import screenshot

    try:
        if args.screenshot_gallery is not None:
            shots = loop.run_until_complete(
                screenshot.capture_gallery(
                    args.screenshot_gallery, themes=args.themes, sizes=args.sizes, states=args.states
                )
            )
            # stdout, not INFO (off on the terminal): whoever asked for pictures wants to know where they went
            _say(sys.stdout, f"saved {len(shots)} pictures and their index in {args.screenshot_gallery}")
        else:
            state = args.state or screenshot.DEFAULT_STATE
            loop.run_until_complete(
                screenshot.capture(
                    args.screenshot, state, theme=args.theme, size=args.size, settings_path=args.settings
                )
            )
            _say(sys.stdout, f"saved {args.screenshot}")
    except screenshot.ScreenshotError as exc:
        logger.error("screenshot failed: %s", exc)
        return 1
    return 0


def secure_user_files(settings_path: str | None) -> list[Path]:
    """Create the user data folder private (0700), or tighten one an older version made readable to all: the folder,
    ``logs/``, the chat database with its ``-wal``/``-shm`` files, crash logs and the settings file. Returns (and
    logs) what was fixed; a failure is logged, never fatal."""
    from gpt_oss_desktop.app.settings import private_settings_paths
    from gpt_oss_desktop.engine.paths import user_data_dir
    from gpt_oss_desktop.engine.private_files import secure_data_folder

    try:
        return secure_data_folder(user_data_dir(), extra_files=private_settings_paths(settings_path))
    except OSError as exc:
        logger.error("cannot make the data folder %s private: %s", user_data_dir(), exc)
        return []


def attach_app_log(verbose: bool) -> logging.Handler | None:
    """Start writing the app's log (app/desktop/crash.py's ``app_log_path``, which Help ▸ Open log file opens too);
    None, said on the terminal, if it cannot be written."""
    from gpt_oss_desktop.app.desktop.crash import app_log_path
    from gpt_oss_desktop.engine.logging_setup import attach_log_file

    return attach_log_file(app_log_path(), verbose)


def _desktop_entry(*, install: bool) -> int:
    from gpt_oss_desktop.app.desktop import desktop_entry

    try:
        if install:
            written = desktop_entry.install()
            _say(sys.stdout, f"Added gpt-oss desktop to the applications menu: {written[-1]}")
        else:
            removed = desktop_entry.uninstall()
            _say(sys.stdout, f"Removed {len(removed)} file(s) of the gpt-oss desktop menu entry.")
    except desktop_entry.DesktopEntryError as exc:
        _say(sys.stderr, f"gpt-oss-desktop: {exc}")
        return 1
    return 0


def _say(stream: TextIO | None, text: str) -> None:
    if stream is not None:  # a windowed frozen app has no console streams
        stream.write(text + "\n")


def _run_app(app: object, loop: qasync.QEventLoop, args: argparse.Namespace, instance: SingleInstance) -> int:
    from gpt_oss_desktop.app.backends.backend_switch import SwitchableBackend
    from gpt_oss_desktop.app.backends.kernel_preparation import KernelPreparation
    from gpt_oss_desktop.app.backends.local_engine import LocalEngine
    from gpt_oss_desktop.app.backends.remote_backend import RemoteBackend
    from gpt_oss_desktop.app.desktop.single_instance import ActivationRequest, bring_to_front
    from gpt_oss_desktop.app.history import ChatStore
    from gpt_oss_desktop.app.models import server_connections
    from gpt_oss_desktop.app.models.context_menu import stored_context_length
    from gpt_oss_desktop.app.models.model_downloads import open_default_library
    from gpt_oss_desktop.app.models.saved_servers import SavedServers
    from gpt_oss_desktop.app.settings import LAST_MODEL_KEY, make_settings
    from gpt_oss_desktop.app.shell import tools_menu
    from gpt_oss_desktop.app.shell.main_window import MainWindow
    from gpt_oss_desktop.app.shell.tools_menu import open_app_tools
    from gpt_oss_desktop.app.tools.mcp_secrets import McpSecrets
    from gpt_oss_desktop.app.tools.mcp_servers import McpServers
    from gpt_oss_desktop.engine.paths import user_data_dir

    settings = make_settings(args.settings)
    history_path = user_data_dir() / HISTORY_FILE_NAME
    opened = open_history(history_path)
    # One backend for the window: the local engine, or a server from Model ▸ Connect to a server… (app/models)
    servers = SavedServers(settings)
    # The context a chat may grow to with a local model: the saved Model ▸ Context length (app/models/context_menu.py)
    backend = SwitchableBackend(
        LocalEngine(max_context=stored_context_length(settings)), RemoteBackend(servers.resolve)
    )
    kernels = (
        KernelPreparation()
    )  # the CPU kernels' first-run build, in the background (app/backends/kernel_preparation.py)
    store = opened if isinstance(opened, ChatStore) else None
    # The tools the chats offer the model, MCP servers included (app/tools, Tools menu)
    mcp_servers = McpServers()
    tools = open_app_tools(settings, mcp_servers, servers.keys)
    window = MainWindow(backend, settings, store=store, models=open_default_library(), kernels=kernels, tools=tools)
    # MCP servers' header and environment values share the saved connections' keyring (app/tools/mcp_secrets.py)
    tools_control = tools_menu.attach(window, tools, mcp_servers, McpSecrets(servers.keys))
    connections = server_connections.attach(window, window.model_menu, backend, servers, load=window.load_model)
    if not isinstance(opened, ChatStore):
        window.history_banner.show_unavailable(history_path, opened)  # the file is kept; the banner says why
    window.show()
    if instance.problem:  # a squatted or hung single-instance socket: this window runs on its own; say why
        window.statusBar().showMessage(instance.problem)
    kernels.start()
    loop.call_soon(tools_control.start_servers)

    def on_activation(request: ActivationRequest) -> None:
        bring_to_front(window)
        if request.model:
            connections.load_ref(request.model)

    instance.activation_requested.connect(on_activation)
    model_ref = args.model or settings.value(LAST_MODEL_KEY)
    if model_ref:
        loop.call_soon(connections.load_ref, str(model_ref))  # a saved server may ask for its key first
    try:
        with loop:
            loop.run_forever()  # returns when the last window closes and Qt quits
    finally:
        backend.close()
        mcp_servers.close()
        if window.store is not None:  # the one opened here, or a new one started from the banner
            window.store.close()
    return 0


def open_history(path: Path) -> ChatStore | HistoryError:
    """The chat history at ``path``, or why it cannot be opened (the app then runs without history and says so)."""
    from datetime import timedelta

    from gpt_oss_desktop.app.history import ChatStore, HistoryError

    try:
        store = ChatStore(path)
    except HistoryError as exc:
        logger.error("chat history unavailable, chats will not be saved: %s", exc)
        return exc
    # Undo of a delete is offered only in the session that deleted; whatever is still deleted now goes for good.
    try:
        store.purge(timedelta(0))
    except HistoryError as exc:
        logger.warning("could not purge deleted chats: %s", exc)
    return store
