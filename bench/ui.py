"""Rendering in the desktop client: rendered frames per second per video tile
and the CPU share of the Tk thread, with N remote tiles at 30 fps.

Everything is real: a quicmeet server, the desktop app (signed up through its
login view, in a meeting it started), and N participants that send stamped
synthetic W x H video over QUIC datagrams. The app receives, reassembles and
decodes every track on its own threads, scales each picture to its tile there,
and the Tk thread pastes the newest picture of each tile into the tile's one
``PhotoImage``. The participants replay video encoded once
(``tests.ui.replay``) and they and the server run at ``SCHED_IDLE``: they
stand for other machines, and must not take this machine's two cores from
the app.
Runs under Xvfb when there is no display. Prints one JSON object; at the end
every tile's stamp is read back from its pixels.

    python bench/ui.py --tiles 4 --width 640 --height 480 --fps 30 --seconds 10

With ``--busy-threads 2`` two threads compute in Python beside the app (the
way a large upload keeps the loop thread busy) and hold the GIL the Tk thread
needs for every callback; repeat ``--switch-interval`` to measure phases with
other GIL switch intervals side by side, e.g. Python's default against the
app's own: ``--busy-threads 2 --switch-interval 0.005 --switch-interval 0.0001``.

Goal (issue 7): 30 fps per tile with 4 remote 640x480 tiles, under 40% of a
core on the Tk thread.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import process_cpu_seconds, start_quicmeet_server  # noqa: I001

from client.ui.stall import StallMonitor  # noqa: E402
from client.ui.tuning import BACKGROUND_NICE  # noqa: E402
from client.ui.views.tiles import VideoStage  # noqa: E402
from tests.cli import stop  # noqa: E402
from tests.ui import replay as replay_video  # noqa: E402
from tests.ui.harness import (  # noqa: E402
    LocalApp,
    run_until,
    sign_up,
    start_xvfb,
    wait_until,
)

SIDE_PANEL = 330
CHROME_HEIGHT = 130
GAP = 8
MONITOR_MS = 10
"""The stall monitor's tick: fine enough to see a 50 ms stall, and not itself
a load (every tick is a Python callback that waits for the GIL)."""


def start_display() -> subprocess.Popen[bytes] | None:
    """Start Xvfb when there is no display; None if there is one."""
    if os.environ.get("DISPLAY"):
        return None
    try:
        proc, os.environ["DISPLAY"] = start_xvfb("3000x2000x24")
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    return proc


def run(
    tiles: int,
    width: int,
    height: int,
    fps: float,
    seconds: float,
    busy_threads: int = 0,
    switch_intervals: list[float] | None = None,
) -> dict:
    """One app in one meeting, measured once per entry of ``switch_intervals``
    (the GIL switch interval for that phase; the app's own when None)."""
    xvfb = start_display()
    server = start_quicmeet_server(stand_in=True)
    home = Path(tempfile.mkdtemp(prefix="quicmeet-bench-ui-"))
    a = LocalApp(home, server.address, (0, 0))
    replay: subprocess.Popen[str] | None = None
    try:
        sign_up(a, server.address, "viewer")
        a.call("start_meeting")
        wait_until(lambda: a.call("meeting_open"), a, what="the meeting window")
        window = a.app.meetings.window
        assert window is not None
        app_interval = sys.getswitchinterval()
        columns = math.ceil(math.sqrt(tiles))
        rows = math.ceil(tiles / columns)
        stage_w = columns * (width + GAP) + 2 * GAP
        stage_h = rows * (height + GAP) + 2 * GAP
        window.geometry(f"{stage_w + SIDE_PANEL}x{stage_h + CHROME_HEIGHT}+0+0")
        replay = replay_video.start(
            server.address,
            a.call("meeting_code"),
            [f"sender{i}" for i in range(tiles)],
            f"{width}x{height}",
            fps,
        )
        stage = window.stage
        wait_until(
            lambda: (
                len(stage.tiles) == tiles
                and all(t.picture is not None for t in stage.tiles.values())
            ),
            a,
            timeout=30,
            what="every tile showing video",
        )
        time.sleep(0.5)
        a.pump()
        phases = []
        for interval in switch_intervals or [app_interval]:
            # Whole microseconds, as Python keeps it.
            sys.setswitchinterval(round(interval, 6))
            phases.append(measure(a, stage, seconds, busy_threads))
            sys.setswitchinterval(round(app_interval, 6))
        return {
            "tiles": tiles,
            "source": f"{width}x{height}@{fps:g}",
            "busy_threads": busy_threads,
            "phases": phases,
            "goal": {"fps_per_tile": 30, "tk_thread_cpu_share_below": 0.40},
        }
    finally:
        if replay is not None:
            stop(replay)
        a.close()
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)


