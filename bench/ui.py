"""Rendering in the desktop client: rendered frames per second per video tile
and the CPU share of the Tk thread, with N remote tiles at 30 fps.

The meeting window is the real one (App, MeetingWindow, VideoStage, TileFrames);
what feeds it stands in for the decoders: one thread per remote track makes
stamped W x H pictures at the source rate and hands them over exactly as a
receiver's render thread does (scaled to the tile there, newest picture only).
The Tk thread pastes the newest picture of each tile into its one PhotoImage
every frame tick. Runs under Xvfb when there is no display. Prints one JSON
object; at the end every tile's stamp is read back from its pixels.

    python bench/ui.py --tiles 4 --width 640 --height 480 --fps 30 --seconds 10

Goal (issue 7): 30 fps per tile with 4 remote 640x480 tiles, under 40% of a
core on the Tk thread.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import ROOT  # noqa: F401  (puts the repository on sys.path)

from client.home import Home  # noqa: E402
from client.media.sources import FramePacer, wall_clock_ms  # noqa: E402
from client.ui.app import App  # noqa: E402
from client.ui.model import MeetingChanged, MeetingMember, MeetingTile  # noqa: E402
from client.ui.stall import StallMonitor  # noqa: E402
from client.ui.views import MeetingWindow  # noqa: E402
from codec.media.stamp import SyntheticPattern, read_stamp  # noqa: E402

SIDE_PANEL = 330
CHROME_HEIGHT = 130
GAP = 8


def start_xvfb() -> subprocess.Popen[bytes] | None:
    """Start Xvfb on a free display when there is no display; None if there is."""
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        raise SystemExit("no DISPLAY and no Xvfb (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "3000x2000x24"],
        pass_fds=[write_fd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        os.environ["DISPLAY"] = ":" + pipe.readline().strip()
    return proc


def feed(
    app: App,
    key: str,
    width: int,
    height: int,
    fps: float,
    seed: int,
    stop: threading.Event,
    produced: dict[str, int],
) -> None:
    """Stand-in for a receiver's render thread: stamped pictures at ``fps``."""
    pattern = SyntheticPattern(width, height, seed)
    pacer = FramePacer(fps)
    number = 0
    while not stop.is_set():
        pacer.wait()
        frame = pattern.render(number, wall_clock_ms())
        app.frames.put(key, frame, number)
        number += 1
        produced[key] = number


def run(tiles: int, width: int, height: int, fps: float, seconds: float) -> dict:
    xvfb = start_xvfb()
    home = Path(tempfile.mkdtemp(prefix="quicmeet-bench-ui-"))
    app = App(Home(home), server="127.0.0.1:1", auto_sign_in=False)
    try:
        members = tuple(MeetingMember(f"user{i}", f"User {i}") for i in range(tiles))
        state = MeetingChanged(
            "abc-def-ghjk",
            None,
            False,
            False,
            members,
            tuple(
                MeetingTile(f"track:{i + 1}", f"user{i}", f"User {i}", "camera")
                for i in range(tiles)
            ),
        )
        window = MeetingWindow(
            app.root,
            app.controller,
            app.frames,
            state,
            camera="synthetic",
            screen="screen:1",
            on_source=lambda kind, spec: None,
            notify=app.notify,
        )
        columns = int(np.ceil(np.sqrt(tiles)))
        rows = int(np.ceil(tiles / columns))
        stage_w = columns * (width + GAP) + 2 * GAP
        stage_h = rows * (height + GAP) + 2 * GAP
        window.geometry(f"{stage_w + SIDE_PANEL}x{stage_h + CHROME_HEIGHT}+0+0")
        for _ in range(20):
            app.root.update()
            time.sleep(0.01)
        stop = threading.Event()
        produced: dict[str, int] = {}
        feeders = [
            threading.Thread(
                target=feed,
                args=(app, key, width, height, fps, i, stop, produced),
                daemon=True,
            )
            for i, key in enumerate(window.stage.tiles)
        ]
        for thread in feeders:
            thread.start()
        time.sleep(1.0)  # warm up: tiles sized, first pictures shown
        app.root.update()
        monitor = StallMonitor(app.root, interval_ms=5)
        shown_before = {k: t.frames_shown for k, t in window.stage.tiles.items()}
        skipped_before = app.frames.replaced
        produced_before = dict(produced)
        cpu_start = time.thread_time()
        wall_start = time.perf_counter()
        monitor.start()
        app.root.after(int(seconds * 1000), app.root.quit)
        app.root.mainloop()
        wall = time.perf_counter() - wall_start
        cpu = time.thread_time() - cpu_start
        produced_after = dict(produced)
        monitor.stop()
        stop.set()
        for thread in feeders:
            thread.join(5)
        stamps = {
            key: read_stamp(np.asarray(tile.shown_image()))
            if tile.shown_image() is not None
            else None
            for key, tile in window.stage.tiles.items()
        }
        rendered = {
            key: round((tile.frames_shown - shown_before[key]) / wall, 2)
            for key, tile in window.stage.tiles.items()
        }
        sizes = {key: tile.tile_size for key, tile in window.stage.tiles.items()}
        made = {
            key: round((produced_after[key] - produced_before.get(key, 0)) / wall, 2)
            for key in rendered
        }
        return {
            "tiles": tiles,
            "source": f"{width}x{height}@{fps:g}",
            "tile_sizes": sorted(set(sizes.values())),
            "seconds": round(wall, 2),
            "source_fps_per_tile": made,
            "rendered_fps_per_tile": rendered,
            "min_rendered_fps": min(rendered.values()),
            "tk_thread_cpu_share": round(cpu / wall, 3),
            "worst_tk_stall_ms": round(monitor.worst_ms, 1),
            "tk_stalls_over_50ms": monitor.stalls_over_50ms,
            "frames_skipped": app.frames.replaced - skipped_before,
            "stamps_readable": all(s is not None for s in stamps.values()),
            "goal": {"fps_per_tile": 30, "tk_thread_cpu_share_below": 0.40},
        }
    finally:
        app.close()
        shutil.rmtree(home, ignore_errors=True)
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=4)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    result = run(args.tiles, args.width, args.height, args.fps, args.seconds)
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
