"""The chat window as people expect it: bubbles (own on the right, others on
the left, one clean background for a multi-line message), messages of one
sender grouped under one header after a date separator, and a message too
long to send kept in the composer with its error shown right there."""

from __future__ import annotations

from pathlib import Path

from codec.messages.social import MAX_MESSAGE_BYTES

from .harness import screenshot, wait_until


def test_bubbles_groups_and_a_draft_that_is_never_lost(
    app_with_friend, tmp_path: Path
) -> None:
    app, peer, alice, bob = app_with_friend()

    peer.run("send_text", alice, "hi alice")
    peer.run("send_text", alice, "a longer message\nover three lines\nof text")
    wait_until(lambda: app.call("drawer")[0][3] == "2", app, what="Bob's messages")
    app.call("double_click_friend", bob)
    wait_until(lambda: len(app.call("chat_messages", bob) or []) == 2, app)
    app.call("type_message", bob, "hello bob")
    app.call("press_return", bob)
    app.call("type_message", bob, "and again")
    app.call("press_return", bob)
    wait_until(
        lambda: (
            [m[2] for m in app.call("chat_messages", bob)][2:]
            == ["hello bob", "and again"]
        ),
        app,
        what="Alice's messages",
    )
    # One date separator, one header per run of messages of one sender.
    assert app.call("chat_leads", bob) == ["Today", bob, "You"]

    # Own bubbles hug the right edge, Bob's the left; the three-line message is
    # one bubble painted in one colour all down both sides.
    image = screenshot("chat_bubbles", app)
    x0, _, width, _ = app.call("chat_window_box", bob)
    boxes = app.call("bubble_boxes", bob)
    for (bx, _, bw, _), outgoing in zip(boxes, (False, False, True, True), strict=True):
        if outgoing:
            assert x0 + width - (bx + bw) < 60, (bx, bw, x0, width)
            assert bx - x0 > width / 3
        else:
            assert bx - x0 < 60
    bx, by, bw, bh = boxes[1]
    assert bh > 3 * 14
    fill = image.getpixel((bx + 4, by + bh // 2))
    for x in (bx + 3, bx + bw - 4):
        column = {image.getpixel((x, y)) for y in range(by + 14, by + bh - 14)}
        assert column == {fill}, (x, column)

    # A bubble's text can be copied from its menu.
    copied = app.call("copy_message_text", bob, 1)
    assert copied == "a longer message\nover three lines\nof text"

    # A message over the limit stays in the composer, its error in the chat.
    too_long = "x" * (MAX_MESSAGE_BYTES + 10)
    app.call("paste_message", bob, too_long)
    app.call("press_return", bob)
    error = wait_until(lambda: app.call("composer_error", bob), app, what="the error")
    assert f"{MAX_MESSAGE_BYTES + 10} bytes" in error
    assert app.call("composer_text", bob) == too_long
    assert not any(t == "Message not sent" for t, _ in app.call("toasts"))
    assert len(app.call("chat_messages", bob)) == 4
    screenshot("chat_draft_kept", app)
    # Typing again clears the error; the draft is still there to shorten.
    app.call("type_message", bob, "y")
    assert app.call("composer_error", bob) == ""
    assert app.call("composer_text", bob) == too_long + "y"

    # Closing the window keeps the draft for the next time it opens.
    app.call("close_chat", bob)
    app.call("double_click_friend", bob)
    wait_until(lambda: app.call("chat_open", bob), app)
    assert app.call("composer_text", bob) == too_long + "y"

    # So does a file that cannot be sent.
    app.call("send_file", bob, str(tmp_path / "gone.bin"))
    error = wait_until(lambda: app.call("composer_error", bob), app)
    assert error.startswith("File not sent: ") and "gone.bin" in error
    assert not any(t == "File not sent" for t, _ in app.call("toasts"))