def measure(a: LocalApp, stage: VideoStage, seconds: float, busy_threads: int) -> dict:
    """Run the app's Tk loop for ``seconds`` beside ``busy_threads`` threads
    computing in Python: what the tiles showed and what it cost."""
    monitor = StallMonitor(a.app.root, interval_ms=MONITOR_MS)
    shown_before = {k: t.frames_shown for k, t in stage.tiles.items()}
    skipped_before = a.app.frames.replaced
    call = a.app.backend.account().meeting.call
    receivers = call.receivers if call is not None else {}
    decoded_before = {k: r.stats.frames_decoded for k, r in receivers.items()}
    busy = BusyThreads(busy_threads)
    cpu_start, process_start = time.thread_time(), process_cpu_seconds()
    wall_start = time.perf_counter()
    monitor.start()
    deadline = time.monotonic() + seconds
    try:
        run_until(a, lambda: time.monotonic() > deadline, timeout=seconds + 5)
    finally:
        busy_work = busy.stop()
    wall = time.perf_counter() - wall_start
    cpu = time.thread_time() - cpu_start
    process = process_cpu_seconds() - process_start
    monitor.stop()
    stamps = {key: a.call("tile_stamp", key) for key in stage.tiles}
    rendered = {
        key: round((tile.frames_shown - shown_before[key]) / wall, 2)
        for key, tile in stage.tiles.items()
    }
    decoded = {
        f"track:{k}": round((r.stats.frames_decoded - decoded_before[k]) / wall, 2)
        for k, r in receivers.items()
    }
    return {
        "switch_interval_s": round(sys.getswitchinterval(), 6),
        "tile_sizes": sorted({tile.tile_size for tile in stage.tiles.values()}),
        "seconds": round(wall, 2),
        "decoded_fps_per_tile": decoded,
        "rendered_fps_per_tile": rendered,
        "min_rendered_fps": min(rendered.values()),
        "tk_thread_cpu_share": round(cpu / wall, 3),
        "app_process_cpu_share": round(process / wall, 3),
        "tk_stall_p99_ms": round(monitor.percentile_ms(99), 1),
        "worst_tk_stall_ms": round(monitor.worst_ms, 1),
        "frames_skipped": a.app.frames.replaced - skipped_before,
        "stamps_readable": all(s is not None for s in stamps.values()),
        **({"busy_work_per_s": round(busy_work / wall)} if busy_threads else {}),
    }


class BusyThreads:
    """``count`` threads at the loop thread's priority that compute in Python
    until :meth:`stop`: what a large upload gives the app's loop thread to do
    (QUIC in Python), with none of its I/O."""

    def __init__(self, count: int) -> None:
        self.rounds = [0] * count
        self._stopped = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self, index: int) -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        total = 0
        while not self._stopped.is_set():
            for i in range(1000):
                total += i * i
            self.rounds[index] += 1

    def stop(self) -> int:
        """Stop the threads; how many rounds of work they did in all."""
        self._stopped.set()
        for thread in self._threads:
            thread.join()
        return sum(self.rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=4)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--busy-threads",
        type=int,
        default=0,
        help="threads computing in Python beside the app, as a large upload "
        "keeps its loop thread busy",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        action="append",
        dest="switch_intervals",
        help="measure a phase with this GIL switch interval (seconds) instead "
        "of the app's own; repeat it for phases side by side",
    )
    args = parser.parse_args()
    result = run(
        args.tiles,
        args.width,
        args.height,
        args.fps,
        args.seconds,
        args.busy_threads,
        args.switch_intervals,
    )
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
