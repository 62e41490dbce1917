"""One person, one name: a friend who set a display name is shown by it in
the drawer, the chat (header, sender headers, search results), the files
shown in the chat and the transfers window, the meeting's invite list and
its member list, and the invitation bar."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ServerProcess

from .harness import screenshot, sign_up, wait_until

SHOWN = "Bob Builder"


def test_a_friend_is_shown_by_display_name_everywhere(
    apps, peers, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    alice, bob = names("alice"), names("bob")
    app = apps("alice")
    sign_up(app, ui_server.address, alice)
    peer = peers(bob)

    peer.run("set_display_name", SHOWN)
    peer.run("request_friend", alice)
    wait_until(lambda: app.call("requests") == [bob], app)
    app.call("answer_request", bob, "Accept")
    wait_until(lambda: app.call("drawer") == [("online", SHOWN, "", "")], app)

    peer.run("send_text", alice, "can we fix it")
    wait_until(lambda: app.call("drawer")[0][3] == "1", app)
    app.call("double_click_friend", bob)
    wait_until(lambda: app.call("chat_messages", bob), app)
    assert app.call("chat_leads", bob) == ["Today", SHOWN]
    app.call("search_chat", bob, "fix")
    rows = wait_until(lambda: app.call("search_results", bob), app)
    assert rows[0].endswith(f"  {SHOWN}: can we fix it")

    plan = tmp_path / "plan.txt"
    plan.write_text("yes we can")
    app.call("send_file", bob, str(plan))
    wait_until(
        lambda: (
            [r[2] for r in app.call("chat_files", bob)]
            == [f"↑ to {SHOWN} · 10 B · sent"]
        ),
        app,
    )
    app.call("open_transfers")
    wait_until(lambda: [r[1] for r in app.call("transfers")] == [f"to {SHOWN}"], app)

    app.call("start_meeting")
    wait_until(lambda: app.call("meeting_open"), app)
    assert app.call("invite_choices") == [SHOWN]
    code = app.call("meeting_code")
    peer.run("join_meeting", code)
    wait_until(
        lambda: (
            app.call("meeting_members") == [(f"{alice} (you)", "★ host"), (SHOWN, "")]
        ),
        app,
    )
    screenshot("display_names", app)
    app.call("leave_meeting")
    app.call("answer_confirm", "Leave")
    wait_until(lambda: not app.call("meeting_open"), app)

    room = peer.run("create_meeting")
    peer.run("invite_to_meeting", alice)
    wait_until(
        lambda: (
            app.call("invitations") == [(room, f"{SHOWN} invites you to a meeting")]
        ),
        app,
    )
