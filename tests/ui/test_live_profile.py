"""A friend's new name, mood and picture reach an open app while it runs:
the drawer and the open chat show them without a restart."""

from __future__ import annotations

import time

from .harness import screenshot, wait_until

PICTURE = (200, 40, 160)


def test_a_profile_change_reaches_a_friends_open_app(app_with_friend) -> None:
    app, peer, alice, bob = app_with_friend()
    app.call("double_click_friend", bob)
    wait_until(lambda: app.call("chat_open", bob), app)

    start = time.monotonic()
    peer.run("set_profile", "Bob Renamed", "gone fishing")
    wait_until(
        lambda: app.call("drawer") == [("online", "Bob Renamed", "gone fishing", "")],
        app,
        timeout=5,
        what="the new name and mood in the drawer",
    )
    # The issue asks for within a second; the bound is generous for a slow,
    # busy machine. bench/profile_push.py measures the push itself.
    print(f"profile change shown after {time.monotonic() - start:.3f} s")
    wait_until(
        lambda: (
            app.call("chat_peer_name", bob) == ("Bob Renamed", "Bob Renamed — quicmeet")
        ),
        app,
        timeout=5,
    )

    peer.run("set_avatar_color", PICTURE)

    def pictured() -> bool:
        color = app.call("drawer_avatar_color", bob)
        return bool(color) and all(
            abs(c - p) <= 12 for c, p in zip(color[:3], PICTURE, strict=True)
        )

    wait_until(pictured, app, timeout=5, what="the new picture in the drawer")
    screenshot("profile_pushed_live", app)
