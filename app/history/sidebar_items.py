"""How the sidebar's rows look: group headers, chat titles elided to the row, and search snippets with the matched
words highlighted. Also the rows' tooltips (full title and last-activity time), HTML-escaped.

Every row is painted here rather than by the style's default text drawing, so that a title never widens its row
(which would give the list a horizontal scrollbar) and a snippet's matches can be drawn in bold on a tint.
"""

from __future__ import annotations

import html
from typing import Final

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QIcon, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

CHAT_ID_ROLE: Final = Qt.ItemDataRole.UserRole
KIND_ROLE: Final = Qt.ItemDataRole.UserRole + 1  # "chat", "comparison", or HEADER_KIND
SNIPPET_ROLE: Final = Qt.ItemDataRole.UserRole + 2  # a search hit's snippet with MARK_START/MARK_END, else ""
PINNED_ROLE: Final = Qt.ItemDataRole.UserRole + 3  # bool
HEADER_KIND: Final = "header"

# The snippet markers asked of the search: private-use characters, which no chat's text is expected to hold (square
# brackets, the store's default, are common in code and would be taken for matches).
MARK_START: Final = "\ue000"
MARK_END: Final = "\ue001"

_PAD_X: Final = 10  # left and right padding of a row's text
_PAD_Y: Final = 6  # above and below each line of a chat row
_HEADER_TOP: Final = 12  # room above a group header, separating it from the group before
_ICON: Final = 16
# A tint behind matched words that reads on light and dark rows alike (amber, partly transparent).
_MATCH_TINT: Final = QColor(255, 193, 7, 90)


def snippet_segments(snippet: str) -> list[tuple[str, bool]]:
    """A marked snippet as (text, matched) runs, in order, without the markers; empty runs left out.

    An unclosed start marker (a snippet cut in the middle of a match) highlights to the end.
    """
    segments: list[tuple[str, bool]] = []
    rest = snippet
    while rest:
        start = rest.find(MARK_START)
        if start < 0:
            segments.append((rest.replace(MARK_END, ""), False))
            break
        if start:
            segments.append((rest[:start].replace(MARK_END, ""), False))
        rest = rest[start + len(MARK_START) :]
        end = rest.find(MARK_END)
        matched, rest = (rest, "") if end < 0 else (rest[:end], rest[end + len(MARK_END) :])
        segments.append((matched.replace(MARK_START, ""), True))
    return [(text, matched) for text, matched in segments if text]


def snippet_html(snippet: str) -> str:
    """The snippet as escaped HTML with the matched words in bold: chat text is never taken for markup."""
    return "".join(
        f"<b>{html.escape(text, quote=False)}</b>" if matched else html.escape(text, quote=False)
        for text, matched in snippet_segments(snippet)
    )


def chat_tooltip(title: str, when: str, *, comparison: bool = False, snippet: str = "") -> str:
    """Rich text (the <br> makes Qt treat it so): the full title, the last activity, and a search's snippet."""
    lines = [("Effort comparison · " if comparison else "") + html.escape(title, quote=False)]
    lines.append(f"Last message {html.escape(when[:1].lower() + when[1:], quote=False)}")
    if snippet:
        lines.append(snippet_html(snippet))
    return "<br>".join(lines)


def header_font(base: QFont) -> QFont:
    font = QFont(base)
    font.setBold(True)
    size = base.pointSizeF()
    if size > 0:
        font.setPointSizeF(max(7.0, size * 0.85))
    return font


def _snippet_font(base: QFont) -> QFont:
    font = QFont(base)
    size = base.pointSizeF()
    if size > 0:
        font.setPointSizeF(max(7.0, size * 0.92))
    return font


