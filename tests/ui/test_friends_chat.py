"""Two desktop apps (one here, one in a child process) find each other, become
friends and chat: presence dots, unread badges, ticks, typing indicator."""

from __future__ import annotations

from tests.conftest import ServerProcess

from .harness import screenshot, sign_up, wait_until

LEFT = (0, 0)
RIGHT = (960, 0)


def test_two_apps_befriend_and_chat(apps, ui_server: ServerProcess, names) -> None:
    alice, bob = names("alice"), names("bob")
    a = apps("alice", position=LEFT)
    b = apps("bob", remote=True, position=RIGHT)
    sign_up(a, ui_server.address, alice)
    sign_up(b, ui_server.address, bob)

    # Alice finds Bob and asks; Bob sees the request with its note and accepts.
    a.call("add_friend", bob[:3])
    wait_until(lambda: (bob, "") in a.call("people_results"), a, what="search")
    a.call("request_friend", bob, "from the UI test")
    wait_until(
        lambda: a.call("people_status") == f"Request sent to {bob}.", a, what="sent"
    )
    wait_until(lambda: (bob, "requested") in a.call("people_results"), a)
    screenshot("people_search", a, b)
    a.call("close_people")
    assert a.call("drawer") == [("requested", bob, "waiting for an answer", "")]
    wait_until(lambda: b.call("requests") == [alice], a, what="the request on Bob's")
    assert ("Friend request", f"{alice} wants to be friends.") in b.call("toasts")
    screenshot("chat_friend_request", a, b)
    b.call("answer_request", alice, "Accept")

    wait_until(lambda: a.call("drawer") == [("online", bob, "", "")], a)
    wait_until(lambda: b.call("drawer") == [("online", alice, "", "")], a)
    assert b.call("requests") == []

    # Alice opens the chat with a double click and types; Bob gets a badge.
    a.call("double_click_friend", bob)
    wait_until(lambda: a.call("chat_open", bob), a, what="Alice's chat window")
    a.call("type_message", bob, "hello bob")
    assert a.call("composer_text", bob) == "hello bob"
    a.call("press_return", bob)
    assert a.call("composer_text", bob) == ""
    sent = wait_until(
        lambda: [m for m in a.call("chat_messages", bob) if m[3] == "✓✓"],
        a,
        what="the delivered tick",
    )
    assert [(m[1], m[2], m[4]) for m in sent] == [(True, "hello bob", "tick")]
    wait_until(lambda: b.call("drawer") == [("online", alice, "hello bob", "1")], a)
    assert (alice, "hello bob") in b.call("toasts")
    screenshot("chat_unread_badge", a, b)

    # Bob opens the chat: the message is read, the badge goes, Alice's tick
    # turns to read; Bob types and Alice sees it, then his answer.
    b.call("click_toast", alice)
    wait_until(lambda: b.call("chat_open", alice), a, what="the chat from the toast")
    wait_until(
        lambda: (
            [m[1:3] for m in b.call("chat_messages", alice)] == [(False, "hello bob")]
        ),
        a,
    )
    wait_until(lambda: b.call("drawer") == [("online", alice, "hello bob", "")], a)
    wait_until(
        lambda: a.call("chat_messages", bob)[0][3:] == ("✓✓", "tick_read"),
        a,
        what="the read tick",
    )
    b.call("type_message", alice, "hi")
    wait_until(
        lambda: a.call("chat_status", bob) == f"{bob} is typing…", a, what="typing"
    )
    screenshot("chat_typing", a, b)
    b.call("type_message", alice, " alice")
    b.call("press_return", alice)
    wait_until(
        lambda: (
            [m[1:3] for m in a.call("chat_messages", bob)]
            == [(True, "hello bob"), (False, "hi alice")]
        ),
        a,
        what="Bob's answer",
    )
    wait_until(lambda: a.call("chat_status", bob) == "online", a)
    wait_until(lambda: b.call("chat_messages", alice)[-1][3:] == ("✓✓", "tick_read"), a)
    screenshot("chat_conversation", a, b)

    # Presence: Bob goes away, Alice's drawer and chat header follow.
    b.call("set_presence", "Away")
    wait_until(lambda: a.call("drawer") == [("away", bob, "hi alice", "")], a)
    wait_until(lambda: a.call("chat_status", bob) == "away", a)
    b.close()
    wait_until(
        lambda: a.call("drawer") == [("offline", bob, "hi alice", "")],
        a,
        timeout=20,
        what="Bob offline",
    )
    screenshot("chat_peer_offline", a)
