"""Own profile (name, mood, picture), the friend filter, themes, and the
connection banner while the server restarts."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from PIL import Image, ImageColor

from client.engine.backend.avatars import PALETTE
from client.engine.model import avatar_tint
from tests.conftest import ServerProcess, start_server_process

from .harness import screenshot, sign_up, wait_until

LIGHT_LUMA = 170
"""Brighter than this (0..255) is a light background; the dark theme's
brightest fill (its primary blue) stays well below."""


def test_profile_edit_and_picture_show_in_the_header(
    apps, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    erin = names("erin")
    app = apps("erin")
    sign_up(app, ui_server.address, erin)
    app.call("edit_profile", "Erin Example", "shipping the desktop client")
    wait_until(
        lambda: app.call("header") == ("Erin Example", "shipping the desktop client"),
        app,
        what="the new profile in the header",
    )
    assert not app.call("profile_dialog_open")

    picture = tmp_path / "orange.png"
    Image.new("RGB", (300, 200), (255, 128, 0)).save(picture)
    app.call("choose_avatar", str(picture))
    # The header's avatar (56 px, a circle) turns orange in the middle.
    wait_until(
        lambda: _close(app.call("avatar_pixel", 28, 28), (255, 128, 0)),
        app,
        what="the uploaded picture in the header",
    )
    wait_until(lambda: app.call("profile_dialog_message") == "", app)
    screenshot("profile_picture", app)


def _close(color: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    # An empty colour (no picture yet) is not close to anything.
    return len(color) >= 3 and all(
        abs(a - b) <= 8 for a, b in zip(color, expected, strict=False)
    )


def test_the_friend_filter_and_the_dark_theme(
    apps, peers, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    fay, gus, hal = names("fay"), names("gus"), names("hal")
    app = apps("fay")
    sign_up(app, ui_server.address, fay)
    friends = {name: peers(name) for name in (gus, hal)}
    for peer in friends.values():
        peer.run("request_friend", fay)
    wait_until(lambda: app.call("requests") == [gus, hal], app)
    app.call("answer_request", gus, "Accept")
    app.call("answer_request", hal, "Accept")
    wait_until(
        lambda: [r[1] for r in app.call("drawer")] == [gus, hal], app, what="friends"
    )
    app.call("filter_friends", "ha")
    assert [r[1] for r in app.call("drawer")] == [hal]
    app.call("filter_friends", "")
    assert [r[1] for r in app.call("drawer")] == [gus, hal]

    # Each letter avatar takes its colour from its username.
    for name in (gus, hal):
        expected = ImageColor.getrgb(PALETTE[avatar_tint(name, 0, len(PALETTE))])
        wait_until(
            lambda n=name, e=expected: _close(app.call("drawer_avatar_color", n), e),
            app,
            what=f"{name}'s avatar colour",
        )

    light_background = app.call("drawer_background")
    assert app.call("transfer_styles_built")
    app.call("double_click_friend", gus)
    wait_until(lambda: app.call("chat_open", gus), app)
    app.call("type_message", gus, "hello gus")
    app.call("press_return", gus)
    friends[gus].run("read_all", fay)
    wait_until(lambda: app.call("chat_messages", gus)[0][4] == "tick_read", app)
    app.call("open_settings")
    themes = wait_until(lambda: app.call("settings_themes"), app)
    # Friendly names, not the internal ones.
    assert "Bootstrap (light)" in themes and "Tokyo Night (dark)" in themes
    assert not [t for t in themes if "-" in t]
    app.call("choose_theme_and_save", "Bootstrap (dark)")
    wait_until(lambda: app.call("theme") == "bootstrap-dark", app)
    wait_until(lambda: app.call("drawer_background") != light_background, app)
    dark = app.call("drawer_background")
    assert app.call("chat_background", gus) == dark
    assert sum(int(dark[i : i + 2], 16) for i in (1, 3, 5)) < 3 * 80
    assert app.call("transfer_styles_built")
    config = tmp_path / "homes" / "fay" / "config.json"
    wait_until(lambda: json.loads(config.read_text()).get("theme") == "bootstrap-dark")
    # Nothing of the chat window keeps a light background, and the read tick
    # keeps its colour.
    app.call("search_chat", gus, "hello")
    wait_until(lambda: app.call("search_results", gus), app)
    image = screenshot("settings_dark_theme", app)
    _assert_dark(image, app.call("chat_widget_boxes", gus))
    assert app.call("chat_tick_color", gus, 0) == (
        "tick_read",
        app.call("theme_colors")["tick_read"],
    )
    # Nor does the chat box of a meeting.
    app.call("close_chat", gus)
    app.call("start_meeting")
    wait_until(lambda: app.call("meeting_open"), app, what="the meeting")
    app.call("meeting_say", "in the dark")
    wait_until(lambda: app.call("meeting_chat"), app)
    image = screenshot("meeting_dark_theme", app)
    _assert_dark(image, app.call("meeting_chat_boxes"))
    app.call("leave_meeting")
    wait_until(lambda: not app.call("meeting_open"), app)


def _luma(pixel: tuple[int, ...]) -> float:
    return 0.299 * pixel[0] + 0.587 * pixel[1] + 0.114 * pixel[2]


def _assert_dark(
    image: Image.Image, boxes: list[tuple[str, int, int, int, int]]
) -> None:
    """Every widget's left corners, just inside its edge, are dark: the
    background of each widget shown, whatever it draws in the middle (its
    right side may hold a scrollbar's thumb)."""
    light = []
    for path, x, y, _width, height in boxes:
        for px, py in ((x + 2, y + 2), (x + 2, y + height - 3)):
            if _luma(image.getpixel((px, py))) > LIGHT_LUMA:
                light.append((path, image.getpixel((px, py))))
    assert not light, light


def test_the_banner_shows_while_the_server_restarts(
    apps, names, tmp_path: Path, display: str
) -> None:
    server = start_server_process(tmp_path / "own-server")
    try:
        ivy = names("ivy")
        app = apps("ivy")
        app.call("fill_login", server.address, ivy, "correct horse battery", True)
        app.call("submit_login")
        wait_until(lambda: app.call("login_state")["dialog"], app)
        app.call("trust_server")
        wait_until(lambda: app.call("screen") == "main", app)

        server.stop(signal.SIGTERM)
        wait_until(
            lambda: app.call("banner") == "Connection lost; reconnecting…",
            app,
            what="the banner",
        )
        screenshot("banner_reconnecting", app)
        server = start_server_process(tmp_path / "own-server", port=server.port)
        wait_until(lambda: app.call("banner") == "", app, timeout=20, what="reconnect")
        assert app.call("screen") == "main"
    finally:
        server.stop()