class SidebarDelegate(QStyledItemDelegate):
    """Paints headers, chats and search hits; a row asks for no width, so it is as wide as the list, never wider."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        metrics = QFontMetrics(option.font)
        if index.data(KIND_ROLE) == HEADER_KIND:
            return QSize(0, _HEADER_TOP + QFontMetrics(header_font(option.font)).height() + 4)
        height = max(metrics.height(), _ICON) + 2 * _PAD_Y
        if index.data(SNIPPET_ROLE):
            height += QFontMetrics(_snippet_font(option.font)).height() + _PAD_Y // 2
        return QSize(0, height)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        painter.save()
        try:
            if index.data(KIND_ROLE) == HEADER_KIND:
                self._paint_header(painter, opt)
            else:
                self._paint_chat(painter, opt, str(index.data(SNIPPET_ROLE) or ""))
        finally:
            painter.restore()

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        # Renaming edits the title line only, also on a two-line search hit.
        rect = QRect(option.rect)
        rect.setHeight(min(rect.height(), QFontMetrics(option.font).height() + 2 * _PAD_Y))
        editor.setGeometry(rect.adjusted(_PAD_X // 2, 1, -_PAD_X // 2, -1))

    # -- painting -----------------------------------------------------------------------------------------------

    @staticmethod
    def _paint_header(painter: QPainter, opt: QStyleOptionViewItem) -> None:
        font = header_font(opt.font)
        metrics = QFontMetrics(font)
        rect = QRect(opt.rect).adjusted(_PAD_X, _HEADER_TOP, -_PAD_X, 0)
        painter.setFont(font)
        painter.setPen(opt.palette.color(QPalette.ColorRole.PlaceholderText))
        text = metrics.elidedText(opt.text, Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)

    def _paint_chat(self, painter: QPainter, opt: QStyleOptionViewItem, snippet: str) -> None:
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        # The style's row background: selection, hover and focus, as every other list in the app.
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)
        rect: QRect = QRect(opt.rect)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        palette: QPalette = opt.palette
        group = (
            QPalette.ColorGroup.Active if opt.state & QStyle.StateFlag.State_Active else QPalette.ColorGroup.Inactive
        )
        # The app's theme (one stylesheet) draws a selected row on a light tint with the normal text colour; without
        # a stylesheet the style's own selection is the strong highlight colour, under HighlightedText.
        themed = isinstance(app := QApplication.instance(), QApplication) and bool(app.styleSheet())
        on_selection = QPalette.ColorRole.Text if themed else QPalette.ColorRole.HighlightedText
        text_color = palette.color(group, on_selection if selected else QPalette.ColorRole.Text)
        metrics = QFontMetrics(opt.font)
        line = max(metrics.height(), _ICON)
        left = rect.left() + _PAD_X
        right = rect.right() - _PAD_X
        top = rect.top() + _PAD_Y
        icon: QIcon = opt.icon
        if not icon.isNull():
            icon.paint(painter, QRect(left, top + (line - _ICON) // 2, _ICON, _ICON))
            left += _ICON + 6
        title_rect = QRect(left, top, max(0, right - left), line)
        painter.setFont(opt.font)
        painter.setPen(text_color)
        title = metrics.elidedText(opt.text, Qt.TextElideMode.ElideRight, title_rect.width())
        painter.drawText(title_rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), title)
        if snippet:
            muted = text_color if selected else palette.color(group, QPalette.ColorRole.PlaceholderText)
            small = _snippet_font(opt.font)
            height = QFontMetrics(small).height()
            _paint_snippet(
                painter,
                snippet,
                QRect(left, top + line + _PAD_Y // 2, max(0, right - left), height),
                small,
                muted,
                text_color,
            )


def _paint_snippet(
    painter: QPainter, snippet: str, rect: QRect, font: QFont, color: QColor, match_color: QColor
) -> None:
    """One line of runs, matches in bold on a tint; the run that reaches the edge is elided and ends the line."""
    bold = QFont(font)
    bold.setBold(True)
    x = rect.left()
    segments = snippet_segments(snippet)
    if segments and not segments[0][1]:
        # The store's snippet keeps some words before the match; a narrow sidebar would push the match past the
        # edge, so the lead-in is cut from its left to a third of the line, and the match stays in view.
        lead = QFontMetrics(font)
        keep = rect.width() // 3
        if lead.horizontalAdvance(segments[0][0]) > keep:
            segments[0] = (lead.elidedText(segments[0][0].lstrip("…"), Qt.TextElideMode.ElideLeft, keep), False)
    for text, matched in segments:
        run_font = bold if matched else font
        metrics = QFontMetrics(run_font)
        room = rect.right() - x
        if room <= metrics.horizontalAdvance("…"):
            break
        width = metrics.horizontalAdvance(text)
        clipped = width > room
        shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, room) if clipped else text
        width = metrics.horizontalAdvance(shown)
        box = QRect(x, rect.top(), width, rect.height())
        if matched:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(_MATCH_TINT)
            painter.drawRoundedRect(box.adjusted(-1, 0, 1, 0), 3, 3)
        painter.setFont(run_font)
        painter.setPen(match_color if matched else color)
        painter.drawText(box, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), shown)
        x += width
        if clipped:
            break
