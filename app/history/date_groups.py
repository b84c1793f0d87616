"""The sidebar's date groups (Pinned, Today, Yesterday, Previous 7 days, then one per month) and its hover times.

Qt-free, and every function takes ``now`` and the time zone as arguments: the groups depend on the user's local
calendar day (a chat at 23:59:59 is "Yesterday" a second after midnight), so tests pin both down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final

from .models import ChatSummary

PINNED: Final = "Pinned"
TODAY: Final = "Today"
YESTERDAY: Final = "Yesterday"
PREVIOUS_7_DAYS: Final = "Previous 7 days"
# English names whatever the process locale: every other word of the window is English (strftime's %B is not).
_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class ChatGroup:
    """A header and the chats under it, in the order they were given."""

    label: str
    chats: tuple[ChatSummary, ...]


def local_day(moment: datetime, tz: tzinfo | None = None) -> date:
    """The calendar day of ``moment`` in ``tz`` (None: the system's local time zone)."""
    return _local(moment, tz).date()


def _local(moment: datetime, tz: tzinfo | None) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    # astimezone(None) converts to the system's local zone, with the UTC offset in force at that moment (DST).
    return moment.astimezone(tz)


def date_label(moment: datetime, now: datetime, tz: tzinfo | None = None) -> str:
    """The group of a chat last active at ``moment``: Today, Yesterday, Previous 7 days, or its month.

    Days are calendar days in ``tz``, not 24-hour spans. A moment after ``now`` (a clock set back) counts as Today.
    """
    day = local_day(moment, tz)
    today = local_day(now, tz)
    age = (today - day).days
    if age <= 0:
        return TODAY
    if age == 1:
        return YESTERDAY
    if age <= 7:
        return PREVIOUS_7_DAYS
    return f"{_MONTHS[day.month - 1]} {day.year}"


def group_chats(chats: Sequence[ChatSummary], now: datetime, tz: tzinfo | None = None) -> list[ChatGroup]:
    """Pinned chats under "Pinned" first, then the others by the day of their last activity (``updated_at``).

    Groups come in the order their first chat appears and keep the chats' order, so a list sorted as
    ChatStore.list_chats sorts (pinned, then most recent first) gives Pinned, Today, Yesterday, ... newest month
    first. Empty groups are left out.
    """
    labels: dict[str, list[ChatSummary]] = {}
    if any(chat.pinned for chat in chats):
        labels[PINNED] = []
    for chat in chats:
        label = PINNED if chat.pinned else date_label(chat.updated_at, now, tz)
        labels.setdefault(label, []).append(chat)
    return [ChatGroup(label, tuple(members)) for label, members in labels.items()]


def group_in_list_order(chats: Sequence[ChatSummary], now: datetime, tz: tzinfo | None = None) -> list[ChatGroup]:
    """The groups of :func:`group_chats` in the chat list's order (Pinned, Today, Yesterday, …, newest month first),
    each keeping the order ``chats`` came in: search hits, best match first, under the headers of the normal list.
    """
    by_label = {group.label: group for group in group_chats(chats, now, tz)}
    listed = sorted(chats, key=lambda chat: (not chat.pinned, -chat.updated_at.timestamp()))
    return [by_label[group.label] for group in group_chats(listed, now, tz)]


def activity_text(moment: datetime, now: datetime, tz: tzinfo | None = None) -> str:
    """When a chat was last active, for its tooltip: "Today at 14:05", "Yesterday at 09:30", "Tue 1 Dec at 10:00"
    within a week, else "14 Nov 2025 at 10:00" (24-hour clock, local time)."""
    local = _local(moment, tz)
    clock = f"{local.hour:02d}:{local.minute:02d}"
    label = date_label(moment, now, tz)
    if label in (TODAY, YESTERDAY):
        return f"{label} at {clock}"
    month = _MONTHS[local.month - 1][:3]
    if label == PREVIOUS_7_DAYS:
        return f"{_WEEKDAYS[local.weekday()]} {local.day} {month} at {clock}"
    return f"{local.day} {month} {local.year} at {clock}"


def next_midnight(now: datetime, tz: tzinfo | None = None) -> timedelta:
    """Time from ``now`` to the next local midnight, when the groups change (Today becomes Yesterday)."""
    local = _local(now, tz)
    # With tz None, astimezone() gave a fixed offset: across a DST change this is an hour off, and the sidebar
    # then re-arms for the real midnight after its refresh.
    zone = local.tzinfo if tz is None else tz
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=zone)
    # Through UTC: aware datetimes sharing one tzinfo subtract as wall-clock times, ignoring a DST change between.
    return max(timedelta(0), midnight.astimezone(UTC) - now.astimezone(UTC))
