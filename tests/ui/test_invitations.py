"""Declining a meeting invitation reaches the one who invited, both ways: the
app's Decline tells a friend's client, and a friend's decline shows in the app."""

from __future__ import annotations

from .harness import screenshot, wait_until


def test_a_declined_invitation_is_told_to_the_inviter(app_with_friend) -> None:
    app, peer, alice, bob = app_with_friend()

    # Bob invites; Alice's Decline reaches Bob.
    room = peer.run("create_meeting")
    peer.run("invite_to_meeting", alice)
    wait_until(lambda: [r for r, _ in app.call("invitations")] == [room], app)
    app.call("answer_invitation", room, "Decline")
    assert app.call("invitations") == []
    wait_until(lambda: peer.run("declined") == [(room, alice)], app, what="Bob told")
    peer.run("leave_meeting")

    # Alice invites; Bob's decline shows in her app.
    peer.run("follow_rooms")
    app.call("start_meeting")
    wait_until(lambda: app.call("meeting_open"), app)
    code = app.call("meeting_code")
    app.call("invite_to_meeting", bob)
    wait_until(lambda: peer.run("invitations") == [code], app)
    peer.run("decline_invitation", code)
    wait_until(
        lambda: (bob, "declined your invitation to the meeting.") in app.call("toasts"),
        app,
        what="the decline in the app",
    )
    screenshot("meeting_invitation_declined", app)
