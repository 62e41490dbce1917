"""The desktop app stays responsive under load: a 1 GiB upload from the chat
while the app is in a 4-person meeting with video, all through one real
server. The Tk main loop runs as it does for the user (no test code between
its events) and a :class:`StallMonitor` ticks every 10 ms; a gap beyond that
is a stall the user would feel. The goal: no stall of 50 ms or more.

This machine is a virtual one with two shared cores, and now and then every
process on it waits tens of milliseconds at once. So a nearly idle probe
process (:mod:`tests.ui.sched_probe`) watches the machine during the same run,
and a Tk stall during which even the probe woke 25 ms or more late, or during
which the hypervisor stole 20 ms or more of the CPUs (Linux's steal time), is
counted as the machine's. The test holds the app's own stalls (every other
one, less the probe's lateness or the steal during it) under 50 ms. Each stall
over 25 ms is written to ``artifacts/ui/responsiveness.json`` with where its
time went (on a CPU, waiting for one, blocked, collecting garbage, stolen),
how much of it the probe shared, and where the Tk thread was (sampled stacks).

What the machine takes cannot be measured exactly: the steal time is summed
over both CPUs in 10 ms steps, and the probe sees only its own lateness (in
one CI run a stall of 496 ms had 180 ms stolen and 225 ms shared by the
probe). So the app's part of the stalls the machine took part in is measured
directly instead: the second test freezes the whole app process (``SIGSTOP``)
for 250 ms three times during the meeting, as a hypervisor does, and holds
the time the Tk loop then needs to catch up (its stalls during and in the
second after a freeze, less the freeze) under 50 ms. Every stall, whoever
caused it, must still end within a second.

The server and the other participants stand for other machines: they run at
``SCHED_IDLE`` (:data:`tests.conftest.STAND_IN`), so on this machine they take
only what the app leaves, and the participants replay video encoded once
instead of encoding their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from client.media.receiver import percentile
from client.ui.stall import StallMonitor, shared_ms
from tests.cli import stop
from tests.conftest import ServerProcess

from . import replay as replay_video
from .harness import (
    ARTIFACTS,
    LocalApp,
    befriend_peer,
    run_until,
    screenshot,
    sign_up,
    wait_until,
    write_config,
)
from .sched_probe import SchedProbe

SIZE, FPS = "640x480", 30
"""Every participant's camera: the app's own is its synthetic source, the
others replay synthetic video (:mod:`tests.ui.replay`)."""
GIB = 1024**3
OWN_WORST_LIMIT_MS = 50.0
FREEZE_LIMIT_MS = 1000.0
"""No stall at all, the machine's included, may reach this: a hung app."""
FREEZE_S = 0.25
"""How long the catch-up test stops the app process, each time."""
CATCH_UP_LIMIT_MS = 50.0
AFTER_FREEZE_S = 1.0
"""How long after a freeze a stall still counts as catching up from it."""
P99_LIMIT_MS = 25.0
"""For the app's own gaps between ticks (the stalls the machine took part in
left out, as for the worst): in one CI run the host's steal every 100 ms put
9 stalls of 28-228 ms into 10 s of the meeting alone, a p99 of 34 ms, while
the app's own p99 stayed low."""
MACHINE_STALL_MS = 25.0
"""A probe wakeup this late means the machine held every process back: the
probe needs a tenth of a millisecond of CPU every 10 ms. Under the test's own
load its worst wakeups are 12-20 ms late; a Tk stall it shared a wakeup of
25 ms or later with is counted as the machine's, not the app's."""
STOLEN_MS = 20.0
"""Steal time this long during a Tk stall (two clock ticks, over both CPUs)
means the hypervisor ran other machines on this one's CPUs meanwhile: a
thread frozen on a stolen CPU looks blocked, and the probe, running on the
other CPU, may not notice. Such a stall is counted as the machine's too."""
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
    """Run the app's Tk loop until ``done()``: the stalls of the loop (all of
    each, and the app's own part), the CPU share of the Tk thread and the
    pictures each tile showed per second."""
    shown = {t[0]: t[3] for t in a.call("meeting_tiles")}
    monitor = StallMonitor(a.app.root, interval_ms=MONITOR_MS, sample_every_ms=5)
    probe = SchedProbe()
    cpu, started = time.thread_time(), time.monotonic()
    monitor.start()
    try:
        run_until(a, done, timeout=timeout, what="the end of the measurement")
    finally:
        monitor.stop()
        machine = probe.stop()
    cpu, seconds = time.thread_time() - cpu, time.monotonic() - started
    shown_now = {t[0]: t[3] for t in a.call("meeting_tiles")}
    held_back = [(ended, ms) for ended, ms in machine if ms >= MACHINE_STALL_MS]
    machine_held = [
        shared_ms(stall, held_back) > 0 or (stall.stolen_ms or 0.0) >= STOLEN_MS
        for stall in monitor.stalls
    ]
    shared = [
        max(shared_ms(stall, machine), stall.stolen_ms or 0.0)
        for stall in monitor.stalls
    ]
    # The app's own: every stall the machine did not hold back, less what it
    # measurably took from it (a late probe wakeup or steal under the limits).
    own = [
        s.ms - ms
        for s, ms, held in zip(monitor.stalls, shared, machine_held, strict=True)
        if not held
    ]
    stalls = [
        {**stall.as_dict(), "machine_ms": round(ms, 1), "machine_held_back": held}
        for stall, ms, held in zip(monitor.stalls, shared, machine_held, strict=True)
    ]
    short = [gap for gap in monitor.gaps_ms if gap <= monitor.explain_ms]
    return {
        "seconds": round(seconds, 1),
        "rendered_fps": {
            key: round((shown_now[key] - shown[key]) / seconds, 1) for key in keys
        },
        "tk_thread_cpu_share": round(cpu / seconds, 3),
        "tk_stall_p99_ms": round(monitor.percentile_ms(99), 1),
        "own_tk_stall_p99_ms": round(percentile(own + short, 99) or 0.0, 1),
        "worst_tk_stall_ms": round(monitor.worst_ms, 1),
        "worst_own_tk_stall_ms": round(max(own + short, default=0.0), 1),
        "tk_stalls_over_50ms": monitor.stalls_over_50ms,
        "tk_ticks_per_s": round(monitor.ticks / seconds),
        "machine_worst_stall_ms": max((ms for _, ms in machine), default=0.0),
        "tk_stalls_machine_held_back": sum(machine_held),
        "stalls_over_25ms": stalls,
    }


