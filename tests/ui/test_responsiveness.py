"""The desktop app stays usable under load: in a meeting of four (every camera
at 30 fps) it uploads a large file from a chat, with the server and the other
participants on the same machine.

Coarse on purpose, so that it holds on a slow or busy machine: the Tk loop
never stalls for 250 ms, every tile keeps showing new, intact pictures at
more than 15 fps, the upload completes, and the app's sound devices (a
speaker and a microphone on PulseAudio's null sink, with the app's
adaptive device buffers, which start at 40 ms and step up at a glitch, run
by the meeting's audio process: neither behind Tk nor behind the engine's
GIL) keep playing and recording without breaking up: fewer underruns,
overruns and dropped frames together than one per two seconds. Zero is the
goal, measured by ``bench/ui.py --audio`` (0 in 65 s on a quiet machine),
not the bound: with a fixed 100 ms buffer and the test's processes held to
one core's worth of CPU time the speaker underran 0 times in 162 s, but 2
times in 446 s on a machine other work kept at a load of 10 (when the
engine still ran the devices, 20 times in 127 s with a 250 ms buffer).
The cameras send 320x240: on a machine half as fast as the project's, four
640x480 tiles and the upload together want more than its two cores (the
tiles fell to 14-20 fps with the test's processes held to one core's worth
of CPU time), and this test is to catch a frozen or broken app, not to
measure one. How responsive the app is, with four 640x480 tiles and a 1 GiB
upload (the worst and p99 stall, frames per tile, the CPU of each process,
the upload rate against ``quicmeet-cli file send`` alone), is measured by
``bench/ui.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

from .harness import (
    ARTIFACTS,
    LocalApp,
    TickGaps,
    befriend_peer,
    run_until,
    screenshot,
    sign_up,
    wait_until,
    write_config,
)
from .load import meeting_of_four, sound_health, sparse_file

SIZE, FPS = "320x240", 30
"""Every participant's camera: the app's own is its synthetic source, the
others replay synthetic video (:mod:`tests.ui.replay`)."""
UPLOAD_BYTES = 128 * 1024**2
"""Large enough to keep the app's network busy for many seconds, small
enough to finish in a minute on a machine half as fast as the project's."""
STALL_LIMIT_MS = 250.0
"""A stall this long is a frozen window, whatever else the machine does."""
MIN_FPS = 15.0
GLITCH_EVERY_S = 2.0
"""At most one sound glitch per this many seconds on average: a busy
machine's hiccup, not an engine that cannot keep its devices fed."""


@pytest.mark.timeout(600)
def test_ui_stays_usable_during_a_large_upload_in_a_4_person_meeting(
    pulse_devices, apps, peers, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    alice = names("alice")
    write_config(
        tmp_path / "homes" / "alice",
        camera="synthetic",
        camera_size=SIZE,
        camera_fps=str(FPS),
        microphone="pulse",
        speaker="pulse",
    )
    a = apps("alice")
    assert isinstance(a, LocalApp)
    sign_up(a, ui_server.address, alice)
    others = [names(n) for n in ("carol", "dave", "erin")]
    with meeting_of_four(a, ui_server.address, others, SIZE, FPS) as keys:
        a.call("meeting_toggle", "microphone")
        a.call("meeting_toggle", "stats")
        wait_until(
            lambda: sound_health(a.call("tile_stats", "self:camera")),
            a,
            what="the sound devices' line",
        )
        bob = names("bob")
        befriend_peer(a, peers(bob), alice, bob)
        big = tmp_path / "big.bin"
        sparse_file(big, UPLOAD_BYTES)
        a.call("double_click_friend", bob)
        wait_until(lambda: a.call("chat_open", bob), a)

        shown = {t[0]: t[3] for t in a.call("meeting_tiles")}
        gaps = TickGaps(a)
        started = time.monotonic()
        gaps.start()
        try:
            a.call("send_file", bob, str(big))
            run_until(
                a,
                lambda: any(
                    r[1] == "big.bin" and r[2].endswith("· sent")
                    for r in a.query("chat_files", bob)
                ),
                timeout=480,
                what="the upload sent",
            )
        finally:
            gaps.stop()
        seconds = time.monotonic() - started
        shown_now = {t[0]: t[3] for t in a.call("meeting_tiles")}
        sound = wait_until(
            lambda: (
                (h := sound_health(a.call("tile_stats", "self:camera")))
                and h[0] >= seconds
                and h
            ),
            a,
            what="the sound devices' line after the upload",
        )
        report = {
            "video": f"{SIZE}@{FPS}",
            "upload_bytes": UPLOAD_BYTES,
            "seconds": round(seconds, 1),
            "upload_mb_per_s": round(UPLOAD_BYTES / seconds / 1e6, 1),
            "worst_tk_stall_ms": round(gaps.worst_ms, 1),
            "tk_stalls_over_50ms": sum(g > 50 for g in gaps.gaps_ms),
            "rendered_fps": {
                key: round((shown_now[key] - shown[key]) / seconds, 1) for key in keys
            },
            "sound": dict(
                zip(
                    ("speaker_s", "underruns", "overruns", "dropped"),
                    (sound[0], sound[1], sound[3], sound[4]),
                    strict=True,
                )
            ),
            "buffer_ms": {"speaker": sound[2], "microphone": sound[5]},
        }
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "responsiveness.json").write_text(json.dumps(report, indent=1))
        screenshot("responsiveness", a)

        assert gaps.worst_ms < STALL_LIMIT_MS, report
        assert all(fps > MIN_FPS for fps in report["rendered_fps"].values()), report
        for key in keys:
            assert a.call("tile_stamp", key) is not None, (key, report)
        assert sound[1] + sound[3] + sound[4] <= seconds / GLITCH_EVERY_S, report
