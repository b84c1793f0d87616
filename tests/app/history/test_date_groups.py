"""Date groups of the sidebar (Qt-free): calendar days in the local zone, at the boundaries, with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from gpt_oss_desktop.app.history import ChatSummary
from gpt_oss_desktop.app.history.date_groups import (
    PINNED,
    PREVIOUS_7_DAYS,
    TODAY,
    YESTERDAY,
    activity_text,
    date_label,
    group_chats,
    group_in_list_order,
    next_midnight,
)

# UTC+5:30: a local day that is not the UTC day, so a grouping by UTC dates would fail these tests.
ZONE = timezone(timedelta(hours=5, minutes=30))


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZONE)  # type: ignore[misc]


def summary(chat_id: int, updated: datetime, *, pinned: bool = False) -> ChatSummary:
    return ChatSummary(chat_id, "chat", f"chat {chat_id}", updated, updated, "", None, pinned)


def test_midnight_separates_today_from_yesterday() -> None:
    now = local(2026, 12, 6, 0, 0, 0)
    assert date_label(local(2026, 12, 6, 0, 0, 0), now, ZONE) == TODAY
    assert date_label(local(2026, 12, 5, 23, 59, 59), now, ZONE) == YESTERDAY
    later = local(2026, 12, 6, 23, 59, 59)
    assert date_label(local(2026, 12, 6, 0, 0, 0), later, ZONE) == TODAY
    assert date_label(local(2026, 12, 5, 23, 59, 59), later, ZONE) == YESTERDAY


def test_days_are_local_not_utc() -> None:
    # 20:00 UTC on 5 Dec is 01:30 on 6 Dec in UTC+5:30: Today there, though UTC still says the 5th.
    moment = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)
    now = local(2026, 12, 6, 9, 0)
    assert date_label(moment, now, ZONE) == TODAY
    assert date_label(moment, now, UTC) == YESTERDAY


def test_previous_seven_days_then_months() -> None:
    now = local(2026, 12, 9, 12, 0)
    assert date_label(local(2026, 12, 7, 23, 59, 59), now, ZONE) == PREVIOUS_7_DAYS
    assert date_label(local(2026, 12, 2, 0, 0, 0), now, ZONE) == PREVIOUS_7_DAYS  # 7 days ago
    assert date_label(local(2026, 12, 1, 23, 59, 59), now, ZONE) == "December 2026"  # 8 days ago
    assert date_label(local(2026, 11, 30, 23, 59, 59), now, ZONE) == "November 2026"
    assert date_label(local(2025, 12, 31, 23, 59, 59), now, ZONE) == "December 2025"
    assert date_label(local(2027, 1, 1), now, ZONE) == TODAY  # a clock set back: not a future group


def test_month_boundary_across_new_year() -> None:
    now = local(2027, 1, 1, 0, 0, 0)
    assert date_label(local(2026, 12, 31, 23, 59, 59), now, ZONE) == YESTERDAY
    assert date_label(local(2026, 12, 24, 23, 59, 59), now, ZONE) == "December 2026"


def test_dst_day_is_a_calendar_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 29 Mar 2026 has 23 hours in Berlin: 00:30 on the 29th is Today at 23:59 that day, 30 Mar is a new day.
    now = datetime(2026, 3, 29, 23, 59, tzinfo=berlin)
    assert date_label(datetime(2026, 3, 29, 0, 30, tzinfo=berlin), now, berlin) == TODAY
    assert date_label(datetime(2026, 3, 28, 23, 59, tzinfo=berlin), now, berlin) == YESTERDAY
    assert next_midnight(datetime(2026, 3, 29, 0, 0, tzinfo=berlin), berlin) == timedelta(hours=23)


def test_groups_keep_order_and_put_pinned_first() -> None:
    now = local(2026, 12, 9, 12, 0)
    chats = [
        summary(1, local(2026, 11, 2), pinned=True),
        summary(2, local(2026, 12, 9, 8)),
        summary(3, local(2026, 12, 9, 7)),
        summary(4, local(2026, 12, 8, 23)),
        summary(5, local(2026, 12, 4)),
        summary(6, local(2026, 11, 20)),
        summary(7, local(2026, 10, 1)),
    ]
    groups = group_chats(chats, now, ZONE)
    assert [(g.label, [c.id for c in g.chats]) for g in groups] == [
        (PINNED, [1]),
        (TODAY, [2, 3]),
        (YESTERDAY, [4]),
        (PREVIOUS_7_DAYS, [5]),
        ("November 2026", [6]),
        ("October 2026", [7]),
    ]
    assert group_chats([], now, ZONE) == []
    assert [g.label for g in group_chats(chats[1:2], now, ZONE)] == [TODAY]  # no empty Pinned header


def test_activity_text() -> None:
    now = local(2026, 12, 9, 12, 0)
    assert activity_text(local(2026, 12, 9, 9, 5), now, ZONE) == "Today at 09:05"
    assert activity_text(local(2026, 12, 8, 23, 59), now, ZONE) == "Yesterday at 23:59"
    assert activity_text(local(2026, 12, 4, 14, 0), now, ZONE) == "Fri 4 Dec at 14:00"
    assert activity_text(local(2026, 11, 14, 10, 0), now, ZONE) == "14 Nov 2026 at 10:00"


def test_next_midnight() -> None:
    assert next_midnight(local(2026, 12, 5, 23, 59, 59), ZONE) == timedelta(seconds=1)
    assert next_midnight(local(2026, 12, 5, 0, 0, 0), ZONE) == timedelta(days=1)


def test_search_hits_keep_their_rank_under_the_lists_headers() -> None:
    now = local(2026, 12, 9, 12, 0)
    # Best match first: an old chat, then today's, then a pinned one, then yesterday's, then another from today.
    hits = [
        summary(7, local(2026, 10, 1)),
        summary(3, local(2026, 12, 9, 7)),
        summary(1, local(2026, 11, 2), pinned=True),
        summary(4, local(2026, 12, 8, 23)),
        summary(2, local(2026, 12, 9, 8)),
    ]
    groups = group_in_list_order(hits, now, ZONE)
    assert [(g.label, [c.id for c in g.chats]) for g in groups] == [
        (PINNED, [1]),
        (TODAY, [3, 2]),  # in rank order, not by time (2 is the newer)
        (YESTERDAY, [4]),
        ("October 2026", [7]),
    ]
    assert group_in_list_order([], now, ZONE) == []
