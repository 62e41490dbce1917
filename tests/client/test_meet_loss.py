"""Video through random loss, as people would meet: a server process, a
``quicmeet-netsim`` process losing packets both ways, and two ``quicmeet-cli
meet`` processes sending each other stamped video through it.

Coarse bounds that hold on a slow, busy machine; ``bench/loss.py`` measures
the real figures (frame rate, freezes, latency) against the goals.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests.cli import run, spawn, stop
from tests.conftest import ROOT, start_server_process

SECONDS = 8
FPS = 30
MEET = ["meet", "--size", "320x240", "--fps", str(FPS)]


def start_netsim(upstream: str, loss_percent: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netsim",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--delay",
            "10ms",
            "--loss",
            f"{loss_percent}%",
            "--seed",
            str(loss_percent),
            "--stats-format",
            "json",
            "--stats-every",
            "0",
        ],  # fmt: skip
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    start = json.loads(proc.stdout.readline())
    return proc, start["listen"]


@pytest.fixture
def server_process(tmp_path):
    stats = tmp_path / "server-stats.json"
    srv = start_server_process(tmp_path / "server", extra=["--stats-file", str(stats)])
    srv.stats_file = stats
    yield srv
    stop(srv.proc)


async def sfu_counters(server) -> dict:
    """The server's SFU counters, written on SIGUSR1."""
    server.stats_file.unlink(missing_ok=True)
    server.proc.send_signal(signal.SIGUSR1)
    for _ in range(100):
        if server.stats_file.exists():
            try:
                return json.loads(server.stats_file.read_text())
            except json.JSONDecodeError:
                pass  # being written
        await asyncio.sleep(0.05)
    raise AssertionError("the server wrote no stats")


@pytest.mark.parametrize("loss_percent", [2, 5])
async def test_video_keeps_flowing_through_random_loss(
    server_process, tmp_path, loss_percent
):
    homes = {name: tmp_path / name for name in ("alice", "bob")}
    netsim, listen = start_netsim(server_process.address, loss_percent)
    via_netsim = SimpleNamespace(address=listen)
    loop = asyncio.get_running_loop()
    procs = [netsim]
    try:
        for name, home in homes.items():
            assert run(via_netsim, home, "register", name).returncode == 0
        alice = spawn(via_netsim, homes["alice"], "--json", *MEET, "--create",
                      "--stats", str(tmp_path / "alice.json"))  # fmt: skip
        procs.append(alice)
        first = await loop.run_in_executor(None, alice.stdout.readline)
        room_id = json.loads(first)["room"]["room_id"]
        bob = spawn(via_netsim, homes["bob"], *MEET, "--room", room_id,
                    "--duration", str(SECONDS),
                    "--stats", str(tmp_path / "bob.json"))  # fmt: skip
        procs.append(bob)
        code = await loop.run_in_executor(None, bob.wait, SECONDS + 60)
        assert code == 0, bob.stderr.read()
        alice.send_signal(signal.SIGTERM)  # she still writes her statistics
        code = await loop.run_in_executor(None, alice.wait, 60)
        assert code == 0, alice.stderr.read()
        netsim.send_signal(signal.SIGINT)
        out, _ = await loop.run_in_executor(None, netsim.communicate, None, 10)
        sfu = await sfu_counters(server_process)
    finally:
        for proc in procs:
            stop(proc)
    link = json.loads(out.strip().splitlines()[-1])
    for direction in ("up", "down"):
        lost = link[direction]["dropped_loss"] / link[direction]["packets_in"]
        assert 0.3 * loss_percent / 100 < lost < 2 * loss_percent / 100, link

    recovered = 0
    for name in homes:
        stats = json.loads((tmp_path / f"{name}.json").read_text())
        (received,) = stats["received"]
        # No picture shown corrupt or out of order...
        assert received["stamps_unreadable"] == 0, received
        assert received["stamp_order_errors"] == 0, received
        # ...the picture keeps moving (the bench holds it to 28 fps; a slow
        # machine renders fewer)...
        assert received["fps"] >= 0.5 * FPS, received
        assert received["time_frozen_s"] < 0.25 * SECONDS, received
        # ...and losses are repaired by retransmission: once the picture runs,
        # a keyframe only for a frame retransmission could not save, never
        # twice for one (issue 12 counted 72-105 per 30 s before
        # retransmission). How many frames a machine loses to late timers
        # depends on its load; bench/loss.py measures the rate. How often the
        # first keyframe is asked for depends on how fast the publisher's
        # encoder starts, so it is bounded loosely.
        requests = received["keyframe_requests"]
        to_start = received["keyframe_requests_to_start"]
        assert 1 <= to_start <= 8, received
        assert requests - to_start <= 1 + 2 * received["frames_lost"], received
        recovered += received["packets_recovered"]
    assert recovered > 0
    # The link carries far more than the media: the SFU dropped nothing, and
    # answered NACKs from its own caches.
    assert sfu["sfu_dropped_queue_full"] == 0 and sfu["sfu_frames_dropped"] == 0
    assert sfu["sfu_retransmissions"] > 0 and sfu["sfu_nacks_sent"] > 0
