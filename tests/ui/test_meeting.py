"""A meeting between two desktop apps with synthetic video: the invitation bar,
video tiles whose pixels carry the senders' frame stamps, self view, speaker
layout, statistics, raised hands, the meeting chat and host controls."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ServerProcess

from .harness import befriend, screenshot, sign_up, wait_until, write_config

LEFT = (0, 0)
RIGHT = (0, 730)
VIDEO = {"camera": "synthetic", "camera_size": "320x240", "camera_fps": "15"}


def is_video(tile) -> bool:
    """Whether a tile of ``meeting_tiles`` shows video (not a member's avatar)."""
    return not tile[0].startswith("member:")


def advancing_stamp(app, key: str):
    """Wait until the tile ``key`` shows two different readable stamps, the
    second newer; return the second."""
    first = wait_until(
        lambda: app.call("tile_stamp", key), app, what=f"a stamp in {key}"
    )
    return wait_until(
        lambda: (s := app.call("tile_stamp", key)) and s[0] > first[0] and s,
        app,
        what=f"a newer stamp in {key}",
    )


def test_two_apps_hold_a_meeting_with_video(
    apps, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    alice, bob = names("alice"), names("bob")
    write_config(tmp_path / "homes" / "alice", **VIDEO)
    write_config(tmp_path / "homes" / "bob", **VIDEO)
    a = apps("alice", position=LEFT)
    b = apps("bob", remote=True, position=RIGHT)
    sign_up(a, ui_server.address, alice)
    sign_up(b, ui_server.address, bob)
    befriend(a, b, alice, bob)

    # Alice starts a meeting and invites Bob, who joins from the notice.
    a.call("start_meeting")
    wait_until(lambda: a.call("meeting_open"), a, what="the meeting window")
    code = a.call("meeting_code")
    assert len(code) == 12 and code.count("-") == 2
    assert a.call("meeting_members") == [(f"{alice} (you)", "★ host")]
    a.call("invite_to_meeting", bob)
    wait_until(
        lambda: b.call("invitations") == [(code, f"{alice} invites you to a meeting")],
        a,
        what="the invitation",
    )
    screenshot("meeting_invitation_bar", a, b)
    b.call("answer_invitation", code, "Join")
    wait_until(lambda: b.call("meeting_open"), a, what="Bob in the meeting")
    assert b.call("meeting_code") == code
    wait_until(
        lambda: a.call("meeting_members") == [(f"{alice} (you)", "★ host"), (bob, "")],
        a,
    )

    # Alice's camera: her self view and Bob's tile of her show her frames.
    a.call("meeting_toggle", "camera")
    advancing_stamp(a, "self:camera")
    alice_tile = wait_until(
        lambda: next(
            (t for t in b.call("meeting_tiles") if t[1] == alice and is_video(t)),
            None,
        ),
        a,
        what="Alice's tile on Bob's side",
    )
    stamp = advancing_stamp(b, alice_tile[0])
    assert stamp[0] > 0

    # Bob's camera too; statistics on his side; speaker layout on hers.
    b.call("meeting_toggle", "camera")
    bob_tile = wait_until(
        lambda: next(
            (t for t in a.call("meeting_tiles") if t[1] == bob and is_video(t)), None
        ),
        a,
    )
    advancing_stamp(a, bob_tile[0])
    b.call("meeting_toggle", "stats")
    stats = wait_until(
        lambda: b.call("tile_stats", alice_tile[0]), a, what="statistics"
    )
    assert stats.startswith("320x240 · ") and "kbit/s" in stats and "rtt" in stats
    a.call("meeting_toggle", "speaker")
    tiles = {t[0]: t for t in a.call("meeting_tiles")}
    assert tiles[bob_tile[0]][2][0] > tiles["self:camera"][2][0]
    screenshot("meeting_video", a, b)

    # Hands, chat, and handing over the host role.
    b.call("meeting_toggle", "hand")
    wait_until(lambda: (bob, "☝") in a.call("meeting_members"), a, what="the hand")
    wait_until(
        lambda: any(t[1].startswith(f"{bob}  ☝") for t in a.call("meeting_tiles")), a
    )
    a.call("meeting_say", "hello meeting")
    wait_until(
        lambda: (alice, "hello meeting") in b.call("meeting_chat"), a, what="chat"
    )
    wait_until(lambda: a.call("meeting_chat") == [(alice, "hello meeting")], a)
    a.call("host_action", bob, "Make host")
    wait_until(lambda: b.call("end_button_shown"), a, what="Bob as host")
    assert (f"{bob} (you)", "★ host ☝") in b.call("meeting_members")
    screenshot("meeting_members", a, b)

    # Bob, host now, is asked before he leaves.
    b.call("leave_meeting")
    assert b.call("confirm_shown")[0] == "Leave the meeting?"
    b.call("answer_confirm", "Leave")
    wait_until(lambda: not b.call("meeting_open"), a, what="Bob gone")
    assert b.call("invitations") == []
    wait_until(lambda: len(a.call("meeting_members")) == 1, a)
    a.call("leave_meeting")
    wait_until(lambda: not a.call("meeting_open"), a, what="Alice gone")
