"""Pure helpers of the views: where a window may go, how themes are named,
the rule shown under a new password."""

from __future__ import annotations

import time

import pytest

from client.engine.model import avatar_tint
from client.ui.views.grouping import short_time
from client.ui.views.login import USERNAME_RULE, password_hint, username_problem
from client.ui.views.placement import MARGIN, clamp_to_screen
from client.ui.views.source_box import source_label
from client.ui.views.theme import theme_label

SCREEN = (1600, 900)


def test_a_window_past_the_edge_comes_back_whole() -> None:
    assert clamp_to_screen(1612, 0, 520, 640, SCREEN) == (1600 - 520 - MARGIN, 0)
    assert clamp_to_screen(100, 800, 520, 640, SCREEN) == (100, 900 - 640 - MARGIN)
    assert clamp_to_screen(-50, -20, 520, 640, SCREEN) == (0, 0)
    assert clamp_to_screen(30, 40, 520, 640, SCREEN) == (30, 40)


def test_a_window_larger_than_the_screen_keeps_its_corner_on_it() -> None:
    assert clamp_to_screen(500, 500, 2000, 1000, SCREEN) == (0, 0)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("bootstrap-light", "Bootstrap (light)"),
        ("tokyo-night-dark", "Tokyo Night (dark)"),
        ("one-dark", "One (dark)"),
        ("plain", "Plain"),
    ],
)
def test_themes_have_names_for_people(name: str, label: str) -> None:
    assert theme_label(name) == label


def test_the_password_rule_counts_down_then_holds() -> None:
    assert password_hint("") == ("At least 8 characters", False)
    assert password_hint("abcde") == ("At least 8 characters (3 more)", False)
    assert password_hint("abcdefgh") == ("✓ 8 characters or more", True)


def test_letter_avatars_differ_by_username_and_stay_the_same() -> None:
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    tints = [avatar_tint(name, 0, 10) for name in names]
    assert len(set(tints)) >= 4
    assert tints == [avatar_tint(name.upper(), 0, 10) for name in names]
    assert avatar_tint("alice", 1, 10) == (tints[0] + 1) % 10


def test_a_new_username_is_checked_by_the_servers_rule() -> None:
    assert username_problem("Alice_1.x-y", complete=True) == ""
    assert username_problem("al", complete=False) == ""
    assert username_problem("al", complete=True) == USERNAME_RULE
    assert username_problem("al ice", complete=False) == USERNAME_RULE
    assert username_problem("a" * 33, complete=False) == USERNAME_RULE


def _local_ms(*fields: int) -> int:
    """Unix ms of a local date and time (year, month, day, hour, minute)."""
    return int(time.mktime((*fields, 0, 0, 0, -1)) * 1000)


def test_a_conversation_time_is_short_and_says_the_day_when_not_today() -> None:
    now = _local_ms(2026, 12, 2, 15, 30)
    assert short_time(_local_ms(2026, 12, 2, 9, 5), now) == "09:05"
    assert short_time(_local_ms(2026, 12, 1, 23, 59), now) == "Yesterday"
    assert short_time(_local_ms(2026, 11, 28, 12, 0), now) == "Sat"
    assert short_time(_local_ms(2026, 11, 3, 12, 0), now) == "3 Nov"
    assert short_time(_local_ms(2025, 12, 24, 12, 0), now) == "24 Dec 2025"


def test_a_video_source_has_a_name_before_the_devices_are_known() -> None:
    assert source_label("synthetic") == "Test pattern"
    assert source_label("file:/videos/talk.mp4") == "File: talk.mp4"
    assert source_label("camera:2") == "Camera 2"
    assert source_label("screen") == "Screen 1"
    assert source_label("screen:0,10,640,480") == "Screen area 640×480 at 0,10"
    assert source_label("screen:1,2,3") == "screen:1,2,3"
