"""Transfers interrupted by killing the client, killing the server, and a lossy
network that keeps dropping: every one ends byte-identical, without restarting
from zero."""

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from client.transfers import Transfers
from codec.messages import FileOffered
from netsim import ImpairmentProxy, LinkConfig
from tests.conftest import (
    PASSWORD,
    ROOT,
    befriend,
    close_member,
    next_of,
    open_member,
    sha256_of,
    start_server_process,
)

MiB = 1024 * 1024


def cli(server, home, *args, timeout=120):
    env = {**os.environ, "QUICMEET_PASSWORD": PASSWORD}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "client",
            "--server",
            server,
            "--home",
            str(home),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def local_done(home, direction):
    """Bytes a transfer has made durable, read from the client's own database."""
    db = home / "history.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute(
                "SELECT MAX(done) FROM stored_transfer WHERE direction = ?",
                (direction,),
            ).fetchone()
    except sqlite3.OperationalError:
        return 0
    return row[0] or 0


def run_and_kill(server, home, args, direction, kill_after_bytes):
    """Start a CLI transfer, SIGKILL it once it made progress, return the bytes
    it had made durable."""
    env = {**os.environ, "QUICMEET_PASSWORD": PASSWORD}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "client",
            "--server",
            server,
            "--home",
            str(home),
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while local_done(home, direction) < kill_after_bytes:
        assert proc.poll() is None, "the transfer ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    return local_done(home, direction)


def test_killing_the_client_mid_upload_and_mid_download(server_process, tmp_path):
    srv = server_process.address
    ann, ben = tmp_path / "ann", tmp_path / "ben"
    assert cli(srv, ann, "register", "ann").returncode == 0
    assert cli(srv, ben, "register", "ben").returncode == 0
    assert cli(srv, ann, "friend", "add", "ben").returncode == 0
    assert cli(srv, ben, "friend", "accept", "ann").returncode == 0
    source = tmp_path / "dataset.bin"
    source.write_bytes(os.urandom(40 * MiB))

    for _ in range(2):
        run_and_kill(srv, ann, ["file", "send", "ben", str(source)], "up", 8 * MiB)
    listing = json.loads(cli(srv, ann, "--json", "file", "list").stdout)
    assert listing["unfinished"] and listing["unfinished"][0]["state"] == "active"
    r = cli(srv, ann, "--json", "file", "resume")
    out = json.loads(r.stdout)
    result = out["transfers"][0]
    assert result["transfer"]["state"] == "done"
    assert result["bytes_sent"] < 40 * MiB  # it continued, it did not restart

    file_id = json.loads(cli(srv, ben, "--json", "file", "list").stdout)["files"][0][
        "file_id"
    ]
    dest = tmp_path / "inbox"
    dest.mkdir()
    for _ in range(2):
        run_and_kill(srv, ben, ["file", "get", file_id, str(dest)], "down", 8 * MiB)
    assert (dest / "dataset.bin.part").exists()
    r = cli(srv, ben, "--json", "file", "resume")
    result = json.loads(r.stdout)["transfers"][0]
    assert result["transfer"]["state"] == "done"
    assert result["bytes_received"] < 40 * MiB
    assert sha256_of(dest / "dataset.bin") == sha256_of(source)


async def test_killing_the_server_mid_upload_and_mid_download(tmp_path):
    srv = start_server_process(tmp_path)
    port = srv.port
    members = []
    try:
        a = await open_member(
            srv.address, "carl", tmp_path / "carl", max_backoff=0.3, idle_timeout=2.0
        )
        b = await open_member(
            srv.address, "dora", tmp_path / "dora", max_backoff=0.3, idle_timeout=2.0
        )
        members += [a, b]
        await befriend(a, b)
        source = tmp_path / "backup.tar"
        source.write_bytes(os.urandom(48 * MiB))

        killed_at = []

        async def kill_after(manager, direction, marks):
            """SIGKILL and restart the server as progress passes each mark."""
            nonlocal srv
            for at in marks:
                reached = asyncio.Event()

                def watch(progress, at=at, reached=reached):
                    if not progress.checking and progress.done >= at:
                        if not reached.is_set():
                            killed_at.append(progress.done)
                        reached.set()

                manager.on_progress = watch
                await reached.wait()
                srv.proc.send_signal(signal.SIGKILL)
                srv.proc.wait(5)
                await asyncio.sleep(0.3)
                srv = start_server_process(tmp_path, port=port)

        up = Transfers(a.session, a.store, tmp_path / "dl-carl")
        sent, _ = await asyncio.gather(
            up.send("dora", source), kill_after(up, "up", [10 * MiB, 28 * MiB])
        )
        assert sent.state == "done"
        assert sent.wire_bytes < 48 * MiB + 2 * 9 * MiB
        # Killed mid-upload, not after it ended (progress reported only at
        # the end once let the second kill land on the finished upload).
        assert len(killed_at) == 2 and max(killed_at) < 48 * MiB, killed_at

        offered = await next_of(b.session, FileOffered, timeout=30)
        down = Transfers(b.session, b.store, tmp_path / "dl-dora")
        got, _ = await asyncio.gather(
            down.download(offered.file.file_id),
            kill_after(down, "down", [10 * MiB, 28 * MiB]),
        )
        assert got.state == "done"
        assert got.wire_bytes < 48 * MiB + 2 * 9 * MiB
        assert len(killed_at) == 4 and max(killed_at) < 48 * MiB, killed_at
        assert sha256_of(tmp_path / "dl-dora" / "backup.tar") == sha256_of(source)
    finally:
        for m in members:
            await close_member(m)
        srv.stop()


