"""The friend list shows each conversation's newest message and its time,
and follows every message sent or received while the app runs."""

from __future__ import annotations

import re

from .harness import screenshot, wait_until

LONG = "a reply long enough that it cannot fit beside the avatar in the list " * 3


def test_the_friend_list_previews_the_newest_message(app_with_friend) -> None:
    app, peer, alice, bob = app_with_friend()
    assert app.call("drawer_times") == {bob: ""}

    peer.run("send_text", alice, "lunch at noon?\n  by the river")
    wait_until(
        lambda: (
            app.call("drawer") == [("online", bob, "lunch at noon? by the river", "1")]
        ),
        app,
        what="the preview of Bob's message",
    )
    assert re.fullmatch(r"\d\d:\d\d", app.call("drawer_times")[bob])

    app.call("double_click_friend", bob)
    wait_until(lambda: app.call("chat_open", bob), app)
    app.call("type_message", bob, LONG)
    app.call("press_return", bob)
    row = wait_until(
        lambda: next(
            (r for r in app.call("drawer") if r[2].startswith("You: a reply")), None
        ),
        app,
        what="the preview of our own message",
    )
    assert row[2].endswith("…") and len(row[2]) < len(LONG)
    assert row[3] == ""
    screenshot("friend_list_previews", app)

    peer.run("send_text", alice, "see you there")
    wait_until(
        lambda: app.call("drawer")[0][2] == "see you there", app, what="the answer"
    )
