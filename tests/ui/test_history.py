"""Chat history in the desktop app: paging back as the user scrolls (keeping
their place), unread counts, and search that pages back to the message found."""

from __future__ import annotations

import re

from .harness import screenshot, wait_until

COUNT = 105
"""Three pages of history (50 per page)."""
NEEDLE = 2


def test_history_pages_back_in_place_and_search_finds_old_messages(
    app_with_friend,
) -> None:
    app, peer, alice, bob = app_with_friend("hi")

    peer.run("send_history", alice, COUNT, NEEDLE)
    wait_until(
        lambda: app.call("drawer") == [("online", bob, "message 104", "99+")],
        app,
        what="the unread badge",
    )

    app.call("double_click_friend", bob)
    wait_until(lambda: len(app.call("chat_messages", bob)) == 50, app)
    texts = [m[2] for m in app.call("chat_messages", bob)]
    assert texts[0] == "message 055" and texts[-1] == "message 104"
    wait_until(lambda: "message 104" in app.call("chat_visible", bob), app)
    wait_until(lambda: app.call("drawer") == [("online", bob, "message 104", "")], app)

    # Scrolling to the top loads the page before, and what was at the top
    # stays in view.
    top_before = app.call("chat_messages", bob)[0][2]
    app.call("scroll_chat_to_top", bob)
    wait_until(lambda: len(app.call("chat_messages", bob)) == 100, app)
    assert app.call("chat_messages", bob)[0][2] == "message 005"
    wait_until(lambda: top_before in app.call("chat_visible", bob), app)
    assert app.call("chat_has_more", bob)
    screenshot("history_paged", app)

    # Search finds a message of the oldest page: the window pages back to it.
    app.call("search_chat", bob, "needle")
    wait_until(lambda: app.call("search_results", bob), app, what="search results")
    [row] = app.call("search_results", bob)
    # The full date first, never clipped, and the match highlighted.
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d  {bob}: message 002 with the needle", row
    )
    assert app.call("search_results_fit", bob)
    assert app.call("search_matches", bob) == ["needle"]
    app.call("pick_search_result", bob, 0)
    wait_until(
        lambda: app.call("chat_highlighted", bob) == "message 002 with the needle",
        app,
        what="the message found",
    )
    assert "message 002 with the needle" in app.call("chat_visible", bob)
    assert len(app.call("chat_messages", bob)) == COUNT
    assert not app.call("chat_has_more", bob)
    screenshot("history_search", app)
