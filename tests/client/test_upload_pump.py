"""Uploads sent from an upload pump process over a transfer connection: the
file arrives whole, a pause and a resume work through it, a cancel ends it,
the upload resumes (not restarts) after the pump is killed, and a pump whose
engine is gone exits."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import msgspec
import pytest

from client.transfers import Transfers
from client.transfers.pumping import Order
from tests.conftest import PASSWORD, ROOT, address, befriend, eventually

MiB = 1024 * 1024


async def pair(member, tmp_path):
    alice, bob = await member("alice"), await member("bob")
    await befriend(alice, bob)
    transfers = Transfers(alice.session, alice.store, tmp_path / "dl", pump_at=0)
    return alice, transfers


def big_file(tmp_path, size):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(size))
    return path


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def remote_ready(transfers, sha256):
    files = await transfers.remote()
    return [f.state for f in files if f.sha256 == sha256]


async def test_the_pump_sends_the_file_and_a_pause_holds_it(member, tmp_path):
    alice, transfers = await pair(member, tmp_path)
    path = big_file(tmp_path, 24 * MiB)
    pids = set()
    transfers.on_progress = lambda p: pids.update(transfers.pumps.values())
    sending = asyncio.ensure_future(transfers.send("bob", path))
    await eventually(lambda: transfers.pumps, timeout=20)
    transfer_id = next(iter(transfers.pumps))
    paused = await transfers.pause(transfer_id)
    assert paused.state == "paused"
    await sending
    assert not transfers.pumps
    done = await transfers.resume(transfer_id)
    assert done.state == "done"
    assert len(pids) >= 1 and not any(alive(pid) for pid in pids)
    assert await remote_ready(transfers, done.sha256) == ["ready"]
    # The whole file crossed once, give or take the window in flight at the
    # pause.
    assert done.wire_bytes is None or done.wire_bytes < 26 * MiB


async def test_upload_resumes_after_the_pump_is_killed(member, server, tmp_path):
    alice, transfers = await pair(member, tmp_path)
    size = 32 * MiB
    path = big_file(tmp_path, size)
    sending = asyncio.ensure_future(transfers.send("bob", path))
    await eventually(lambda: transfers.pumps, timeout=20)
    transfer_id, pid = next(iter(transfers.pumps.items()))
    deadline = time.monotonic() + 30
    while (await transfers.get(transfer_id)).done < 4 * MiB:
        assert time.monotonic() < deadline, "no progress through the pump"
        await asyncio.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    done = await asyncio.wait_for(sending, 120)
    assert done.state == "done"
    assert await remote_ready(transfers, done.sha256) == ["ready"]
    # Resumed from what the server held, not sent again from zero.
    assert done.wire_bytes < size + 8 * MiB
    assert server.stats["transfer_connections"] >= 2


async def test_a_cancel_ends_the_pump(member, tmp_path):
    alice, transfers = await pair(member, tmp_path)
    path = big_file(tmp_path, 48 * MiB)
    sending = asyncio.ensure_future(transfers.send("bob", path))
    await eventually(lambda: transfers.pumps, timeout=20)
    transfer_id, pid = next(iter(transfers.pumps.items()))
    cancelled = await transfers.cancel(transfer_id)
    assert cancelled.state == "cancelled"
    with pytest.raises(asyncio.CancelledError):
        await sending
    await eventually(lambda: not alive(pid), timeout=5)
    assert await remote_ready(transfers, cancelled.sha256) == []


def pump_process():
    return subprocess.Popen(
        [sys.executable, "-m", "client.transfers.pump"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def test_a_bad_order_is_refused_clearly():
    proc = pump_process()
    out, err = proc.communicate(b'{"server": 5}\n', timeout=30)
    assert proc.returncode != 0 and out == b""
    assert b"pump: bad order" in err


async def test_a_pump_without_a_live_session_says_so(member, server, tmp_path):
    alice = await member("alice")
    order = Order(
        server=address(server), fingerprint=alice.session.fingerprint,
        token=os.urandom(32).hex(), file_id="x", path=str(tmp_path / "none"),
        offset=0, size=1,
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client.transfers.pump", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    proc.stdin.write(msgspec.json.encode(order) + b"\n")
    line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
    assert "not attached" in line["lost"] and "INVALID_TOKEN" in line["lost"]
    assert await asyncio.wait_for(proc.wait(), 10) == 0


ENGINE = """
import asyncio, sys
from pathlib import Path
from client.session import Session
from client.store import LocalStore
from client.transfers import Transfers

async def main(server, home, path):
    session = Session(server)
    await session.connect()
    await session.login("alice", sys.argv[4])
    store = LocalStore(Path(home) / "history.db")
    await Transfers(session, store, Path(home), pump_at=0).send("bob", Path(path))

asyncio.run(main(*sys.argv[1:4]))
"""
"""An engine's part of an upload, in a process the test can kill."""


def pump_children(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            for child in fh.read().split():
                with open(f"/proc/{child}/cmdline", "rb") as cmd:
                    if b"client.transfers.pump" in cmd.read():
                        found.append(int(child))
    return found


async def test_a_pump_exits_when_its_engine_dies(member, server, tmp_path):
    alice, bob = await member("alice"), await member("bob")
    await befriend(alice, bob)
    await alice.session.close()
    path = big_file(tmp_path, 128 * MiB)
    (tmp_path / "engine").mkdir()
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE, address(server), str(tmp_path / "engine"),
         str(path), PASSWORD],
        cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (pumps := pump_children(engine.pid)):
            assert engine.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.05)
        engine.kill()
        # Its pipes to the dead engine (end of file on stdin, a broken
        # stdout), not the server (which notices the dead engine only after
        # its idle timeout), end the pump.
        await eventually(lambda: not alive(pumps[0]), timeout=4)
    finally:
        engine.kill()
        engine.wait()
