"""The history sidebar: saved chats grouped by date (pinned first), live search, rename, pin, and delete with undo.

Chats are listed under Pinned, Today, Yesterday, Previous 7 days, then one header per month, by the local day of
their last message (app/history/date_groups.py); rows are painted by app/history/sidebar_items.py.

Search hits are listed under the same headers, best match first within each, with the matching snippet.

Search runs on a worker thread (app/history/background_search.py), 150 ms after the last keystroke, and each new
query cancels the one before: a search never stalls the window, and an older result never replaces a newer one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, tzinfo

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QKeySequence, QPainter, QPalette, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.history import ChatStore, ChatSummary, HistoryError, SearchHit
from gpt_oss_desktop.app.history.background_search import BackgroundSearch
from gpt_oss_desktop.app.history.date_groups import activity_text, group_chats, group_in_list_order, next_midnight
from gpt_oss_desktop.app.history.sidebar_items import (
    CHAT_ID_ROLE,
    HEADER_KIND,
    KIND_ROLE,
    MARK_END,
    MARK_START,
    PINNED_ROLE,
    SNIPPET_ROLE,
    SidebarDelegate,
    chat_tooltip,
)

logger = logging.getLogger(__name__)

__all__ = ["KIND_ROLE", "HistorySidebar", "comparison_icon"]

EMPTY_TITLE = "No chats yet"
EMPTY_TEXT = "Your chats will appear here. Load a model, then ask a question to start one."
NO_MATCH_TEXT = "Try other words, or clear the search."
# A long query is cut in the "No chats match" line: the sidebar is narrow.
_QUERY_SHOWN_CHARS = 40
# A row of the list: a group header's label, or a chat and its search snippet ("" when not searching).
_Row = str | tuple[ChatSummary, str]
# The undo offer goes away on its own: past this, a deleted chat stays deleted (and is purged on a later start).
_UNDO_MS = 15_000
# The comparison icon is drawn for screens at these scales (100 %, 200 %, 300 %).
_ICON_SCALES = (1, 2, 3)
# Typing pauses longer than this start a search; faster keystrokes only restart the wait.
SEARCH_DEBOUNCE_MS = 150


class HistorySidebar(QWidget):
    """Lists the chats in a ChatStore under date headers. Renames, pins and deletes go straight to the store; the
    window hears about renames and deletes.

    Signals:
        chat_selected(int): the user picked a chat (click or keyboard) — the window loads it.
        chat_deleted(int): a chat was soft-deleted (the undo banner is showing).
        chat_restored(int): an undo brought a deleted chat back.
        chat_renamed(int, str): a chat got a new title.
        error(str): a store operation failed; the window shows it.
        search_finished(str): the hits of this query are now listed.
    """

    chat_selected = Signal(int)
    chat_deleted = Signal(int)
    chat_restored = Signal(int)
    chat_renamed = Signal(int, str)
    error = Signal(str)
    search_finished = Signal(str)

    def __init__(self, store: ChatStore, parent: QWidget | None = None, *, tz: tzinfo | None = None) -> None:
        """``tz``: the time zone of the date groups; None is the system's (tests pass one)."""
        super().__init__(parent)
        self.setObjectName("historySidebar")
        self.store = store
        self._tz = tz
        self._current_id: int | None = None
        self._deleted_id: int | None = None
        # Set while the list is rebuilt or re-selected in code, so those changes are not taken as user actions.
        self._updating = False
        self._icon: QIcon | None = None

        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search chats")
        self.search.setAccessibleName("Search chats")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._on_query_edited)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh)
        self._searcher = self._background_search(store)

        self.list = QListWidget(self)
        self.list.setAccessibleName("Chats")
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # Long titles elide (the delegate asks for no width), so a horizontal scrollbar would only ever be noise.
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setWordWrap(False)
        self.list.setMouseTracking(True)  # hover highlight and tooltips
        self.list.setItemDelegate(SidebarDelegate(self.list))
        # Renaming is explicit (F2 or the context menu): a double click should just open the chat.
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._show_menu)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.itemChanged.connect(self._on_item_edited)
        rename = QShortcut(QKeySequence(Qt.Key.Key_F2), self.list, context=Qt.ShortcutContext.WidgetShortcut)
        rename.activated.connect(self.start_rename)
        delete = QShortcut(QKeySequence.StandardKey.Delete, self.list, context=Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self._delete_current)
        # What they do, in the words Help ▸ Keyboard shortcuts lists them with (under the list's name, "Chats").
        rename.setWhatsThis("Rename the selected chat")
        delete.setWhatsThis("Delete the selected chat")

        self.undo_banner = QFrame(self)
        self.undo_banner.setObjectName("undoBanner")
        self.undo_banner.setStyleSheet("#undoBanner { background: palette(alternate-base); border-radius: 6px; }")
        self.undo_label = QLabel("Chat deleted", self.undo_banner)
        self.undo_button = QPushButton("Undo", self.undo_banner)
        self.undo_button.setAccessibleName("Undo delete")
        self.undo_button.clicked.connect(self.undo_delete)
        banner_row = QHBoxLayout(self.undo_banner)
        banner_row.setContentsMargins(8, 4, 4, 4)
        banner_row.addWidget(self.undo_label, 1)
        banner_row.addWidget(self.undo_button)
        self.undo_banner.hide()
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.setInterval(_UNDO_MS)
        self._undo_timer.timeout.connect(self._forget_undo)

        # No chats (a first start) or no hits: a short text in the list's place, not a blank box.
        self.placeholder = QFrame(self)
        self.placeholder.setObjectName("sidebarPlaceholder")
        # Framed and filled like the list it stands in for, so the sidebar does not change shape when it shows.
        self.placeholder.setFrameShape(self.list.frameShape())
        self.placeholder.setFrameShadow(self.list.frameShadow())
        self.placeholder.setBackgroundRole(QPalette.ColorRole.Base)
        self.placeholder.setAutoFillBackground(True)
        self.placeholder_title = QLabel(EMPTY_TITLE, self.placeholder)
        self.placeholder_title.setObjectName("sidebarPlaceholderTitle")
        self.placeholder_text = QLabel(EMPTY_TEXT, self.placeholder)
        self.placeholder_text.setObjectName("sidebarPlaceholderText")
        for label in (self.placeholder_title, self.placeholder_text):
            label.setTextFormat(Qt.TextFormat.PlainText)  # a query is shown as typed, never as markup
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        title_font = self.placeholder_title.font()
        title_font.setBold(True)
        self.placeholder_title.setFont(title_font)
        self.placeholder_text.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        placeholder_layout = QVBoxLayout(self.placeholder)
        placeholder_layout.setContentsMargins(12, 24, 12, 12)
        placeholder_layout.setSpacing(6)
        placeholder_layout.addWidget(self.placeholder_title)
        placeholder_layout.addWidget(self.placeholder_text)
        placeholder_layout.addStretch(1)
        self._body = QStackedWidget(self)
        self._body.addWidget(self.list)
        self._body.addWidget(self.placeholder)

        # The date groups change at local midnight (Today becomes Yesterday) even when nothing is saved.
        self._midnight = QTimer(self)
        self._midnight.setSingleShot(True)
        self._midnight.timeout.connect(self._on_midnight)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 0, 8)
        layout.setSpacing(6)
        layout.addWidget(self.search)
        layout.addWidget(self._body, 1)
        layout.addWidget(self.undo_banner)
        self.setMinimumWidth(180)
        self.refresh()

    # -- public API ---------------------------------------------------------------------------------------------

    def chat_ids(self) -> list[int]:
        """The listed chats, top to bottom (group headers left out)."""
        return [self._item_id(item) for item in self._chat_items()]

    def item_for(self, chat_id: int) -> QListWidgetItem | None:
        return next((item for item in self._chat_items() if self._item_id(item) == chat_id), None)

    def headers(self) -> list[str]:
        """The group headers shown, top to bottom."""
        items = (self.list.item(row) for row in range(self.list.count()))
        return [item.text() for item in items if item.data(KIND_ROLE) == HEADER_KIND]

    def groups(self) -> list[tuple[str, list[int]]]:
        """Each header with the chats under it, top to bottom (a search's hits too)."""
        out: list[tuple[str, list[int]]] = []
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(KIND_ROLE) == HEADER_KIND:
                out.append((item.text(), []))
            else:
                if not out:
                    out.append(("", []))
                out[-1][1].append(self._item_id(item))
        return out

    @property
    def showing_placeholder(self) -> bool:
        """The list is empty and a text says why (no chats yet, or no chat matches the search)."""
        return self._body.currentWidget() is self.placeholder

    @property
    def searching(self) -> bool:
        """A search is waiting for the typing to pause, or running (a cancelled one too, until it has stopped)."""
        return self._debounce.isActive() or self._searcher.busy

    def set_store(self, store: ChatStore) -> None:
        """List and search another store (a new history replaced one that could not be opened)."""
        self._searcher.close()
        self._searcher.deleteLater()
        self.store = store
        self._searcher = self._background_search(store)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the list from the store: every chat at once, or (on a worker thread) the hits of the search box's
        text, which replace the list when they arrive."""
        self._debounce.stop()
        query = self.search.text().strip()
        if query:
            self._searcher.start(query)
            return
        self._searcher.cancel()
        chats: list[ChatSummary] = []
        try:
            chats = self.store.list_chats()
        except HistoryError as exc:
            self._report("Could not read the chat history", exc)
        now = self.store.now()
        rows: list[_Row] = []
        for group in group_chats(chats, now, self._tz):
            rows.append(group.label)
            rows.extend((chat, "") for chat in group.chats)
        self._fill(rows)
        # +1 s: wake just after midnight, when the new day's labels hold.
        wait = next_midnight(now, self._tz) + timedelta(seconds=1)
        self._midnight.start(int(min(wait, timedelta(days=1)) / timedelta(milliseconds=1)))

    def _on_midnight(self) -> None:
        if not self.search.text().strip():
            self.refresh()

    def _background_search(self, store: ChatStore) -> BackgroundSearch:
        searcher = BackgroundSearch(store, self, marks=(MARK_START, MARK_END))
        searcher.finished.connect(self._on_hits)
        searcher.failed.connect(self._on_search_failed)
        return searcher

    def _on_query_edited(self, text: str) -> None:
        if not text.strip():
            self.refresh()  # cleared: every chat, at once
            return
        self._searcher.cancel()  # its result is out of date already
        self._debounce.start()

    def _on_hits(self, query: str, hits: object) -> None:
        if query != self.search.text().strip() or not isinstance(hits, list):
            return
        found = [hit for hit in hits if isinstance(hit, SearchHit)]
        # Under the normal list's date headers, best match first within each, each with its marked snippet.
        snippets = {hit.chat.id: hit.snippet for hit in found}
        rows: list[_Row] = []
        for group in group_in_list_order([hit.chat for hit in found], self.store.now(), self._tz):
            rows.append(group.label)
            rows.extend((chat, snippets[chat.id]) for chat in group.chats)
        self._fill(rows, query=query)
        self.search_finished.emit(query)

    def _on_search_failed(self, query: str, exc: object) -> None:
        if isinstance(exc, HistoryError):
            self._report("Could not search the chat history", exc)
        else:
            logger.warning("search failed: %s", exc)
            self.error.emit(f"Could not search the chat history: {exc}")

    def _fill(self, rows: list[_Row], *, query: str = "") -> None:
        """Rows are group headers (a label) and chats (a summary and, for a search hit, its marked snippet)."""
        self._updating = True
        now = self.store.now()
        try:
            self.list.clear()
            for row in rows:
                if isinstance(row, str):
                    self.list.addItem(self._header_item(row))
                else:
                    self.list.addItem(self._chat_item(*row, now=now))
            self._select(self._current_id)
        finally:
            self._updating = False
        if self.list.count():
            self._body.setCurrentWidget(self.list)
            return
        if query:
            shown = query if len(query) <= _QUERY_SHOWN_CHARS else query[: _QUERY_SHOWN_CHARS - 1] + "…"
            self.placeholder_title.setText(f"No chats match \u201c{shown}\u201d")
            self.placeholder_text.setText(NO_MATCH_TEXT)
        else:
            self.placeholder_title.setText(EMPTY_TITLE)
            self.placeholder_text.setText(EMPTY_TEXT)
        self._body.setCurrentWidget(self.placeholder)

    @staticmethod
    def _header_item(label: str) -> QListWidgetItem:
        item = QListWidgetItem(label)
        item.setData(KIND_ROLE, HEADER_KIND)
        # Not selectable, not enabled: a click or the arrow keys never land on a header.
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        return item

    def _chat_item(self, chat: ChatSummary, snippet: str, *, now: datetime) -> QListWidgetItem:
        item = QListWidgetItem(chat.title)
        item.setData(CHAT_ID_ROLE, chat.id)
        item.setData(KIND_ROLE, chat.kind)
        item.setData(SNIPPET_ROLE, snippet)
        item.setData(PINNED_ROLE, chat.pinned)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        comparison = chat.kind == "comparison"
        if comparison:
            # Marked by an icon (three columns) rather than in the title, which stays plain for renaming.
            item.setIcon(self._comparison_icon())
        when = activity_text(chat.updated_at, now, self._tz)
        # The full title (the row may be elided) and when it was last active: two chats of one title differ here.
        item.setToolTip(chat_tooltip(chat.title, when, comparison=comparison, snippet=snippet))
        return item

    def set_current(self, chat_id: int | None) -> None:
        """Highlight the chat shown in the window (None: a new, unsaved chat) without emitting chat_selected."""
        self._current_id = chat_id
        self._updating = True
        try:
            self._select(chat_id)
        finally:
            self._updating = False

    def start_rename(self) -> None:
        """Edit the selected chat's title in place; Enter saves, Esc cancels."""
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def rename_chat(self, chat_id: int, title: str) -> bool:
        """Give a chat a new title (blank titles are refused). Returns whether the store took it."""
        title = " ".join(title.split())
        if not title:
            self.refresh()
            return False
        try:
            self.store.rename_chat(chat_id, title)
        except HistoryError as exc:
            self._report("Could not rename the chat", exc)
            return False
        finally:
            self.refresh()
        self.chat_renamed.emit(chat_id, title)
        return True

    def pin_chat(self, chat_id: int, pinned: bool) -> bool:
        """Pin a chat to the top of the list, or unpin it. Returns whether the store took it."""
        try:
            self.store.pin_chat(chat_id, pinned)
        except HistoryError as exc:
            self._report("Could not pin the chat" if pinned else "Could not unpin the chat", exc)
            return False
        self.refresh()
        return True

    def duplicate_chat(self, chat_id: int) -> bool:
        """A copy of a chat as a new chat (titled "… (branch)"), opened. Returns whether the store took it."""
        try:
            copy = self.store.branch_chat(chat_id)
        except HistoryError as exc:
            self._report("Could not duplicate the chat", exc)
            return False
        except ValueError as exc:  # a comparison, or a chat with no messages: nothing to copy
            self.error.emit(f"Could not duplicate the chat: {exc}")
            return False
        self.refresh()
        self.chat_selected.emit(copy.id)
        return True

    def delete_chat(self, chat_id: int) -> None:
        """Soft-delete a chat and offer to undo it."""
        try:
            self.store.delete_chat(chat_id)
        except HistoryError as exc:
            self._report("Could not delete the chat", exc)
            return
        self._deleted_id = chat_id
        self.undo_banner.show()
        self._undo_timer.start()
        self.refresh()
        self.chat_deleted.emit(chat_id)

    def undo_delete(self) -> None:
        chat_id = self._deleted_id
        if chat_id is None:
            return
        self._forget_undo()
        try:
            self.store.undo_delete(chat_id)
        except HistoryError as exc:
            self._report("Could not restore the chat", exc)
            return
        self.refresh()
        self.chat_restored.emit(chat_id)

    # -- private ------------------------------------------------------------------------------------------------

    def _comparison_icon(self) -> QIcon:
        if self._icon is None:
            self._icon = comparison_icon(self.palette().color(QPalette.ColorRole.Text))
        return self._icon

    @staticmethod
    def _item_id(item: QListWidgetItem) -> int:
        return int(item.data(CHAT_ID_ROLE))

    def _chat_items(self) -> list[QListWidgetItem]:
        items = (self.list.item(row) for row in range(self.list.count()))
        return [item for item in items if item.data(KIND_ROLE) != HEADER_KIND]

    @staticmethod
    def _is_chat(item: QListWidgetItem | None) -> bool:
        return item is not None and item.data(KIND_ROLE) != HEADER_KIND

    def _select(self, chat_id: int | None) -> None:
        item = None if chat_id is None else self.item_for(chat_id)
        if item is None:
            self.list.setCurrentRow(-1)
            self.list.clearSelection()
        else:
            self.list.setCurrentItem(item)

    def _forget_undo(self) -> None:
        self._undo_timer.stop()
        self._deleted_id = None
        self.undo_banner.hide()

    def _delete_current(self) -> None:
        item = self.list.currentItem()
        if item is not None and self._is_chat(item):
            self.delete_chat(self._item_id(item))

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if self._updating or current is None or not self._is_chat(current):
            return
        chat_id = self._item_id(current)
        if chat_id != self._current_id:
            self._current_id = chat_id
            self.chat_selected.emit(chat_id)

    def _on_item_edited(self, item: QListWidgetItem) -> None:
        if self._updating or not self._is_chat(item):
            return
        # Deferred: refreshing the list from inside its own itemChanged would delete the item being edited.
        chat_id, title = self._item_id(item), item.text()
        QTimer.singleShot(0, self, lambda: self.rename_chat(chat_id, title))

    def _show_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None or not self._is_chat(item):
            return
        self.list.setCurrentItem(item)
        self.chat_menu(item).exec(self.list.viewport().mapToGlobal(pos))

    def chat_menu(self, item: QListWidgetItem) -> QMenu:
        """The context menu of a chat's row: Rename, Pin or Unpin, Duplicate (chats only), Delete."""
        chat_id = self._item_id(item)
        pinned = self._pinned(item)
        menu = QMenu(self)
        menu.addAction("Rename", self.start_rename)
        menu.addAction("Unpin" if pinned else "Pin", lambda: self.pin_chat(chat_id, not pinned))
        if item.data(KIND_ROLE) != "comparison":  # a comparison goes on from one of its columns instead
            menu.addAction("Duplicate", lambda: self.duplicate_chat(chat_id))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.delete_chat(chat_id))
        return menu

    @staticmethod
    def _pinned(item: QListWidgetItem) -> bool:
        return bool(item.data(PINNED_ROLE))

    def _report(self, what: str, exc: HistoryError) -> None:
        logger.warning("%s: %s", what, exc)
        self.error.emit(f"{what}: {exc}")


def comparison_icon(color: QColor, size: int = 16) -> QIcon:
    """Three bars of rising height (low, medium, high effort side by side), drawn in the list's text colour.

    Drawn at 1×, 2× and 3× the pixels (Qt picks the one for the screen's scale): one 16 px picture scaled up for a
    200 % screen has soft, blurred edges.
    """
    icon = QIcon()
    for scale in _ICON_SCALES:
        pixmap = QPixmap(size * scale, size * scale)
        pixmap.setDevicePixelRatio(scale)  # the painter below draws in logical pixels
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        bar = size // 4
        for index, height in enumerate((size * 2 // 5, size * 3 // 5, size - 2)):
            painter.drawRect(1 + index * (bar + 1), size - 1 - height, bar, height)
        painter.end()
        icon.addPixmap(pixmap)
    return icon
