"""Chat ▸ Fit long chats to the context: on by default, saved, and passed to the local engine (through the window's
backend switch)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.context_setting import ACTION_TEXT
from gpt_oss_desktop.app.settings import FIT_CONTEXT_KEY


def test_on_by_default_saved_and_applied(make_window: Any, settings: QSettings) -> None:
    engine = LocalEngine()
    window = make_window(engine)
    action = window.context_setting.action
    chat_menu_texts = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    assert ACTION_TEXT in chat_menu_texts and action.isCheckable() and action.isChecked()
    assert engine.fit_context
    action.setChecked(False)
    assert not engine.fit_context
    settings.sync()
    assert QSettings(settings.fileName(), QSettings.Format.IniFormat).value(FIT_CONTEXT_KEY) in (False, "false")


def test_a_saved_choice_applies_at_start(make_window: Any, settings: QSettings) -> None:
    settings.setValue(FIT_CONTEXT_KEY, False)
    engine = LocalEngine()
    window = make_window(engine)
    assert not window.context_setting.action.isChecked() and not engine.fit_context
