"""The main window: chat pane, composer, status bar; draws the chat session (app/chat/chat_session.py) that drives the
backend on the qasync loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.backends import kernel_preparation
from gpt_oss_desktop.app.backends.chat_backend import DEMO_MODEL, ChatBackend, LoadError, LoadErrorKind, ModelInfo
from gpt_oss_desktop.app.backends.kernel_preparation import KernelPreparation
from gpt_oss_desktop.app.chat import context_setting, stats
from gpt_oss_desktop.app.chat.attachments import ContextRoom, conversation_tokens
from gpt_oss_desktop.app.chat.chat_session import (
    ChatListener,
    ChatSession,
    LiveAnswer,
    SendRequest,
    saved_effort,
    stored_turn,
)
from gpt_oss_desktop.app.chat.chat_view import READING_WIDTH, AssistantMessage, ChatView, UserBubble
from gpt_oss_desktop.app.chat.composer import Composer, Draft
from gpt_oss_desktop.app.chat.conversation import Conversation
from gpt_oss_desktop.app.chat.effort_hint import EffortCostsRefresher
from gpt_oss_desktop.app.chat.instructions_dialog import ask_instructions, default_instructions
from gpt_oss_desktop.app.chat.tool_access import ToolAccess
from gpt_oss_desktop.app.chat.tool_calls import Approval, ToolCallRecord
from gpt_oss_desktop.app.compare.compare_view import CompareView
from gpt_oss_desktop.app.downloads.model_library import ModelLibrary
from gpt_oss_desktop.app.history import Attachment, Chat, ChatStore, HistoryError, Message
from gpt_oss_desktop.app.history.banner import HistoryBanner
from gpt_oss_desktop.app.history.export_dialog import ask_export_path
from gpt_oss_desktop.app.history.sidebar import HistorySidebar
from gpt_oss_desktop.app.models import context_menu, weights_menu
from gpt_oss_desktop.app.models.model_downloads import ModelDownloads
from gpt_oss_desktop.app.settings import LAST_MODEL_KEY
from gpt_oss_desktop.app.shell import help_menu, serve_menu, theme_menu, window_menus
from gpt_oss_desktop.app.shell.notices import EmptyState, ErrorBanner
from gpt_oss_desktop.app.shell.status_bar import ModelStatus, StatusBar
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.private_files import write_private_text

logger = logging.getLogger(__name__)

# How long closing the window waits for a running answer to stop and be saved.
_CLOSE_GRACE_MS = 3000


class MainWindow(QMainWindow):
    """The app's window. Owns the visible conversation; the backend owns the model.

    Signals:
        model_loaded(ModelInfo): a ModelInfo, after a successful load.
        load_failed(LoadError): a LoadError; the window shows it and stays usable (a cancelled load is one too, of
            kind CANCELLED, and only noted in the status bar).
        generation_finished(object): the Done that ended an answer (None if the request failed).
        busy_changed(bool): an answer started or ended.
        chat_saved(int): the current chat's id, after a message of it was written to the history store.

    With a ``store``, every user message and answer is saved to the current chat (created on the first send): an
    answer every few seconds while it streams, then in full with its statistics. Leaving a chat while its answer
    streams stops that answer and saves it there, marked stopped. A sidebar lists, searches, renames, deletes and
    reopens saved chats. Without a store, nothing is kept.
    """

    model_loaded = Signal(ModelInfo)
    load_failed = Signal(LoadError)
    # object: Done | None, and a Signal type cannot say "or None".
    generation_finished = Signal(object)
    busy_changed = Signal(bool)
    chat_saved = Signal(int)

    def __init__(
        self,
        backend: ChatBackend,
        settings: QSettings,
        parent: QWidget | None = None,
        *,
        store: ChatStore | None = None,
        models: ModelLibrary | None = None,
        kernels: KernelPreparation | None = None,
        tools: AppTools | None = None,
    ) -> None:
        super().__init__(parent)
        self.backend = backend
        self.settings = settings
        self.store = store
        # The tools the chats offer the model (app/tools); None offers none (tests, --self-test).
        self.tools = tools
        self._kernels = (
            kernels  # the CPU kernels' first-run build, started by the app (app/backends/kernel_preparation.py)
        )
        # The chat on screen: its conversation, saved chat and running answer (app/chat/chat_session.py).
        self.session = self._new_session()
        self._load_task: asyncio.Task[None] | None = None
        self._editing_turn: int | None = None  # the turn whose question the composer is editing
        self._context_used: int | None = None  # tokens the last answer filled (None: not known, see _context_room)
        self._current: AssistantMessage | None = None  # the answer streaming on screen
        # Sessions left while answering: stopped, they end within a token and save themselves into their own chat.
        self._detached: set[ChatSession] = set()
        # What the composer held in each chat the user left (None: the unsaved new chat), given back on return.
        self._drafts: dict[int | None, Draft] = {}
        self._closing = False
        self.setWindowTitle("gpt-oss desktop")
        self.resize(1000, 760)

        self.banner = ErrorBanner(self)
        self.empty = EmptyState(self)
        self.chat = ChatView(self)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.chat)
        self.composer = Composer(settings, self)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 8, 8, 0)
        layout.setSpacing(6)
        layout.addWidget(self.banner)
        layout.addWidget(self.stack, 1)
        # The composer keeps to the messages' reading width and centres under them in a wide window (the side
        # stretches only get room past that width).
        composer_layout = self.composer.layout()
        assert composer_layout is not None  # the composer lays itself out in its constructor
        margins = composer_layout.contentsMargins()
        self.composer.setMaximumWidth(READING_WIDTH + margins.left() + margins.right())
        composer_row = QHBoxLayout()
        composer_row.addStretch(1)
        composer_row.addWidget(self.composer, 1000)
        composer_row.addStretch(1)
        layout.addLayout(composer_row)
        # Compare mode (app/compare/compare_view.py) replaces the chat pane and composer; the sidebar stays.
        # Without the thinking budget: the comparison shows what each effort's thinking buys, cut by nothing.
        self.compare = CompareView(
            backend,
            store=store,
            sampling=lambda: dataclasses.replace(self.composer.sampling_params(), reasoning_budget=None),
            parent=self,
        )
        self.compare.conversation = lambda: self.conversation  # the chat on screen, offered as context
        self._chat_page = central
        self.modes = QStackedWidget(self)
        self.modes.addWidget(central)
        self.modes.addWidget(self.compare)
        self.sidebar: HistorySidebar | None = None
        self._splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self._splitter.addWidget(self.modes)
        # Shown when the history file cannot be opened (app/main.py); the fresh history it can start comes back here.
        self.history_banner = HistoryBanner(self)
        self.history_banner.store_opened.connect(self.attach_store)
        outer = QWidget(self)
        outer_layout = QVBoxLayout(outer)
        outer_layout.setContentsMargins(0, 0, 0, 0)
        outer_layout.addWidget(self.history_banner)
        outer_layout.addWidget(self._splitter, 1)
        self.setCentralWidget(outer)
        if store is not None:
            self.attach_store(store)

        bar = StatusBar(self)  # its messages elide (app/shell/status_bar.py)
        self.setStatusBar(bar)
        self.status = ModelStatus(bar, self.cancel_load)  # model, device, memory, context; a load's progress
        self.compare.kernels = kernels
        self.compare.settings = settings
        # One send-key setting for both prompts (set in the composer's Sampling menu).
        self.compare.set_ctrl_enter_sends(self.composer.prompt.ctrl_enter_sends)
        self.composer.sampling.ctrl_enter_action.toggled.connect(self.compare.set_ctrl_enter_sends)
        if kernels is not None:
            kernel_preparation.attach(self.statusBar(), kernels)
        # Download wizard, model manager, installed-models menu (app/models/model_downloads.py)
        self.model_downloads = ModelDownloads(
            self, self.load_model, models, loaded_model=lambda: self.backend.info.name if self.backend.info else None
        )
        self._build_actions()
        self.theme = theme_menu.attach(self, settings)  # the saved theme, View > Theme, icons (app/shell/theme.py)
        self.help = help_menu.attach(self, kernels)  # last in the menu bar (app/shell/help_menu.py)
        for source in (self.empty, self.banner):
            source.demo_requested.connect(lambda: self.load_model(DEMO_MODEL))
            source.open_requested.connect(self.choose_model_folder)
            source.download_requested.connect(lambda: self.model_downloads.open_wizard())
        self.composer.send_requested.connect(self.send_message)
        self.composer.context_room = self._context_room  # files that would not fit are named before they are sent
        # What each effort has cost here, beside the selector: read again on every load and every finished answer.
        self.effort_costs = EffortCostsRefresher(
            lambda: self.store.path if self.store is not None else None, self.composer.show_effort_costs, self
        )
        self.generation_finished.connect(lambda _done: self.effort_costs.refresh())
        self.chat.intro.example_chosen.connect(self.send_message)
        self.composer.stop_requested.connect(self.stop)
        self.compare.busy_changed.connect(self._set_busy)
        self.compare.continue_requested.connect(self._continue_from_comparison)
        self.compare.saved.connect(self._on_comparison_saved)
        self.compare.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.busy_changed.connect(self.compare.set_engine_busy)
        self._set_model(backend.info)
        self.set_instructions(default_instructions(settings))  # the first, empty chat is a new chat too
        self.composer.prompt.setFocus()
        QTimer.singleShot(0, self.model_downloads.offer_resume)  # a download the last session left unfinished

    # -- public API ---------------------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """An answer or a comparison is being generated."""
        return self.session.running or self.compare.running

    @property
    def conversation(self) -> Conversation:
        return self.session.conversation

    @property
    def chat_id(self) -> int | None:
        """The current chat in the store; None until its first message is saved."""
        return self.session.chat_id

    @property
    def instructions(self) -> str:
        """The current chat's developer instructions (harmony's place for them)."""
        return self.session.instructions

    @property
    def compare_mode(self) -> bool:
        return self.modes.currentWidget() is self.compare

    def set_compare_mode(self, on: bool) -> None:
        """Show the effort comparison (True) or the chat (False)."""
        self.modes.setCurrentWidget(self.compare if on else self._chat_page)
        self.compare_action.setChecked(on)
        # Ctrl+Enter and Ctrl+R belong to the chat's composer; in compare mode the comparison prompt takes Ctrl+Enter.
        self.send_action.setEnabled(not on)
        self.regenerate_action.setEnabled(not on and not self.busy)
        self.edit_last_action.setEnabled(not on and not self.busy)
        if self.sidebar is not None:
            self.sidebar.set_current(self.compare.chat_id if on else self.chat_id)
        (self.compare.prompt if on else self.composer.prompt).setFocus()

    def attach_store(self, store: object) -> None:
        """Save chats to ``store`` (a ChatStore) from now on, and list them in the sidebar."""
        assert isinstance(store, ChatStore)
        self.store = store
        self.session.store = store
        self.compare.store = store
        if self.sidebar is not None:
            self.sidebar.set_store(store)
            return
        self.sidebar = HistorySidebar(store, self)
        self.sidebar.chat_selected.connect(self.open_chat)
        self.sidebar.chat_deleted.connect(self._on_chat_deleted)
        self.sidebar.error.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self._splitter.insertWidget(0, self.sidebar)
        self._splitter.setStretchFactor(1, 1)
        self._splitter.setSizes([240, 760])

    def focus_search(self) -> None:
        """Put the cursor in the sidebar's chat search, its text selected (View > Search chats, Ctrl+K)."""
        if self.sidebar is None:
            self.statusBar().showMessage("No chat history to search: it could not be opened", 8000)
            return
        sizes = self._splitter.sizes()
        if sizes[0] == 0:  # the sidebar was dragged shut: open it again
            self._splitter.setSizes([240, max(sizes[1] - 240, 0)])
        self.sidebar.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.sidebar.search.selectAll()

    def load_model(self, model_ref: str) -> asyncio.Task[None] | None:
        """Load ``model_ref`` in the background (replacing the current model). None if a load is running."""
        if self._load_task is not None:
            return None
        if self.busy:
            self.stop()
        self._load_task = asyncio.ensure_future(self._load(model_ref))
        return self._load_task

    def cancel_load(self) -> None:
        """Stop the running model load (the window then has no model, as before any load)."""
        if self._load_task is not None:
            self.backend.cancel_load()

    def choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a gpt-oss model folder")
        if folder:
            self.load_model(folder)

    def send_message(self, text: str, attachments: Sequence[Attachment] = ()) -> asyncio.Task[None] | None:
        """Add a user message (``text`` and its attached files) and start answering it; None if busy, if no model
        is loaded or if there is nothing to send.

        While the composer is editing a message, ``text`` is a new version of it: the chat goes on from there (on
        screen now; the old version and everything after it stay in the saved chat as an earlier version, ‹ 1/2 ›),
        and the composer gets back what it held before the edit.
        """
        files = tuple(attachments)
        if self.busy or self.backend.info is None or not (text.strip() or files):
            return None
        edit_turn = self._editing_turn if self.composer.editing else None
        if edit_turn is not None:
            self._take_back_from(edit_turn)
        for widget in self.chat.messages():
            if isinstance(widget, AssistantMessage):
                # The harmony renderer drops finished turns' reasoning from the prompt; say so on screen.
                widget.reasoning.mark_not_sent()
                widget.set_actions_enabled(False)
        self._add_user_bubble(text, files)
        request = SendRequest(text, self.composer.current_effort(), self.composer.sampling_params(), files)
        task = self.session.send(request, edit_turn=edit_turn)
        if edit_turn is not None:
            self._editing_turn = None
            self.composer.finish_edit()
        return task

    def regenerate(self, effort: ReasoningEffort | None = None) -> asyncio.Task[None] | None:
        """Replace the last answer, at ``effort`` (default: the effort that answer used)."""
        turn = self.conversation.last
        if self.busy or turn is None or self.backend.info is None:
            return None
        last = self._last_assistant()
        if effort is None:
            effort = last.effort if last is not None else self.composer.current_effort()
        if last is not None:
            self.chat.remove(last)
        return self.session.regenerate(effort, self.composer.sampling_params())

    def stop(self) -> None:
        """Cancel the running answer or comparison (it stops after the current token and keeps what it has), or a
        model load."""
        if self.session.running:
            # Through the session: a Stop that comes before the backend started this answer is remembered there.
            self.session.stop()
        elif self.compare.running:
            self.compare.stop()
        elif self._load_task is not None:
            self.cancel_load()

    def edit_last_message(self) -> bool:
        """Edit the last user message (:meth:`edit_message`); False if busy or there is none."""
        return self.edit_message(len(self.conversation.turns) - 1)

    def edit_message(self, turn_index: int) -> bool:
        """Put turn ``turn_index``'s user message into the composer, to be edited and sent again.

        Nothing changes until the edited text is sent: the chat then goes on from the edited message, and what was
        there stays as an earlier version (nothing is deleted). Esc (or the composer's Cancel) ends the edit and
        gives the composer back what it held. False if busy or there is no such message.
        """
        if self.busy or not 0 <= turn_index < len(self.conversation.turns):
            return False
        self._editing_turn = turn_index
        turn = self.conversation.turns[turn_index]
        self.composer.begin_edit(turn.user, turn.attachments)
        self.composer.prompt.setFocus()
        return True

    def show_version(self, position: int, index: int) -> bool:
        """Show version ``index`` of the stored message at ``position`` (and the chat as it went on from it); the
        version shown until now stays. False while busy or if the version cannot be shown."""
        if self.busy:
            return False
        thread = self.session.show_version(position, index)
        if thread is None:
            return False
        self.composer.cancel_edit()
        self.chat.clear()
        self._show_thread(thread)
        return True

    def _take_back_from(self, turn_index: int) -> None:
        """Remove turn ``turn_index`` and every later one from the screen (an edit of its question is being sent);
        the session keeps them in the saved chat as an earlier version."""
        widgets = self.chat.messages()
        bubbles = [i for i, w in enumerate(widgets) if isinstance(w, UserBubble)]
        if turn_index < len(bubbles):
            for widget in widgets[bubbles[turn_index] :]:
                self.chat.remove(widget)

    def _add_user_bubble(self, text: str, attachments: Sequence[Attachment] = ()) -> UserBubble:
        bubble = self.chat.add_user(text, attachments)
        bubble.edit_requested.connect(lambda: self.edit_message(self._turn_of(bubble)))
        bubble.versions.version_requested.connect(
            lambda index: self.show_version(stored_turn(self._turn_of(bubble)).user, index)
        )
        return bubble

    def _turn_of(self, bubble: UserBubble) -> int:
        return [w for w in self.chat.messages() if isinstance(w, UserBubble)].index(bubble)

    def _refresh_versions(self) -> None:
        """Put each stored message's versions (‹ 2/3 ›) under it, from the saved chat."""
        versions = self.session.versions()
        turn = -1
        for widget in self.chat.messages():
            if isinstance(widget, UserBubble):
                turn += 1
                found = versions.get(stored_turn(turn).user)
            elif isinstance(widget, AssistantMessage):
                found = versions.get(stored_turn(turn).answer)
            else:
                continue
            if found is None:
                widget.versions.set_versions(0, 1)
            else:
                widget.versions.set_versions(found.current, found.count)

    def set_instructions(self, text: str) -> None:
        """Set the current chat's instructions (sent as harmony's developer message from the next answer on)."""
        self.session.set_instructions(text)
        self.instructions_action.setText("Chat &instructions… (set)" if self.instructions else "Chat &instructions…")

    def edit_instructions(self) -> None:
        text = ask_instructions(self, self.instructions, self.settings)
        if text is not None:
            self.set_instructions(text)

    def new_chat(self) -> None:
        """Leave the current chat for an empty, unsaved one. A running answer is stopped and saved into its own chat
        (marked stopped); the composer's draft stays with the chat it was written in."""
        self._leave_chat()
        self.set_instructions(default_instructions(self.settings))  # the user's usual ones (instructions dialog)
        self._show_context(0)
        self._restore_draft(None)

    def _leave_chat(self) -> None:
        self._stop_in_background()
        draft = self.composer.draft()
        if draft.empty:
            self._drafts.pop(self.chat_id, None)
        else:
            self._drafts[self.chat_id] = draft
        self.session = self._new_session()
        self.status.clear_context()  # the chat left behind filled it; the next one's is known after its next answer
        self._context_used = None
        self.chat.clear()
        self.set_instructions("")
        if self.sidebar is not None:
            self.sidebar.set_current(None)
        self._update_export_actions()

    def _restore_draft(self, chat_id: int | None) -> None:
        self.composer.set_draft(self._drafts.pop(chat_id, Draft()))
        self.composer.prompt.setFocus()

    def _stop_in_background(self) -> None:
        """The running answer's chat is being left: stop the answer (the engine ends it within a token) and let it
        save itself into its own chat, with its reasoning, effort and statistics, marked stopped. What has arrived
        is written now, so it is kept even if the app dies before the answer ends."""
        if self.session.detach() is None:
            return
        self._detached.add(self.session)
        self._current = None
        self._set_busy(False)

    def open_chat(self, chat_id: int) -> bool:
        """Show a saved chat, ready to continue, with the composer's draft left in it. A running answer is stopped
        and saved (as with New chat).

        Reasoning of saved answers is shown, marked "not sent to model": the harmony renderer drops finished turns'
        reasoning from the next prompt. Returns False (and says why in the status bar) if it cannot be read.
        """
        if self.store is None:
            return False
        try:
            chat = self.store.get_chat(chat_id)
        except HistoryError as exc:
            self._history_failed("Could not open the chat", exc)
            return False
        if chat.kind == "comparison":
            return self._open_comparison(chat)
        self.set_compare_mode(False)
        self._leave_chat()
        self.session.chat_id = chat.id
        self.set_instructions(chat.developer_instructions)
        self._show_thread(chat.thread())
        if self.sidebar is not None:
            self.sidebar.set_current(chat.id)
        self._update_export_actions()
        self.stack.setCurrentWidget(self.chat)
        self._restore_draft(chat.id)
        return True

    def _show_thread(self, thread: tuple[Message, ...]) -> None:
        """Put saved messages on screen and into the conversation, ready to continue."""
        last_answer: AssistantMessage | None = None
        for turn, record in self.session.restore(thread):
            self._add_user_bubble(turn.user, turn.attachments)
            if record is not None:
                last_answer = self._show_saved_answer(record)
        if last_answer is not None:
            last_answer.set_actions_enabled(True)
        self._refresh_versions()

    def _open_comparison(self, chat: Chat) -> bool:
        if not self.compare.show_saved(chat):
            self.statusBar().showMessage("Wait for the running comparison to finish (or stop it) first", 8000)
            return False
        self.set_compare_mode(True)
        return True

    def _continue_from_comparison(self, target: object) -> None:
        """A comparison column becomes a normal chat: a saved one by id, or (without a store) its messages."""
        if isinstance(target, int):
            if self.sidebar is not None:
                self.sidebar.refresh()
            self.open_chat(target)
            return
        self.set_compare_mode(False)
        self.new_chat()
        # As when the comparison is saved: its answers were written without instructions, and so it continues.
        self.set_instructions("")
        self._show_thread(tuple(m for m in target if isinstance(m, Message)) if isinstance(target, tuple) else ())
        self.stack.setCurrentWidget(self.chat)

    def _on_comparison_saved(self, chat_id: int) -> None:
        if self.sidebar is not None:
            self.sidebar.refresh()
            if self.compare_mode:
                self.sidebar.set_current(chat_id)

    def export_chat(self, path: Path | str, fmt: Literal["markdown", "json"]) -> bool:
        """Write the current chat to ``path`` as Markdown or JSON. False if there is nothing saved to export."""
        if self.store is None or self.chat_id is None:
            return False
        try:
            if fmt == "markdown":
                text = self.store.export_markdown(self.chat_id)
            else:
                text = self.store.export_json(self.chat_id)
            write_private_text(Path(path), text)  # chats are private, exports too
        except (HistoryError, OSError) as exc:
            self.statusBar().showMessage(f"Could not export the chat: {exc}", 8000)
            logger.warning("export to %s failed: %s", path, exc)
            return False
        self.statusBar().showMessage(f"Exported to {path}", 5000)
        return True

    def choose_export_file(self, fmt: Literal["markdown", "json"]) -> None:
        if self.chat_id is None:
            return
        suffix, kind = (".md", "Markdown (*.md)") if fmt == "markdown" else (".json", "JSON (*.json)")
        path = ask_export_path(
            self, self.settings, caption="Export chat", title=self._chat_title(), suffix=suffix, name_filter=kind
        )
        if path is not None:
            self.export_chat(path, fmt)

    def _chat_title(self) -> str:
        if self.store is None or self.chat_id is None:
            return ""
        try:
            return self.store.get_chat(self.chat_id).title
        except HistoryError as exc:  # the export then fails too, and says so; the name is only a suggestion
            logger.warning("cannot read the chat's title: %s", exc)
            return ""

    # -- generation ---------------------------------------------------------------------------------------------

    def _new_session(self) -> ChatSession:
        tools = self.tools
        access = (
            ToolAccess(toolbox=tools.toolbox, policy=tools.policy, remember=tools.remember)
            if tools is not None
            else None
        )
        session = ChatSession(self.backend, store=self.store, wait_ready=self._wait_for_kernels, tools=access)
        session.listener = _SessionView(self, session)
        return session

    async def _wait_for_kernels(self) -> None:
        """A question sent while the CPU kernels build waits for them; its answer's header says so meanwhile."""
        info = self.backend.info
        header = self._current.reasoning.header if self._current is not None else None
        await kernel_preparation.wait_before_answer(self._kernels, info.device if info else None, header)

    def _add_answer_widget(self, effort: ReasoningEffort) -> AssistantMessage:
        message = self.chat.add_assistant(effort)
        message.regenerate_requested.connect(self._on_regenerate_requested)
        message.versions.version_requested.connect(
            lambda index: self.show_version(stored_turn(self._turn_before(message)).answer, index)
        )
        message.branch_requested.connect(lambda: self.branch_chat(stored_turn(self._turn_before(message)).answer))
        return message

    def branch_chat(self, through: int | None = None) -> bool:
        """Copy the open chat up to position ``through`` (None: all of it) into a new chat and open that one; False,
        and the status bar says why, when there is nothing saved to branch from."""
        if self.store is None or self.chat_id is None:
            self.statusBar().showMessage("This chat is not saved, so there is nothing to branch from.", 8000)
            return False
        if self.busy:
            # The answer being written is not saved yet: a branch now would leave it out without saying so.
            self.statusBar().showMessage("Wait for the answer to finish (or stop it), then branch.", 8000)
            return False
        try:
            chat = self.store.branch_chat(self.chat_id, through)
        except (HistoryError, ValueError) as exc:
            self.statusBar().showMessage(f"Could not branch the chat: {exc}", 8000)
            return False
        if self.sidebar is not None:
            self.sidebar.refresh()
        self.open_chat(chat.id)
        self.statusBar().showMessage(f"Branched into “{chat.title}”: the original chat is unchanged.", 8000)
        return True

    def _turn_before(self, widget: QWidget) -> int:
        """The turn an answer widget belongs to: that of the last user message above it."""
        widgets = self.chat.messages()
        return sum(isinstance(w, UserBubble) for w in widgets[: widgets.index(widget)]) - 1

    def _on_regenerate_requested(self, effort: object) -> None:
        self.regenerate(effort if isinstance(effort, ReasoningEffort) else None)

    def _last_assistant(self) -> AssistantMessage | None:
        for widget in reversed(self.chat.messages()):
            if isinstance(widget, AssistantMessage):
                return widget
        return None

    # -- history ------------------------------------------------------------------------------------------------
    #
    # The session saves (app/chat/chat_session.py); a failed write is reported in the status bar and the chat goes on.

    def _on_answer_saved_in_background(self, record: Message) -> None:
        """An answer stopped by leaving its chat was saved: the sidebar moves the chat up; if the user is already
        back in that chat, the partial copy shown from the history is replaced by the final one."""
        if self.sidebar is not None:
            self.sidebar.refresh()
        if self.busy:
            return
        last = self._last_assistant()
        if last is None or self.session.accept_saved_answer(record) is None:
            return
        self.chat.remove(last)
        self._show_saved_answer(record).set_actions_enabled(True)

    def _saved(self) -> None:
        assert self.chat_id is not None
        if self.sidebar is not None:
            self.sidebar.set_current(self.chat_id)
            self.sidebar.refresh()
        self._update_export_actions()
        self._refresh_versions()
        self.chat_saved.emit(self.chat_id)

    def _show_saved_answer(self, record: Message) -> AssistantMessage:
        message = self._add_answer_widget(saved_effort(record))
        if record.analysis:
            message.append_reasoning(record.analysis)
        for call in record.tool_calls:
            message.show_tool_call(ToolCallRecord.from_record(call))
        if record.text:
            message.append_answer(record.text)
        saved = stats.AnswerStats.from_record(record.stats)
        message.finish(saved, interrupted=not record.complete)
        if saved.error and record.complete:
            message.show_error(saved.error)  # as the live chat showed it ("connection lost …", with Retry)
        message.reasoning.mark_not_sent()
        message.set_actions_enabled(False)
        return message

    def _on_chat_deleted(self, chat_id: int) -> None:
        if chat_id == self.chat_id:
            self.new_chat()

    def _history_failed(self, what: str, exc: HistoryError) -> None:
        logger.warning("%s: %s", what, exc)
        self.statusBar().showMessage(f"{what}: {exc}", 8000)

    def _update_export_actions(self) -> None:
        for act in (self.export_markdown_action, self.export_json_action):
            act.setEnabled(self.chat_id is not None)

    def _set_busy(self, busy: bool) -> None:
        self.composer.set_busy(busy)
        self.stop_action.setEnabled(busy or self._load_task is not None)
        self.regenerate_action.setEnabled(not busy and not self.compare_mode)
        self.edit_last_action.setEnabled(not busy and not self.compare_mode)
        self.busy_changed.emit(busy)

    # -- models -------------------------------------------------------------------------------------------------

    async def _load(self, model_ref: str) -> None:
        self.banner.hide()
        self._set_model(None)
        self.status.set_loading(True)
        self.stop_action.setEnabled(True)  # Esc cancels the load
        self.empty.set_loading("Loading…")
        try:
            info = await self.backend.load(model_ref, self._on_load_progress)
        except LoadError as exc:
            if exc.kind is LoadErrorKind.CANCELLED:
                self.statusBar().showMessage("Loading cancelled", 5000)
            else:
                self.statusBar().clearMessage()  # the last progress step ("Loading …") is no longer true
                self.banner.show_load_error(exc)
            self.load_failed.emit(exc)
        else:
            self.settings.setValue(LAST_MODEL_KEY, model_ref)
            self._set_model(info)
            self.model_loaded.emit(info)
        finally:
            self._load_task = None
            self.status.set_loading(False)
            self.stop_action.setEnabled(self.busy)
            self.empty.set_loading(None)

    def _on_load_progress(self, fraction: float, text: str) -> None:
        self.status.set_progress(fraction)
        self.empty.set_loading(text)
        self.statusBar().showMessage(text, 3000)

    def _set_model(self, info: ModelInfo | None) -> None:
        self.serving.refresh()
        self.composer.set_can_send(info is not None)
        self.compare.set_model_loaded(info is not None)
        self.status.show_model(info)
        self.effort_costs.model_changed(None if info is None else info.name)
        if info is None:
            if not self.conversation.turns:
                self.stack.setCurrentWidget(self.empty)
            return
        self.chat.intro.set_model(info.name, toy=info.name.endswith("(toy)"))
        self._show_context(0)
        self.stack.setCurrentWidget(self.chat)
        self.composer.prompt.setFocus()

    # -- status bar ---------------------------------------------------------------------------------------------

    def _show_context(self, used: int) -> None:
        self._context_used = used
        info = self.backend.info
        if info is not None:
            self.status.show_context(used, info.context_length)

    def _context_room(self) -> ContextRoom | None:
        """The context the composer's next message goes into (asked when it sends files): what the last answer
        filled, or an estimate from the chat's text where that is not known (a chat just opened, a model just
        loaded, an edit that takes back later turns). None without a model."""
        info = self.backend.info
        if info is None:
            return None
        turns = self.conversation.turns
        editing = self._editing_turn if self.composer.editing else None
        used = self._context_used
        if editing is not None or used is None or (not used and turns):
            used = conversation_tokens(turns[:editing] if editing is not None else turns)
        return ContextRoom(used, info.context_length)

    # -- actions ------------------------------------------------------------------------------------------------

    def _context_length_changed(self, info: ModelInfo) -> None:
        """The local model now allows chats of ``info.context_length`` tokens: the status bar's context says so."""
        self.status.show_model(info)
        if self._context_used is not None:
            self.status.show_context(self._context_used, info.context_length)

    def _build_actions(self) -> None:
        """The Chat and Model menus and View's Search chats (app/shell/window_menus.py); View's Theme comes with the
        theme, Help last."""
        actions = window_menus.build_chat_menu(self)
        self.new_chat_action = actions.new_chat
        self.send_action = actions.send
        self.stop_action = actions.stop
        self.regenerate_action = actions.regenerate
        self.edit_last_action = actions.edit_last
        self.instructions_action = actions.instructions
        self.compare_action = actions.compare
        self.export_markdown_action = actions.export_markdown
        self.export_json_action = actions.export_json
        self.import_chats_action = actions.import_chats
        self.effort_actions = actions.efforts
        self._update_export_actions()
        # Chat > Fit long chats to the context, saved, applied to the local engine (app/chat/context_setting.py)
        self.context_setting = context_setting.attach(self, self.backend, self.settings, actions.menu)
        self.model_menu = window_menus.build_model_menu(self)
        # Model > 8-bit attention weights, saved, for the next load (app/models/weights_menu.py)
        self.weights_setting = weights_menu.attach(self, self.backend, self.settings, self.model_menu)
        # Model > Context length, saved, applied to the loaded model from its next answer (app/models/context_menu.py)
        self.context_length_setting = context_menu.attach(
            self, self.backend, self.settings, self.model_menu, changed=self._context_length_changed
        )
        # Model > Serve on localhost, its URL in the status bar and the request log (app/shell/serve_menu.py)
        self.serving = serve_menu.attach(self, self.backend, self.settings, self.model_menu)
        self.load_failed.connect(lambda _error: self.serving.refresh())
        self.search_action = window_menus.build_view_menu(self)  # View > Search chats; the theme adds to it

    # -- Qt overrides -------------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        pending = [s.task for s in (self.session, *self._detached) if s.task is not None and not s.task.done()]
        if pending and not self._closing:
            # Closing mid-answer: stop it and close once it has ended (and any answer stopped by a chat switch), so
            # the partial answer is saved like a stopped one instead of being lost with the event loop. The engine
            # stops within a token; the timer is a backstop.
            self._closing = True
            event.ignore()
            self.stop()

            def close_when_all_ended(_task: object) -> None:
                if all(t.done() for t in pending):
                    self.close()

            for task in pending:
                task.add_done_callback(close_when_all_ended)
            QTimer.singleShot(_CLOSE_GRACE_MS, self.close)
            return
        self._closing = True
        self.model_downloads.shutdown()
        self.stop()
        self.status.stop()
        super().closeEvent(event)


