"""The main window's menus: Chat (the conversation's commands), Model (what to load, downloads) and View's first
entry (Search chats); View's Theme is app/shell/theme_menu.py's, Help app/shell/help_menu.py's.

Each menu is one function over the window's public methods, so a new entry is a line in its menu's function;
:func:`build_model_menu` returns its menu, to which app/shell/serve_menu.py adds "Serve on localhost".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from gpt_oss_desktop.app.backends.chat_backend import DEMO_MODEL
from gpt_oss_desktop.app.history.import_action import ImportTarget, ask_import_paths, start_import
from gpt_oss_desktop.app.shell.window_keys import WindowKeysFirst
from gpt_oss_desktop.engine.harmony import ReasoningEffort

if TYPE_CHECKING:  # the window imports this module to build its menus
    from gpt_oss_desktop.app.shell.main_window import MainWindow


@dataclass(frozen=True)
class ChatActions:
    """The Chat menu's actions the window enables, checks or relabels as its state changes."""

    new_chat: QAction
    send: QAction
    stop: QAction
    regenerate: QAction
    edit_last: QAction
    instructions: QAction
    compare: QAction
    export_markdown: QAction
    export_json: QAction
    import_chats: QAction
    menu: QMenu  # for entries added later (Fit long chats to the context, app/chat/context_setting.py)
    efforts: Mapping[ReasoningEffort, QAction]  # Ctrl+1/2/3: the composer's effort, checked as it changes


def add_action(
    window: MainWindow,
    menu: QMenu,
    text: str,
    slot: Callable[..., object],
    shortcuts: tuple[QKeySequence, ...] = (),
) -> QAction:
    """An entry of ``menu`` whose shortcuts work anywhere in the window (not only while the menu is open)."""
    action = QAction(text, window)
    action.setShortcuts(list(shortcuts))
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(slot)
    menu.addAction(action)
    window.addAction(action)
    return action


def build_chat_menu(window: MainWindow) -> ChatActions:
    """Chat: new chat, send, stop, regenerate, edit, instructions, the effort, regenerate at each effort, compare,
    export."""
    menu = window.menuBar().addMenu("&Chat")
    new_chat = add_action(window, menu, "&New chat", window.new_chat, (QKeySequence(QKeySequence.StandardKey.New),))
    send = add_action(
        window, menu, "&Send", window.composer.submit, (QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter"))
    )
    stop = add_action(window, menu, "S&top", window.stop, (QKeySequence(Qt.Key.Key_Escape),))
    stop.setEnabled(False)
    regenerate = add_action(window, menu, "&Regenerate", lambda: window.regenerate(), (QKeySequence("Ctrl+R"),))
    edit_last = add_action(window, menu, "&Edit last message", window.edit_last_message, (QKeySequence("Ctrl+E"),))
    instructions = add_action(window, menu, "Chat &instructions…", window.edit_instructions, (QKeySequence("Ctrl+I"),))
    menu.addSeparator()
    efforts = _add_effort_actions(window, menu)
    menu.addSeparator()
    for level in ReasoningEffort:
        add_action(window, menu, f"Regenerate at {level.value} effort", lambda _=False, e=level: window.regenerate(e))
    menu.addSeparator()
    compare = add_action(window, menu, "&Compare efforts", window.set_compare_mode, (QKeySequence("Ctrl+Shift+E"),))
    compare.setCheckable(True)
    compare.setToolTip("One prompt, answered at low, medium and high effort side by side")
    menu.addSeparator()
    export_markdown = add_action(window, menu, "Export to &Markdown…", lambda: window.choose_export_file("markdown"))
    export_json = add_action(window, menu, "Export to &JSON…", lambda: window.choose_export_file("json"))
    import_chats = add_action(window, menu, "&Import chats…", lambda: choose_and_import(window))
    import_chats.setToolTip(
        "Chats exported as JSON from this app, or ChatGPT's data export (conversations.json or .zip)"
    )
    return ChatActions(
        new_chat,
        send,
        stop,
        regenerate,
        edit_last,
        instructions,
        compare,
        export_markdown,
        export_json,
        import_chats,
        menu,
        efforts,
    )


def choose_and_import(window: MainWindow) -> None:
    """Chat ▸ Import chats…: the files the user picks go into the window's history (app/history/import_action.py)."""
    store = window.store
    if store is None:  # the history could not be opened: the banner above the chat says why
        window.statusBar().showMessage("There is no chat history to import into.", 8000)
        return
    paths = ask_import_paths(window, window.settings)
    if not paths:
        return
    sidebar = window.sidebar
    target = ImportTarget(
        store=store,
        open_chat=window.open_chat,
        refresh=sidebar.refresh if sidebar is not None else lambda: None,
        notice=window.statusBar().showMessage,
    )
    start_import(target, paths)


def _add_effort_actions(window: MainWindow, menu: QMenu) -> dict[ReasoningEffort, QAction]:
    """Low, medium and high effort (Ctrl+1, 2, 3) for the next answers: one checked, the composer's choice."""
    group = QActionGroup(menu)
    group.setExclusive(True)
    actions: dict[ReasoningEffort, QAction] = {}
    for number, level in enumerate(ReasoningEffort, start=1):
        action = add_action(
            window,
            menu,
            f"{level.value.capitalize()} effort",
            lambda _=False, e=level: window.composer.set_effort(e),
            (QKeySequence(f"Ctrl+{number}"),),
        )
        action.setCheckable(True)
        action.setStatusTip(f"Answer the next messages at {level.value} reasoning effort")
        group.addAction(action)
        actions[level] = action

    def follow_composer(_index: int = 0) -> None:
        actions[window.composer.current_effort()].setChecked(True)

    window.composer.effort.currentIndexChanged.connect(follow_composer)
    follow_composer()
    return actions


def build_view_menu(window: MainWindow) -> QAction:
    """View: Search chats (Ctrl+K); the theme follows. Returns the search action.

    Ctrl+K and Chat ▸ Edit last message's Ctrl+E are kept from the message boxes (app/shell/window_keys.py): under
    Qt's X11 key scheme a text box takes them as "delete to the end of the line" and "go to the end of the line"
    (End still does that). While an answer is being written Edit last message is off, and the box keeps Ctrl+E."""
    menu = window.menuBar().addMenu("&View")
    search = add_action(window, menu, "&Search chats", window.focus_search, (QKeySequence("Ctrl+K"),))
    search.setStatusTip("Put the cursor in the sidebar's search box")
    keys_first = WindowKeysFirst((search, window.edit_last_action), window)
    keys_first.watch(window.composer.prompt, window.compare.prompt)
    menu.addSeparator()
    return search


def build_model_menu(window: MainWindow) -> QMenu:
    """Model: the demo, a model folder, then downloads and installed models (app/models/model_downloads.py).
    Returned for entries added later."""
    menu = window.menuBar().addMenu("&Model")
    load_demo = menu.addAction("Load the &demo model")
    load_demo.triggered.connect(lambda: window.load_model(DEMO_MODEL))
    open_folder = menu.addAction("&Open a model folder…")
    open_folder.setShortcut(QKeySequence.StandardKey.Open)
    open_folder.triggered.connect(window.choose_model_folder)
    window.model_downloads.add_to_menu(menu)
    return menu
