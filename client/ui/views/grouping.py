"""What goes above a chat message: a date separator when the day changes, a
sender header when a new group starts. Pure: the times are arguments."""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = [
    "GROUP_GAP_MS",
    "Lead",
    "clock",
    "day_label",
    "full_date",
    "lead_of",
    "short_time",
]

GROUP_GAP_MS = 5 * 60 * 1000
"""Messages of one sender further apart than this (ms) start a new group."""


@dataclass(frozen=True, slots=True)
class Lead:
    """The lines before a message: ``day`` is a separator label (or empty),
    ``header`` whether the sender's name is shown."""

    day: str
    header: bool


def _day(ms: int) -> tuple[int, int, int]:
    when = time.localtime(ms / 1000)
    return when.tm_year, when.tm_mon, when.tm_mday


def day_label(sent_ms: int, now_ms: int) -> str:
    """``Today``, ``Yesterday`` or the full date of ``sent_ms`` (local time)."""
    day = _day(sent_ms)
    if day == _day(now_ms):
        return "Today"
    if day == _day(now_ms - 86_400_000):
        return "Yesterday"
    return time.strftime("%A %-d %B %Y", time.localtime(sent_ms / 1000))


def clock(sent_ms: int) -> str:
    """The time of day of ``sent_ms`` as ``HH:MM`` (local time)."""
    return time.strftime("%H:%M", time.localtime(sent_ms / 1000))


def short_time(sent_ms: int, now_ms: int) -> str:
    """When ``sent_ms`` was, as a list of conversations says it (local time):
    ``HH:MM`` today, ``Yesterday``, the weekday within the week, else the date
    (with the year when it is not this one)."""
    when = time.localtime(sent_ms / 1000)
    if _day(sent_ms) == _day(now_ms):
        return clock(sent_ms)
    if _day(sent_ms) == _day(now_ms - 86_400_000):
        return "Yesterday"
    if 0 <= now_ms - sent_ms < 6 * 86_400_000:
        return time.strftime("%a", when)
    if when.tm_year == time.localtime(now_ms / 1000).tm_year:
        return time.strftime("%-d %b", when)
    return time.strftime("%-d %b %Y", when)


def full_date(sent_ms: int) -> str:
    """``YYYY-MM-DD HH:MM`` of ``sent_ms`` (local time), for search results."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(sent_ms / 1000))


def lead_of(
    previous: tuple[bool, int] | None, message: tuple[bool, int], now_ms: int
) -> Lead:
    """The lead of ``message`` given the one shown before it; both are
    ``(outgoing, sent_ms)``, ``previous`` None for the first message."""
    outgoing, sent_ms = message
    if previous is None or _day(previous[1]) != _day(sent_ms):
        return Lead(day_label(sent_ms, now_ms), True)
    same_group = previous[0] == outgoing and 0 <= sent_ms - previous[1] <= GROUP_GAP_MS
    return Lead("", not same_group)
