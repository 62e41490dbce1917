"""``quicmeet-cli meet`` and ``room`` as scripts use them: child processes, a
real server process, stats files, Y4M sinks (file and named pipe), PNG frames,
and a participant killed mid-meeting."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading

import numpy as np
import pytest
from PIL import Image

from client import Session
from codec.media.stamp import read_stamp
from tests.cli import run, spawn, stop
from tests.conftest import PASSWORD, start_server_process


def read_y4m(data: bytes) -> tuple[bytes, list[bytes]]:
    header, _, rest = data.partition(b"\n")
    frames = rest.split(b"FRAME\n")
    assert frames[0] == b""
    return header, frames[1:]


@pytest.fixture
def quick_server_process(tmp_path):
    """A server process that declares a silent client gone after 3 s."""
    srv = start_server_process(tmp_path, extra=["--idle-timeout", "3"])
    yield srv
    stop(srv.proc)


MEET = ["meet", "--size", "320x240", "--fps", "15"]


async def test_headless_meeting_with_stats_sinks_frames_and_a_killed_member(
    quick_server_process, tmp_path
):
    server = quick_server_process
    homes = {name: tmp_path / name for name in ("alice", "bob", "carol")}
    for name, home in homes.items():
        assert run(server, home, "register", name).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    fifo = out / "pipe-bob.y4m"
    os.mkfifo(fifo)
    piped = bytearray()

    def read_pipe() -> None:
        with open(fifo, "rb") as pipe:
            while chunk := pipe.read(65536):
                piped.extend(chunk)

    reader = threading.Thread(target=read_pipe, daemon=True)
    reader.start()

    alice = spawn(
        server, homes["alice"], "--json", *MEET, "--create",
        "--stats", str(out / "alice.json"), "--sink", f"y4m:{out}/pipe-{{user}}.y4m",
    )  # fmt: skip
    procs = [alice]
    observer = Session(server.address)
    try:
        loop = asyncio.get_running_loop()
        first = await loop.run_in_executor(None, alice.stdout.readline)
        room_id = json.loads(first)["room"]["room_id"]
        bob = spawn(
            server, homes["bob"], *MEET, "--room", room_id, "--duration", "3",
            "--stats", str(out / "bob.json"), "--sink", f"y4m:{out}/{{user}}.y4m",
            "--save-frames", str(out / "png"), "--every", "5",
        )  # fmt: skip
        carol = spawn(server, homes["carol"], *MEET, "--room", room_id)
        procs += [bob, carol]

        await observer.connect()
        await observer.register("dave", PASSWORD)
        await observer.login("dave", PASSWORD)
        await observer.rooms.join(room_id)

        def tracks_of(name: str) -> list:
            state = observer.rooms.state
            return [t for t in state.tracks if t.owner == name] if state else []

        deadline = loop.time() + 20
        while not (tracks_of("bob") and tracks_of("carol")):
            assert loop.time() < deadline, observer.rooms.state
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        carol.send_signal(signal.SIGKILL)
        killed_at = loop.time()
        while any(m.username == "carol" for m in observer.rooms.state.members):
            assert loop.time() - killed_at < 6.0, "carol still listed"
            await asyncio.sleep(0.1)
        assert tracks_of("carol") == []

        code = await loop.run_in_executor(None, bob.wait, 60)
        assert code == 0, bob.stderr.read()
        # Stopped by a signal, alice still writes her statistics.
        alice.send_signal(signal.SIGTERM)
        code = await loop.run_in_executor(None, alice.wait, 60)
        assert code == 0, alice.stderr.read()
    finally:
        await observer.close()
        for proc in procs:
            stop(proc)
    reader.join(5)

    stats = json.loads((out / "bob.json").read_text())
    assert stats["user"] == "bob" and stats["room_id"] == room_id
    from_alice = next(r for r in stats["received"] if r["user"] == "alice")
    assert from_alice["frames_rendered"] >= 25, from_alice
    assert from_alice["stamps_unreadable"] == 0
    assert from_alice["stamp_order_errors"] == 0
    assert set(from_alice["latency_ms"]) == {"p50", "p95", "p99", "samples"}
    assert from_alice["latency_ms"]["p50"] <= from_alice["latency_ms"]["p99"] < 1000
    for key in ("frames_received", "frames_decoded", "fps", "keyframe_requests",
                "packets_lost", "bitrate_bps"):  # fmt: skip
        assert key in from_alice
    sent = stats["sent"][0]
    assert sent["frames_sent"] >= 30 and sent["kind"] == "camera"

    # The Y4M file: one frame per rendered picture.
    written = {s["path"]: s for s in stats["sink"]}
    y4m = out / "alice.y4m"
    header, frames = read_y4m(y4m.read_bytes())
    assert header == b"YUV4MPEG2 W320 H240 F15:1 Ip A1:1 C420jpeg"
    assert len(frames) == written[str(y4m)]["frames_written"]
    assert len(frames) >= from_alice["frames_rendered"] - 1
    luma = np.frombuffer(frames[-1][: 320 * 240], np.uint8).reshape(240, 320)
    assert luma[:8, :8].mean() < 40 or luma[:8, :8].mean() > 200  # a stamp cell

    # The PNGs: every 5th rendered picture, each with an intact stamp.
    pngs = sorted((out / "png").iterdir())
    assert len(pngs) == stats["frames_saved"] >= 5
    for png in pngs:
        assert read_stamp(np.asarray(Image.open(png).convert("RGB"))) is not None

    # The named pipe another program read: bob's video, as alice rendered it.
    alice_stats = json.loads((out / "alice.json").read_text())
    assert alice_stats["ended_by"] == "interrupted"
    assert stats["ended_by"] == "time"
    piped_header, piped_frames = read_y4m(bytes(piped))
    assert piped_header.startswith(b"YUV4MPEG2 W320 H240")
    to_pipe = next(s for s in alice_stats["sink"] if s["path"] == str(fifo))
    assert len(piped_frames) == to_pipe["frames_written"] >= 25
    received = {r["user"]: r for r in alice_stats["received"]}
    assert set(received) == {"bob", "carol"}
    assert received["carol"]["frames_rendered"] > 0


def test_room_commands(quick_server_process, tmp_path):
    server = quick_server_process
    homes = {name: tmp_path / name for name in ("alice", "bob", "carol")}
    for name, home in homes.items():
        assert run(server, home, "register", name).returncode == 0
    assert run(server, homes["alice"], "friend", "add", "carol").returncode == 0
    assert run(server, homes["carol"], "friend", "accept", "alice").returncode == 0

    created = run(server, homes["bob"], "--json", "room", "create", "--password", "pw")
    assert created.returncode == 0, created.stderr
    room = json.loads(created.stdout)["room"]
    room_id = room["room_id"]
    assert room["has_password"] and room["host"] == "bob"

    # The room waits, empty; alice joins it (typed in capitals) and stays.
    alice = spawn(server, homes["alice"], "--json", "room", "join", room_id.upper(),
                  "--password", "pw", "--for", "30")  # fmt: skip
    carol_listens = spawn(server, homes["carol"], "listen", "--for", "30")
    procs = [alice, carol_listens]
    try:
        joined = json.loads(alice.stdout.readline())["room"]
        assert [m["username"] for m in joined["members"]] == ["alice"]
        visit = run(server, homes["bob"], "room", "join", room_id, "--password",
                    "pw", "--for", "0.5")  # fmt: skip
        assert visit.returncode == 0, visit.stderr
        assert f"room {room_id} (password)" in visit.stdout
        seen = json.loads(alice.stdout.readline())
        assert seen["type"] == "RoomUpdated"
        assert [m["username"] for m in seen["room"]["members"]] == ["alice", "bob"]

        # A one-shot command of alice's account takes her seat over.
        members = run(server, homes["alice"], "--json", "room", "members")
        assert members.returncode == 0, members.stderr
        listed = json.loads(members.stdout)["room"]["members"]
        assert [m["username"] for m in listed] == ["alice"]
        assert alice.wait(10) == 0
        assert "another client of this account" in alice.stderr.read()

        alice = spawn(server, homes["alice"], "room", "join", room_id, "--password",
                      "pw", "--for", "30")  # fmt: skip
        procs.append(alice)
        assert alice.stdout.readline().startswith(f"room {room_id}")
        invited = run(server, homes["alice"], "--json", "room", "invite", "carol")
        assert json.loads(invited.stdout) == {"ok": True, "invited": "carol"}
        line = carol_listens.stdout.readline()
        while "RoomInvitation" not in line:
            line = carol_listens.stdout.readline()
        assert json.loads(line)["inviter"] == "alice"
        # The invitation admits carol without the password.
        carol_listens.kill()
        accepted = run(server, homes["carol"], "room", "join", room_id, "--for", "0")
        assert accepted.returncode == 0, accepted.stderr
        refused = run(server, homes["bob"], "--json", "room", "invite", "carol")
        assert json.loads(refused.stdout)["error"]["name"] == "NOT_FOUND"

        alice = spawn(server, homes["alice"], "room", "join", room_id, "--password",
                      "pw", "--for", "30")  # fmt: skip
        procs.append(alice)
        assert alice.stdout.readline().startswith(f"room {room_id}")
        left = run(server, homes["alice"], "--json", "room", "leave")
        assert json.loads(left.stdout) == {"ok": True, "left": True}
        assert alice.wait(10) == 0
        left = run(server, homes["alice"], "--json", "room", "leave")
        assert json.loads(left.stdout) == {"ok": True, "left": False}
        wrong = run(server, homes["carol"], "--json", "room", "join", room_id)
        assert json.loads(wrong.stdout)["error"]["name"] == "FORBIDDEN"
    finally:
        for proc in procs:
            stop(proc)
