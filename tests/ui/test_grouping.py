"""What goes above a chat message (date separators, group headers) and where a
search matches: pure helpers, on fixed times."""

from __future__ import annotations

import time

from client.ui.views.grouping import GROUP_GAP_MS, Lead, day_label, lead_of
from client.ui.views.search import match_spans

NOON = int(time.mktime((2026, 12, 1, 12, 0, 0, 0, 0, -1)) * 1000)
DAY = 86_400_000


def test_day_labels_are_today_yesterday_then_the_full_date() -> None:
    assert day_label(NOON - 3_600_000, NOON) == "Today"
    assert day_label(NOON - DAY, NOON) == "Yesterday"
    assert day_label(NOON - 3 * DAY, NOON) == "Saturday 28 November 2026"


def test_a_group_is_one_sender_within_the_gap_on_one_day() -> None:
    first = lead_of(None, (True, NOON), NOON)
    assert first == Lead("Today", True)
    assert lead_of((True, NOON), (True, NOON + 1000), NOON) == Lead("", False)
    assert lead_of((True, NOON), (False, NOON + 1000), NOON) == Lead("", True)
    late = NOON + GROUP_GAP_MS + 1
    assert lead_of((True, NOON), (True, late), NOON) == Lead("", True)
    next_day = lead_of((True, NOON - DAY), (True, NOON), NOON)
    assert next_day == Lead("Today", True)


def test_matches_ignore_case_and_treat_the_query_as_text() -> None:
    assert match_spans("Needle and needle", "needle") == [(0, 6), (11, 17)]
    assert match_spans("a.b axb", ".") == [(1, 2)]
    assert match_spans("anything", "") == []
