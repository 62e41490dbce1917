"""Files inside the conversation: a file offered or sent is a card among the
messages, where it happened, and its download turns the same card into
progress, then Open and Open folder."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ServerProcess

from .harness import (
    LocalApp,
    befriend_peer,
    screenshot,
    sign_up,
    wait_until,
    write_config,
)


def test_a_file_is_a_card_among_the_messages(
    apps, peers, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    alice, bob = names("alice"), names("bob")
    received = tmp_path / "alice-downloads"
    write_config(tmp_path / "homes" / "alice", downloads=str(received))
    app = apps("alice")
    assert isinstance(app, LocalApp)
    opened: list[Path] = []
    app.app.file_opener = opened.append
    sign_up(app, ui_server.address, alice)
    peer = peers(bob)
    befriend_peer(app, peer, alice, bob)

    peer.run("send_text", alice, "the minutes are coming")
    minutes = tmp_path / "minutes.txt"
    minutes.write_text("we met\n" * 100)
    peer.run("send_file", alice, str(minutes))
    app.call("double_click_friend", bob)
    wait_until(
        lambda: (
            app.call("chat_blocks", bob) == ["the minutes are coming", "[minutes.txt]"]
        ),
        app,
        what="the offer as a card after the message",
    )
    assert app.call("chat_files", bob) == [
        ("offer", "minutes.txt", bob, ["Download", "Decline"])
    ]

    app.call("type_message", bob, "got it thanks")
    app.call("press_return", bob)
    order = ["the minutes are coming", "[minutes.txt]", "got it thanks"]
    wait_until(lambda: app.call("chat_blocks", bob) == order, app, what="our answer")

    app.call("press_chat_file", bob, "minutes.txt", "Download")
    wait_until(
        lambda: (
            app.call("chat_files", bob)
            == [
                (
                    "transfer",
                    "minutes.txt",
                    f"↓ from {bob} · 700 B · saved in {received}",
                    ["Open", "Open folder"],
                )
            ]
        ),
        app,
        what="the download done, in the same card",
    )
    assert app.call("chat_blocks", bob) == order
    assert (received / "minutes.txt").read_text() == minutes.read_text()
    app.call("press_chat_file", bob, "minutes.txt", "Open")
    assert opened == [received / "minutes.txt"]
    screenshot("chat_file_card", app)

    # In the dark theme the card is dark too.
    light = app.call("chat_card_backgrounds", bob)
    app.call("open_settings")
    wait_until(lambda: app.call("settings_themes"), app, what="the settings")
    app.call("choose_theme_and_save", "Bootstrap (dark)")
    wait_until(lambda: app.call("theme") == "bootstrap-dark", app)
    dark = wait_until(
        lambda: (lambda c: c if c != light else None)(
            app.call("chat_card_backgrounds", bob)
        ),
        app,
        what="the card repainted",
    )
    assert sum(int(dark[0][i : i + 2], 16) for i in (1, 3, 5)) < 3 * 80, dark

    # A file we do not want: Decline takes its card away, and Bob is told.
    spam = tmp_path / "spam.bin"
    spam.write_bytes(b"x" * 2000)
    peer.run("send_file", alice, str(spam))
    wait_until(lambda: app.call("chat_blocks", bob) == [*order, "[spam.bin]"], app)
    app.call("press_chat_file", bob, "spam.bin", "Decline")
    wait_until(lambda: app.call("chat_blocks", bob) == order, app, what="gone")
    wait_until(lambda: peer.run("files_cancelled") == [alice], app, what="Bob told")