FREEZER = """
import json, os, signal, sys, time
pid, times = int(sys.argv[1]), int(sys.argv[4])
freeze_s, gap_s = float(sys.argv[2]), float(sys.argv[3])
frozen = []
for _ in range(times):
    time.sleep(gap_s)
    start = time.perf_counter()
    os.kill(pid, signal.SIGSTOP)
    time.sleep(freeze_s)
    os.kill(pid, signal.SIGCONT)
    ended = time.perf_counter()
    frozen.append([ended, (ended - start) * 1000])
print(json.dumps(frozen))
"""
"""Stops process ``pid`` for ``freeze_s`` seconds ``times`` times, ``gap_s``
apart, and prints each freeze as ``[ended, ms]`` on the ``perf_counter``
clock. A child process: a thread of the app would be stopped with it."""


@contextmanager
def meeting_of_four(
    apps, ui_server: ServerProcess, names, tmp_path: Path
) -> Iterator[tuple[LocalApp, str, list[str]]]:
    """Alice's app in a meeting with three others, every camera at 640x480,
    30 fps, each tile showing readable stamps: the app, Alice's name and the
    tiles' keys."""
    alice = names("alice")
    write_config(
        tmp_path / "homes" / "alice",
        camera="synthetic",
        camera_size=SIZE,
        camera_fps=str(FPS),
    )
    a = apps("alice")
    assert isinstance(a, LocalApp)
    sign_up(a, ui_server.address, alice)
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
        yield a, alice, keys
    finally:
        stop(replay)


