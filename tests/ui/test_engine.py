"""The window and its engine are two processes: when the engine dies the
window starts a new one and the user is back where they were (signed in, in
the meeting, nothing typed lost); when the window dies the engine follows
within 2 s and the server sees the user leave; closing the window ends both.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from client.engine.channel import frame
from tests.conftest import ServerProcess

from .harness import (
    LocalApp,
    befriend,
    befriend_peer,
    sign_up,
    wait_until,
    write_config,
)
from .load import sparse_file
from .test_meeting import LEFT, RIGHT, VIDEO, advancing_stamp

UPLOAD_BYTES = 32 * 1024**2
"""Large enough to be under way when the engine is killed."""
RECOVERY_S = 60.0
"""A new engine starts, signs in and rejoins within this (generous: its
imports alone take seconds on a slow, busy machine)."""


def kill_engine(app: LocalApp) -> int:
    pid = app.app.link.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return pid


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie counts: it runs no more)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_the_engine_killed_during_a_chat_comes_back_and_loses_nothing(
    apps, peers, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    alice, bob = names("alice"), names("bob")
    a = apps("alice")
    assert isinstance(a, LocalApp)
    sign_up(a, ui_server.address, alice)
    peer = peers(bob)
    befriend_peer(a, peer, alice, bob)
    a.call("double_click_friend", bob)
    wait_until(lambda: a.call("chat_open", bob), a)
    a.call("type_message", bob, "before the crash")
    a.call("press_return", bob)
    wait_until(lambda: peer.run("received", alice) == ["before the crash"], a)

    # An upload under way, a message sent just as the engine dies, then a
    # draft typed while it is down.
    big = tmp_path / "big.bin"
    sparse_file(big, UPLOAD_BYTES)
    a.call("send_file", bob, str(big))
    wait_until(
        lambda: any(
            r[1] == "big.bin" and " MB of " in r[2] and "checking" not in r[2]
            for r in a.call("chat_files", bob)
        ),
        a,
        what="the upload under way",
    )
    a.call("type_message", bob, "sent as it died")
    a.call("press_return", bob)
    old = kill_engine(a)
    a.call("type_message", bob, "a draft")
    wait_until(lambda: a.call("engine")["restarts"] == 1, a, what="a new engine")
    assert a.call("engine")["pid"] != old and gone(old)
    assert ("Engine restarted", "The engine stopped; starting it again.") in a.call(
        "toasts"
    )

    # Signed in again by itself, the chat window and its draft as they were.
    wait_until(
        lambda: a.call("banner") == "", a, timeout=RECOVERY_S, what="signed in again"
    )
    assert a.call("screen") == "main"
    wait_until(
        lambda: a.call("drawer") == [("online", bob, "You: sent as it died", "")], a
    )
    assert a.call("composer_text", bob) == "a draft"
    wait_until(
        lambda: peer.run("received", alice) == ["before the crash", "sent as it died"],
        a,
        timeout=RECOVERY_S,
        what="every message delivered once",
    )
    wait_until(
        lambda: (
            [m[2] for m in a.call("chat_messages", bob)]
            == ["before the crash", "sent as it died"]
        ),
        a,
        what="the transcript",
    )
    # The new engine follows the open chat: a reply shows at once.
    peer.run("send_text", alice, "welcome back")
    wait_until(
        lambda: "welcome back" in [m[2] for m in a.call("chat_messages", bob)],
        a,
        what="the reply in the open chat",
    )
    a.call("press_return", bob)
    wait_until(lambda: peer.run("received", alice)[-1:] == ["a draft"], a)
    # The upload went on in the new engine, to the end.
    wait_until(
        lambda: any(
            r[1] == "big.bin" and r[2].endswith(("· sent", "· received"))
            for r in a.call("chat_files", bob)
        ),
        a,
        timeout=RECOVERY_S,
        what="the upload finished",
    )


def test_the_engine_killed_during_a_meeting_takes_the_user_back_into_it(
    apps, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    alice, bob = names("alice"), names("bob")
    write_config(tmp_path / "homes" / "alice", **VIDEO)
    write_config(tmp_path / "homes" / "bob", **VIDEO)
    a = apps("alice", position=LEFT)
    b = apps("bob", remote=True, position=RIGHT)
    assert isinstance(a, LocalApp)
    sign_up(a, ui_server.address, alice)
    sign_up(b, ui_server.address, bob)
    befriend(a, b, alice, bob)
    a.call("start_meeting")
    wait_until(lambda: a.call("meeting_open"), a, what="the meeting window")
    code = a.call("meeting_code")
    b.call("join_meeting", code)
    wait_until(lambda: len(a.call("meeting_members")) == 2, a, what="Bob joined")
    a.call("meeting_toggle", "camera")
    advancing_stamp(a, "self:camera")

    kill_engine(a)
    wait_until(lambda: a.call("engine")["restarts"] == 1, a, what="a new engine")
    # Back in the same meeting, sending video again, and Bob sees her.
    wait_until(
        lambda: (
            a.call("meeting_open")
            and a.call("meeting_code") == code
            and a.call("meeting_members") == [(f"{alice} (you)", "★ host"), (bob, "")]
        ),
        a,
        timeout=RECOVERY_S,
        what="Alice back in the meeting",
    )
    advancing_stamp(a, "self:camera")
    alice_tile = wait_until(
        lambda: next((t for t in b.call("meeting_tiles") if t[1] == alice), None),
        a,
        timeout=RECOVERY_S,
        what="Alice's tile on Bob's side",
    )
    advancing_stamp(b, alice_tile[0])
    a.call("meeting_say", "back again")
    wait_until(lambda: (alice, "back again") in b.call("meeting_chat"), a, what="chat")


def test_the_engine_of_a_killed_window_exits_and_the_user_goes_offline(
    apps, ui_server: ServerProcess, names
) -> None:
    alice, bob = names("alice"), names("bob")
    a = apps("alice", position=LEFT)
    b = apps("bob", remote=True, position=RIGHT)
    sign_up(a, ui_server.address, alice)
    sign_up(b, ui_server.address, bob)
    befriend(a, b, alice, bob)
    engine_pid = b.call("engine")["pid"]

    b.child.proc.kill()
    b.child.proc.wait(10)
    killed = time.monotonic()
    while not gone(engine_pid) and time.monotonic() - killed < 2.0:
        time.sleep(0.02)
    assert gone(engine_pid), "the engine outlived its window by 2 s"
    # It signed off: the server tells Alice at once, long before an idle
    # timeout would.
    wait_until(lambda: a.call("drawer")[0][0] == "offline", a, what="Bob offline")


def test_closing_the_window_ends_the_engine_cleanly(
    apps, ui_server: ServerProcess, names
) -> None:
    a = apps("alice")
    assert isinstance(a, LocalApp)
    sign_up(a, ui_server.address, names("alice"))
    # A garbage frame on the channel: the engine refuses it (the window
    # counts the refusal), and both go on as before.
    a.app.link.send_raw(frame(b"\xc1 garbage"))
    wait_until(lambda: a.app.link.refused == 1, a, what="the refusal")
    a.call("edit_profile", "Ann", "still here")
    wait_until(lambda: a.call("header") == ("Ann", "still here"), a)
    assert a.app.link.restarts == 0
    proc = a.app.link.proc
    assert proc is not None
    a.close()
    # It signed off and exited by itself: not killed after the window's
    # patience (client.ui.link.CLOSE_S) ran out.
    assert proc.returncode == 0