class _SessionView(ChatListener):
    """Draws one session's answers into the window while the session is the window's current one; once the window
    has left it (a chat switch mid-answer), only reports its saves."""

    def __init__(self, window: MainWindow, session: ChatSession) -> None:
        self.window = window
        self.session = session
        self.message: AssistantMessage | None = None

    @property
    def shown(self) -> bool:
        return self.session is self.window.session

    def busy_changed(self, running: bool) -> None:
        if not self.shown:
            return
        if not running:
            self.window._current = None
        self.window._set_busy(running)

    def answer_started(self, answer: LiveAnswer) -> None:
        self.message = self.window._add_answer_widget(answer.effort)
        self.window._current = self.message

    def reasoning_added(self, answer: LiveAnswer, text: str) -> None:
        if self.shown and self.message is not None:
            self.message.append_reasoning(text)

    def tool_call_added(self, answer: LiveAnswer, text: str, recipient: str) -> None:
        if self.shown and self.message is not None:
            self.message.append_tool_call_text(recipient, text)

    def tool_call_updated(self, answer: LiveAnswer, call: ToolCallRecord) -> None:
        if self.shown and self.message is not None:
            self.message.show_tool_call(call)

    async def approve_tool_call(self, answer: LiveAnswer, call: ToolCallRecord) -> Approval:
        if not self.shown or self.message is None:
            return Approval.DENY  # nobody to ask (the window left this chat, which stops its answer anyway)
        card = self.message.show_tool_call(call)
        decision: asyncio.Future[Approval] = asyncio.get_running_loop().create_future()

        def decided(choice: object) -> None:
            if not decision.done() and isinstance(choice, Approval):
                decision.set_result(choice)

        card.decided.connect(decided)
        try:
            return await decision
        finally:
            with contextlib.suppress(RuntimeError):  # the card may be gone (the chat was cleared meanwhile)
                card.decided.disconnect(decided)

    def answer_added(self, answer: LiveAnswer, text: str) -> None:
        if self.shown and self.message is not None:
            self.message.append_answer(text, answer.first_answer_seconds)

    def request_failed(self, error: str) -> None:
        if self.shown and self.message is not None:
            self.message.show_error(error)

    def answer_finished(self, answer: LiveAnswer) -> None:
        if not self.shown or self.message is None or answer.stats is None or answer.done is None:
            return
        self.message.finish(answer.stats)
        if answer.done.error:
            self.message.show_error(answer.done.error)
        self.window._show_context(answer.done.prompt_tokens + answer.done.completion_tokens)

    def answer_saved(self, answer: LiveAnswer, record: Message) -> None:
        if self.shown:
            self.window._saved()
        else:
            self.window._on_answer_saved_in_background(record)

    def chat_saved(self, chat_id: int) -> None:
        if self.shown:
            self.window._saved()

    def history_failed(self, what: str, error: HistoryError) -> None:
        self.window._history_failed(what, error)

    def run_finished(self, answers: tuple[LiveAnswer, ...]) -> None:
        if self.shown:
            self.window.generation_finished.emit(answers[0].done if answers else None)
        else:
            self.window._detached.discard(self.session)
