"""The transfers window as a table (name, peer, size, progress, rate, state)
whose finished rows can be cleared, and "Open folder" that says why it
cannot when the desktop has no ``xdg-open``."""

from __future__ import annotations

from pathlib import Path

from client.ui.views.transfer_table import progress_text
from tests.conftest import ServerProcess

from .harness import befriend_peer, screenshot, sign_up, wait_until


def test_the_table_its_actions_and_a_folder_that_cannot_open(
    apps, peers, ui_server: ServerProcess, names, tmp_path: Path, monkeypatch
) -> None:
    alice, bob = names("alice"), names("bob")
    app = apps("alice")
    sign_up(app, ui_server.address, alice)
    befriend_peer(app, peers(bob), alice, bob)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    for name, size in (("notes.txt", 1_000), ("photo.jpg", 250_000)):
        (outbox / name).write_bytes(b"q" * size)
    app.call("double_click_friend", bob)
    wait_until(lambda: app.call("chat_open", bob), app)
    app.call("send_file", bob, str(outbox / "notes.txt"))
    app.call("send_file", bob, str(outbox / "photo.jpg"))
    wait_until(
        lambda: (
            [r[2] for r in app.call("chat_files", bob)]
            == [f"↑ to {bob} · 1.0 kB · sent", f"↑ to {bob} · 250.0 kB · sent"]
        ),
        app,
        what="both uploads done",
    )

    app.call("open_transfers")
    assert app.call("transfer_columns") == [
        "Name", "Peer", "Size", "Progress", "Rate", "State",
    ]  # fmt: skip
    full = progress_text(1, 1)
    wait_until(
        lambda: (
            app.call("transfers")
            == [
                ("photo.jpg", f"to {bob}", "250.0 kB", full, "", "sent"),
                ("notes.txt", f"to {bob}", "1.0 kB", full, "", "sent"),
            ]
        ),
        app,
        what="the table",
    )
    assert app.call("transfer_actions", "notes.txt") == ["Open folder"]

    # No xdg-open on this desktop: the window and the chat say so, and where.
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    expected = (
        f"Cannot open the folder: xdg-open is not installed. The file is in {outbox}"
    )
    app.call("press_transfer", "notes.txt", "Open folder")
    assert app.call("transfers_message") == expected
    app.call("press_chat_file", bob, "notes.txt", "Open folder")
    assert app.call("chat_files_message", bob) == expected
    screenshot("transfers_table", app)
    monkeypatch.undo()

    app.call("clear_finished_transfers")
    assert app.call("transfers") == []
    assert (outbox / "notes.txt").exists()


def test_progress_is_a_bar_and_a_percentage() -> None:
    assert progress_text(0, 100) == "░░░░░░░░░░  0 %"
    assert progress_text(45, 100) == "████░░░░░░  45 %"
    assert progress_text(5, 0) == "██████████  100 %"