def report_of(name: str, report: dict[str, Any], a: LocalApp) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    screenshot(name, a)


@pytest.mark.timeout(600)
def test_ui_stays_responsive_during_a_1_gib_upload_and_a_4_person_meeting(
    apps, peers, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    with meeting_of_four(apps, ui_server, names, tmp_path) as (a, alice, keys):
        bob = names("bob")
        befriend_peer(a, peers(bob), alice, bob)
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
        report_of("responsiveness", report, a)

        for phase in (alone, loaded):
            assert phase["worst_own_tk_stall_ms"] < OWN_WORST_LIMIT_MS, report
            assert phase["worst_tk_stall_ms"] < FREEZE_LIMIT_MS, report
            assert phase["own_tk_stall_p99_ms"] < P99_LIMIT_MS, report
            # The meeting really ran throughout: every tile kept showing new,
            # intact pictures.
            assert all(fps > 10 for fps in phase["rendered_fps"].values()), report
        for key in keys:
            assert a.call("tile_stamp", key) is not None, (key, report)


@pytest.mark.timeout(300)
def test_ui_catches_up_quickly_after_the_whole_app_was_frozen(
    apps, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    """What a hypervisor does to the app now and then, done on purpose: the
    app process stops for 250 ms while the others go on sending video. Once
    it runs again, the Tk loop must be back within 50 ms: no backlog of
    frames decoded or drawn one by one, no timers firing in a burst. The
    best of three freezes is judged, so the machine's own stalls during one
    of them do not decide it; an app that catches up slowly does so every
    time."""
    with meeting_of_four(apps, ui_server, names, tmp_path) as (a, _, keys):
        freezer = subprocess.Popen(
            [sys.executable, "-c", FREEZER, str(os.getpid()), str(FREEZE_S), "2", "3"],
            stdout=subprocess.PIPE,
            text=True,
        )
        monitor = StallMonitor(a.app.root, interval_ms=MONITOR_MS)
        monitor.start()
        try:
            run_until(
                a, lambda: freezer.poll() is not None, timeout=60, what="the freezes"
            )
            deadline = time.monotonic() + AFTER_FREEZE_S
            run_until(a, lambda: time.monotonic() > deadline, timeout=5)
        finally:
            monitor.stop()
            if freezer.poll() is None:
                os.kill(os.getpid(), signal.SIGCONT)
                freezer.kill()
        out, _ = freezer.communicate()
        frozen = json.loads(out)
        catch_up = []
        for ended, ms in frozen:
            # The stall the freeze fell in, and any in the second after it,
            # each less the part of the freeze it covered.
            window = (ended + AFTER_FREEZE_S, ms + AFTER_FREEZE_S * 1000)
            near = [s for s in monitor.stalls if shared_ms(s, [window]) > 0]
            assert any(shared_ms(s, [(ended, ms)]) > 0 for s in near), (
                ended,
                ms,
                [s.as_dict() for s in monitor.stalls],
            )
            catch_up.append(max(s.ms - shared_ms(s, [(ended, ms)]) for s in near))
        report = {
            "video": f"{SIZE}@{FPS}",
            "freezes_ms": [round(ms, 1) for _, ms in frozen],
            "catch_up_ms": [round(ms, 1) for ms in catch_up],
            "stalls_over_25ms": [s.as_dict() for s in monitor.stalls],
        }
        report_of("catch_up", report, a)
        assert len(frozen) == 3, report
        assert min(catch_up) < CATCH_UP_LIMIT_MS, report
        for key in keys:
            assert a.call("tile_stamp", key) is not None, (key, report)
