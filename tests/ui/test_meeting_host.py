"""A meeting host's etiquette in the desktop app, with a headless member:
windows that open on the screen, "Copy code" that says so, a raised hand the
host cannot miss, a shared screen on the main stage, confirmation before
Remove, Leave and End for all, no "the host ended the meeting" told to the
host who did it, and an invitation that waits for Join or Decline."""

from __future__ import annotations

from pathlib import Path

from .harness import screenshot, settle, wait_until

NEAR_THE_RIGHT_EDGE = (2300, 0)
"""The main window there: new windows beside it would start off the screen."""


def test_host_actions_ask_first_and_windows_stay_on_screen(
    app_with_friend, tmp_path: Path
) -> None:
    app, peer, alice, bob = app_with_friend(position=NEAR_THE_RIGHT_EDGE)

    app.call("start_meeting")
    wait_until(lambda: app.call("meeting_open"), app, what="the meeting window")
    settle(app)
    x, y, width, height = app.call("meeting_window_box")
    screen_w, screen_h = app.call("screen_size")
    assert 0 <= x and x + width <= screen_w and 0 <= y and y + height <= screen_h
    # The host's toolbar (Mic to End for all) fits the narrowest window.
    assert app.call("meeting_toolbar_cut_off") == []

    code = app.call("meeting_code")
    assert app.call("copy_meeting_code") == ("Copied ✓", code)

    peer.run("join_meeting", code)
    peer.run("raise_hand", True)
    wait_until(
        lambda: app.call("hands_notice") == f"☝ {bob} raised a hand",
        app,
        what="the raised hand",
    )
    screenshot("meeting_hand_raised", app)
    # The feedback was for a moment: the button reads as before.
    wait_until(lambda: app.call("copy_button_text") == "Copy code", app, timeout=10)

    # Remove and Leave ask first; Cancel leaves everything as it was.
    app.call("host_action", bob, "Remove")
    assert app.call("confirm_shown") == (
        f"Remove {bob}?",
        f"{bob} will be taken out of the meeting.",
    )
    screenshot("meeting_confirm_remove", app)
    x, y, width, height = app.call("confirm_box")
    assert 0 <= x and x + width <= screen_w and 0 <= y and y + height <= screen_h
    app.call("answer_confirm", "Cancel")
    assert app.call("confirm_shown") is None
    app.call("leave_meeting")
    assert app.call("confirm_shown")[0] == "Leave the meeting?"
    app.call("answer_confirm", "Cancel")
    settle(app)
    assert len(app.call("meeting_members")) == 2 and app.call("meeting_open")
    peer.run("raise_hand", False)
    wait_until(lambda: app.call("hands_notice") == "", app, what="the hand down")

    # A screen Bob shares goes on the main stage by itself, and goes away.
    # Everyone has a tile: without video, an avatar and the name.
    assert [t[:2] for t in app.call("meeting_tiles")] == [
        (f"member:{alice}", "You"),
        (f"member:{bob}", bob),
    ]
    peer.run("publish", "camera", 320, 240, 15)
    wait_until(
        lambda: (
            [t[0].split(":")[0] for t in app.call("meeting_tiles")]
            == ["track", "member"]
        ),
        app,
        what="Bob's camera tile instead of his avatar",
    )
    assert app.call("meeting_layout") == (False, "", "", False)
    share = peer.run("publish", "screen", 1280, 720, 5)
    wait_until(
        lambda: app.call("meeting_layout") == (True, bob, "screen", True),
        app,
        what="the share on the main stage",
    )
    screenshot("meeting_screen_share_staged", app)
    peer.run("unpublish", share)
    wait_until(
        lambda: app.call("meeting_layout") == (False, "", "", False),
        app,
        what="the grid back",
    )

    # A camera that cannot start says why, in the meeting, and stays off.
    missing = tmp_path / "no-such-clip.mp4"
    app.call("use_camera_source", f"file:{missing}")
    app.call("meeting_toggle", "camera")
    problem = wait_until(lambda: app.call("meeting_problem"), app, what="the problem")
    assert problem.startswith("The camera did not start: ")
    assert not app.call("meeting_camera_on")
    assert not [t for t in app.call("toasts") if t[0] == "Video not sent"]
    screenshot("meeting_camera_failed", app)

    # End for all, confirmed: the host hears it was their own doing.
    app.call("end_for_all")
    assert app.call("confirm_shown")[0] == "End the meeting for everyone?"
    app.call("answer_confirm", "End for all")
    wait_until(lambda: not app.call("meeting_open"), app, what="the meeting closed")
    wait_until(
        lambda: (
            ("Meeting ended", "You ended the meeting for everyone.")
            in app.call("toasts")
        ),
        app,
    )
    assert not [t for t in app.call("toasts") if t[0] == "Meeting over"]

    # An invitation waits in the main window until answered.
    room = peer.run("create_meeting")
    peer.run("invite_to_meeting", alice)
    text = f"{bob} invites you to a meeting"
    wait_until(lambda: app.call("invitations") == [(room, text)], app)
    screenshot("meeting_invitation", app)
    settle(app, seconds=1.0)
    assert app.call("invitations") == [(room, text)]
    app.call("answer_invitation", room, "Decline")
    assert app.call("invitations") == []
    assert not app.call("meeting_open")
    peer.run("invite_to_meeting", alice)
    wait_until(lambda: app.call("invitations") == [(room, text)], app)
    app.call("answer_invitation", room, "Join")
    wait_until(lambda: app.call("meeting_open"), app, what="joined from the bar")
    assert app.call("meeting_code") == room
    assert app.call("invitations") == []
    peer.run("leave_meeting")