@contextlib.asynccontextmanager
async def _friends_behind(proxy, tmp_path, names):
    """Two befriended members reaching the server through ``proxy``, quick to
    notice a dead path (1.5 s idle timeout) and to reconnect."""
    host, port = proxy.listen_address
    via = f"{host}:{port}"
    a = await open_member(
        via, names[0], tmp_path / names[0], idle_timeout=1.5, max_backoff=0.2
    )
    b = await open_member(
        via, names[1], tmp_path / names[1], idle_timeout=1.5, max_backoff=0.2
    )
    try:
        await befriend(a, b)
        yield a, b
    finally:
        await close_member(a)
        await close_member(b)


async def test_lossy_network_that_keeps_dropping(server, tmp_path):
    lossy = LinkConfig(delay_s=0.005, loss=0.05)
    async with (
        ImpairmentProxy(upstream=server.address, up=lossy, down=lossy, seed=5) as proxy,
        _friends_behind(proxy, tmp_path, ("eve", "finn")) as (a, b),
    ):
        source = tmp_path / "photo.raw"
        source.write_bytes(os.urandom(3 * MiB))

        async def drop_repeatedly(times, first=0.7):
            for n in range(times):
                await asyncio.sleep(first if n == 0 else 0.7)
                proxy.update(blackhole=True)
                await asyncio.sleep(2.0)
                proxy.update(blackhole=False)

        up = Transfers(a.session, a.store, tmp_path / "dl-eve")
        # The upload's first outage comes while the 3 MiB still move (about
        # 0.4 s on loopback); the download's after its listing (a listing cut
        # off: the test after this one).
        sent, _ = await asyncio.gather(
            up.send("finn", source), drop_repeatedly(3, first=0.1)
        )
        assert sent.state == "done"
        offered = await next_of(b.session, FileOffered, timeout=30)
        down = Transfers(b.session, b.store, tmp_path / "dl-finn")
        got, _ = await asyncio.gather(
            down.download(offered.file.file_id), drop_repeatedly(3)
        )
        assert got.state == "done"
        assert sha256_of(tmp_path / "dl-finn" / "photo.raw") == sha256_of(source)
        assert proxy.stats.up.dropped_loss > 0
        assert proxy.stats.down.dropped_blackhole > 0


async def test_a_download_whose_listing_is_cut_off_asks_again(server, tmp_path):
    """The connection dies while a download asks for the server's listing
    (the path is cut for longer than the client's idle timeout): once the
    session is back the listing is asked again and the download completes
    (before, it failed with the lost connection)."""
    async with (
        ImpairmentProxy(upstream=server.address) as proxy,
        _friends_behind(proxy, tmp_path, ("gus", "hal")) as (a, b),
    ):
        source = tmp_path / "notes.txt"
        source.write_bytes(os.urandom(64 * 1024))
        sent = await Transfers(a.session, a.store, tmp_path / "dl-gus").send(
            "hal", source
        )
        assert sent.state == "done"
        offered = await next_of(b.session, FileOffered, timeout=30)
        down = Transfers(b.session, b.store, tmp_path / "dl-hal")
        proxy.update(blackhole=True)
        downloading = asyncio.ensure_future(down.download(offered.file.file_id))
        await asyncio.sleep(4.0)  # past the client's 1.5 s idle timeout
        assert not downloading.done()
        proxy.update(blackhole=False)
        got = await asyncio.wait_for(downloading, 60)
        assert got.state == "done"
        assert sha256_of(tmp_path / "dl-hal" / "notes.txt") == sha256_of(source)
