"""The history sidebar: saved chats (most recent first), live search, rename, and delete with undo.

Search runs on a worker thread (app/history/background_search.py), 150 ms after the last keystroke, and each new
query cancels the one before: a search never stalls the window, and an older result never replaces a newer one.
"""

from __future__ import annotations

import logging

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
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.history import ChatStore, HistoryError, SearchHit
from gpt_oss_desktop.app.history.background_search import BackgroundSearch

logger = logging.getLogger(__name__)

_CHAT_ID_ROLE = Qt.ItemDataRole.UserRole
KIND_ROLE = Qt.ItemDataRole.UserRole + 1  # "chat" or "comparison"
# The undo offer goes away on its own: past this, a deleted chat stays deleted (and is purged on a later start).
_UNDO_MS = 15_000
# Typing pauses longer than this start a search; faster keystrokes only restart the wait.
SEARCH_DEBOUNCE_MS = 150


class HistorySidebar(QWidget):
    """Lists the chats in a ChatStore. Renames and deletes go straight to the store; the window hears about them.

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

    def __init__(self, store: ChatStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
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

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 0, 8)
        layout.setSpacing(6)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.undo_banner)
        self.setMinimumWidth(180)
        self.refresh()

    # -- public API ---------------------------------------------------------------------------------------------

    def chat_ids(self) -> list[int]:
        """The listed chats, top to bottom."""
        return [self._item_id(self.list.item(row)) for row in range(self.list.count())]

    def item_for(self, chat_id: int) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if self._item_id(item) == chat_id:
                return item
        return None

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
        rows: list[tuple[int, str, str, str]] = []
        try:
            rows = [(chat.id, chat.title, "", chat.kind) for chat in self.store.list_chats()]
        except HistoryError as exc:
            self._report("Could not read the chat history", exc)
        self._fill(rows)

    def _background_search(self, store: ChatStore) -> BackgroundSearch:
        searcher = BackgroundSearch(store, self)
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
        self._fill([(hit.chat.id, hit.chat.title, hit.snippet, hit.chat.kind) for hit in found])
        self.search_finished.emit(query)

    def _on_search_failed(self, query: str, exc: object) -> None:
        if isinstance(exc, HistoryError):
            self._report("Could not search the chat history", exc)
        else:
            logger.warning("search failed: %s", exc)
            self.error.emit(f"Could not search the chat history: {exc}")

    def _fill(self, rows: list[tuple[int, str, str, str]]) -> None:
        self._updating = True
        try:
            self.list.clear()
            for chat_id, title, snippet, kind in rows:
                item = QListWidgetItem(title)
                item.setData(_CHAT_ID_ROLE, chat_id)
                item.setData(KIND_ROLE, kind)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                # The snippet says why a chat matched; a tooltip keeps the row itself a plain, renameable title.
                tooltip = snippet or title
                if kind == "comparison":
                    # Marked by an icon (three columns) rather than in the title, which stays plain for renaming.
                    item.setIcon(self._comparison_icon())
                    tooltip = f"Effort comparison · {tooltip}"
                item.setToolTip(tooltip)
                self.list.addItem(item)
            self._select(self._current_id)
        finally:
            self._updating = False

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
        return int(item.data(_CHAT_ID_ROLE))

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
        if item is not None:
            self.delete_chat(self._item_id(item))

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if self._updating or current is None:
            return
        chat_id = self._item_id(current)
        if chat_id != self._current_id:
            self._current_id = chat_id
            self.chat_selected.emit(chat_id)

    def _on_item_edited(self, item: QListWidgetItem) -> None:
        if self._updating:
            return
        # Deferred: refreshing the list from inside its own itemChanged would delete the item being edited.
        chat_id, title = self._item_id(item), item.text()
        QTimer.singleShot(0, self, lambda: self.rename_chat(chat_id, title))

    def _show_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        self.list.setCurrentItem(item)
        chat_id = self._item_id(item)
        menu = QMenu(self)
        menu.addAction("Rename", self.start_rename)
        menu.addAction("Delete", lambda: self.delete_chat(chat_id))
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def _report(self, what: str, exc: HistoryError) -> None:
        logger.warning("%s: %s", what, exc)
        self.error.emit(f"{what}: {exc}")


def comparison_icon(color: QColor, size: int = 16) -> QIcon:
    """Three bars of rising height (low, medium, high effort side by side), drawn in the list's text colour."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    bar = size // 4
    for index, height in enumerate((size * 2 // 5, size * 3 // 5, size - 2)):
        painter.drawRect(1 + index * (bar + 1), size - 1 - height, bar, height)
    painter.end()
    return QIcon(pixmap)
