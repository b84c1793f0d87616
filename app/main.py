"""Entry point of ``gpt-oss-desktop`` and ``python -m app``: parse flags, start Qt on a qasync loop, show the window."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import qasync

    from app.history import ChatStore

logger = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpt-oss-desktop", description="Chat with a local gpt-oss model.")
    parser.add_argument("--model", metavar="PATH|demo", help="checkpoint folder to load, or 'demo'")
    parser.add_argument(
        "--screenshot", metavar="FILE", type=Path, help="render the window in a sample state to a PNG, then exit"
    )
    parser.add_argument("--settings", metavar="INI", help="keep preferences in this ini file instead")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    faulthandler.enable()  # torch and Qt can crash in native code; leave a traceback when they do
    # Deferred so that --help works without a display and without loading Qt.
    import qasync
    from PySide6.QtWidgets import QApplication

    from app.settings import APPLICATION, ORGANIZATION

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("gpt-oss desktop")
    from app.gc_guard import GuiThreadGarbageCollector

    GuiThreadGarbageCollector(app)  # owned by the app: Python cycles are collected on this thread only
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    if args.screenshot is not None:
        from app.screenshot import capture

        with loop:
            loop.run_until_complete(capture(args.screenshot, args.settings))
        logger.info("saved %s", args.screenshot)
        return 0
    return _run_app(app, loop, args)


def _run_app(app: object, loop: qasync.QEventLoop, args: argparse.Namespace) -> int:
    from app.engine_thread import LocalEngine
    from app.main_window import MainWindow
    from app.model_menu import open_default_library
    from app.settings import LAST_MODEL_KEY, make_settings

    settings = make_settings(args.settings)
    store = _open_history()
    backend = LocalEngine()
    window = MainWindow(backend, settings, store=store, models=open_default_library())
    window.show()
    model_ref = args.model or settings.value(LAST_MODEL_KEY)
    if model_ref:
        loop.call_soon(window.load_model, str(model_ref))
    try:
        with loop:
            loop.run_forever()  # returns when the last window closes and Qt quits
    finally:
        backend.close()
        if store is not None:
            store.close()
    return 0


def _open_history() -> ChatStore | None:
    """The chat history in the user data folder, or None (the app then runs without history) if it cannot open."""
    from datetime import timedelta

    from app.history import ChatStore, HistoryError
    from engine.paths import user_data_dir

    try:
        store = ChatStore(user_data_dir() / "history.sqlite3")
    except HistoryError as exc:
        logger.error("chat history unavailable, chats will not be saved: %s", exc)
        return None
    # Undo of a delete is offered only in the session that deleted; whatever is still deleted now goes for good.
    try:
        store.purge(timedelta(0))
    except HistoryError as exc:
        logger.warning("could not purge deleted chats: %s", exc)
    return store
