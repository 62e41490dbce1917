"""The desktop app under load: a meeting of four with video, a large upload
from a chat beside it, and freezes of the whole app process.

Everything is real: a quicmeet server, the desktop app (signed up through its
login view, in a meeting it started, its camera the synthetic source), three
participants that replay stamped synthetic video over QUIC datagrams
(``tests.ui.replay``), and a friend the app sends a file to. All of them run
on this machine, at Python's defaults. Runs under Xvfb when there is no
display; prints one JSON object.

    python bench/ui.py [--size 640x480] [--fps 30] [--seconds 10]
                       [--upload-mib 1024] [--freezes 3] [--audio]

Phases, side by side in one run:

* ``cli_upload``: ``quicmeet-cli file send`` of a file of the same size
  between two other users, alone: the rate the app's upload is compared with.
* ``app_upload_alone``: the app uploads a file of the same size from a chat
  with no meeting: what the app's own path costs, apart from the meeting.
* ``meeting_alone``: the meeting for ``--seconds``.
* ``with_upload``: the meeting while the app uploads the file from a chat.
* ``catch_up``: the app's processes stopped (``SIGSTOP``) for 250 ms
  ``--freezes`` times while the others keep sending, as a hypervisor does now
  and then; the catch-up is the Tk loop's stalls during a freeze and in the
  second after it, less the freeze.

Each phase reports the Tk loop's stalls (every gap beyond a 10 ms tick: worst,
p99), the pictures each tile showed per second, and the CPU share of every
process: the app's window (``app_ui``, this process, where the Tk loop is
measured) and its engine (``app_engine``) apart, with the engine's upload
pumps (``app_pumps``, counted once they ended), and the cores the whole
machine kept busy (``machine``, every process). The CLI's upload reports the
server's and the machine's share too, and ``with_upload`` the
``cpu_bound_ceiling_vs_cli``: the most the app's upload could reach against
the CLI's if the upload costs the machine as much CPU per byte as the CLI's
did and the meeting keeps what it took alone (the cores left beside the
meeting, over the cores the CLI's upload kept busy). This virtual machine's host
takes its CPUs away now and then (Linux's steal time), and a nearly idle probe
process (``sched_probe.py``) sees the stalls every process shared: a stall
during which the hypervisor stole 20 ms or more, or the probe woke 25 ms or
more late, is counted as the machine's, and the app's own stalls are the
others, less what the machine measurably took from them. Every stall over 25 ms
is listed with where its time went (on a CPU, waiting for one, blocked,
collecting garbage, stolen) and sampled stacks of the Tk thread.

With ``--audio`` the app's microphone and speaker run on a PulseAudio null
sink this benchmark starts (the app's adaptive device buffers, its audio
process), the microphone is on, and each phase also reports the sound
devices' glitches (``sound``: speaker underruns, microphone overruns and
dropped frames, and each device's buffer at the end) from the app's own
statistics line, which is then shown: issue 15 asks for none while the app
shows four tiles and uploads a file.

Goals (issue 13) on the project's 2-core machine: worst Tk stall under
50 ms and p99 under 16 ms, at least 28 fps per tile, the upload within 10%
of the CLI's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _common import start_quicmeet_server  # noqa: I001
from _ui_parts import (  # noqa: E402
    MONITOR_MS,
    ProcessCpu,
    catch_up,
    children,
    cli_upload,
    cmdline,
    sound_during,
    sound_now,
)
from sched_probe import SchedProbe  # noqa: E402
from stall import StallMonitor, shared_ms  # noqa: E402

from client.media.receiver import percentile  # noqa: E402
from tests.conftest import ServerProcess  # noqa: E402
from tests.pulse import null_sink  # noqa: E402
from tests.ui.harness import (  # noqa: E402
    LocalApp,
    Peer,
    befriend_peer,
    run_until,
    sign_up,
    start_xvfb,
    wait_until,
    write_config,
)
from tests.ui.load import meeting_of_four, sparse_file  # noqa: E402

MACHINE_STALL_MS = 25.0
"""A probe wakeup this late means the machine held every process back: the
probe needs a tenth of a millisecond of CPU every 10 ms."""
STOLEN_MS = 20.0
"""Steal time this long during a Tk stall (two clock ticks, over both CPUs)
means the hypervisor ran other machines on this one's CPUs meanwhile."""
GOALS = {
    "worst_own_tk_stall_ms_below": 50,
    "own_tk_stall_p99_ms_below": 16,
    "rendered_fps_per_tile_at_least": 28,
    "upload_rate_vs_cli_at_least": 0.9,
}


def measure(
    a: LocalApp, keys: list[str], cpu: ProcessCpu, done: Callable[[], bool],
    timeout: float,
) -> dict[str, Any]:  # fmt: skip
    """Run the app's Tk loop until ``done()``: the stalls of the loop (all of
    each, and the app's own part), the pictures each tile showed per second
    and the CPU of each process."""
    shown = {t[0]: t[3] for t in a.call("meeting_tiles")}
    monitor = StallMonitor(a.app.root, interval_ms=MONITOR_MS, sample_every_ms=5)
    probe = SchedProbe()
    tk_cpu, started = time.thread_time(), time.monotonic()
    cpu.start()
    monitor.start()
    try:
        run_until(a, done, timeout=timeout, what="the end of the phase")
    finally:
        monitor.stop()
        machine = probe.stop()
    processes = cpu.shares()
    tk_cpu, seconds = time.thread_time() - tk_cpu, time.monotonic() - started
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
    short = [gap for gap in monitor.gaps_ms if gap <= monitor.explain_ms]
    rendered = {key: round((shown_now[key] - shown[key]) / seconds, 1) for key in keys}
    return {
        "seconds": round(seconds, 1),
        "rendered_fps": rendered,
        "min_rendered_fps": min(rendered.values()),
        "cpu_share": {**processes, "tk_thread": round(tk_cpu / seconds, 3)},
        "tk_stall_p99_ms": round(monitor.percentile_ms(99), 1),
        "own_tk_stall_p99_ms": round(percentile(own + short, 99) or 0.0, 1),
        "worst_tk_stall_ms": round(monitor.worst_ms, 1),
        "worst_own_tk_stall_ms": round(max(own + short, default=0.0), 1),
        "tk_stalls_over_50ms": monitor.stalls_over_50ms,
        "tk_stalls_machine_held_back": sum(machine_held),
        "machine_worst_stall_ms": max((ms for _, ms in machine), default=0.0),
        "stalls_over_25ms": [
            {**stall.as_dict(), "machine_ms": round(ms, 1), "machine_held_back": held}
            for stall, ms, held in zip(
                monitor.stalls, shared, machine_held, strict=True
            )
        ],
    }


def _sent(a: LocalApp, name: str) -> bool:
    """Whether the chat with bob shows the file ``name`` as sent."""
    return any(
        r[1] == name and r[2].endswith("· sent") for r in a.query("chat_files", "bob")
    )


def app_upload(a: LocalApp, path: Path, size: int) -> dict[str, Any]:
    """The app's upload of ``size`` bytes to bob from the open chat, with no
    meeting, timed from the command to the row saying sent (hashing
    included, as for the CLI)."""
    sparse_file(path, size)
    started = time.perf_counter()
    a.call("send_file", "bob", str(path))
    run_until(a, lambda: _sent(a, path.name), timeout=3600, what="the upload")
    seconds = time.perf_counter() - started
    path.unlink()
    return {"seconds": round(seconds, 1), "mb_per_s": round(size / seconds / 1e6, 2)}


def run(
    size: str, fps: float, seconds: float, upload_bytes: int, freezes: int,
    audio: bool,
) -> dict[str, Any]:  # fmt: skip
    xvfb = None
    if not os.environ.get("DISPLAY"):
        xvfb, os.environ["DISPLAY"] = start_xvfb("3000x2000x24")
    with ExitStack() as stack:
        if audio:
            pulse = Path(tempfile.mkdtemp(prefix="quicmeet-bench-pulse-"))
            stack.callback(shutil.rmtree, pulse, ignore_errors=True)
            stack.enter_context(null_sink(pulse))
        try:
            return _run(size, fps, seconds, upload_bytes, freezes, audio)
        finally:
            if xvfb is not None:
                xvfb.terminate()
                xvfb.wait(10)


def _run(
    size: str, fps: float, seconds: float, upload_bytes: int, freezes: int,
    audio: bool,
) -> dict[str, Any]:  # fmt: skip
    child = start_quicmeet_server()
    server = ServerProcess(
        child.proc, child.host, child.port, child.workdir / "data",
        child.workdir / "cert.pem", child.workdir / "key.pem",
    )  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="quicmeet-bench-ui-"))
    devices = {"microphone": "pulse", "speaker": "pulse"} if audio else {}
    write_config(
        workdir / "app", camera="synthetic", camera_size=size, camera_fps=str(fps),
        **devices,
    )  # fmt: skip
    a = LocalApp(workdir / "app", server.address, (0, 0))
    bob: Peer | None = None
    try:
        result: dict[str, Any] = {"video": f"{size}@{fps:g}", "tiles": 4}
        result["cli_upload"] = cli_upload(server, workdir, upload_bytes)
        sign_up(a, server.address, "viewer")
        bob = Peer(server.address, "bob", workdir / "bob")
        befriend_peer(a, bob, "viewer", "bob")
        a.call("double_click_friend", "bob")
        wait_until(lambda: a.call("chat_open", "bob"), a)
        result["app_upload_alone"] = app_upload(a, workdir / "alone.bin", upload_bytes)
        result["app_upload_alone"]["upload_rate_vs_cli"] = round(
            result["app_upload_alone"]["mb_per_s"] / result["cli_upload"]["mb_per_s"],
            3,
        )
        others = ["carol", "dave", "erin"]
        with meeting_of_four(a, server.address, others, size, fps) as keys:
            replay = next(
                (p for p in children() if "tests.ui.replay" in cmdline(p)), None
            )
            pids = {"app_ui": os.getpid(), "server": server.proc.pid}
            if a.app.link.pid is not None:
                pids["app_engine"] = a.app.link.pid
            if replay is not None:
                pids["others"] = replay
            cpu = ProcessCpu(pids)
            if audio:
                a.call("meeting_toggle", "microphone")
                a.call("meeting_toggle", "stats")
                sound = sound_now(a)

            deadline = time.monotonic() + seconds
            result["meeting_alone"] = measure(
                a, keys, cpu, lambda: time.monotonic() > deadline, seconds + 30
            )
            if audio:
                sound, before = sound_now(a), sound
                result["meeting_alone"]["sound"] = sound_during(before, sound)
            big = workdir / "big.bin"
            sparse_file(big, upload_bytes)
            a.call("send_file", "bob", str(big))
            loaded = measure(a, keys, cpu, lambda: _sent(a, "big.bin"), timeout=3600)
            if audio:
                loaded["sound"] = sound_during(sound, sound_now(a))
            rate = upload_bytes / loaded["seconds"] / 1e6
            result["with_upload"] = {
                "upload_bytes": upload_bytes,
                "upload_mb_per_s": round(rate, 2),
                "upload_rate_vs_cli": round(rate / result["cli_upload"]["mb_per_s"], 3),
                **loaded,
            }
            cli_busy = result["cli_upload"]["cpu_share"].get("machine")
            meeting_busy = result["meeting_alone"]["cpu_share"].get("machine")
            if cli_busy and meeting_busy is not None:
                left = max(0.0, (os.cpu_count() or 1) - meeting_busy)
                result["with_upload"]["cpu_bound_ceiling_vs_cli"] = round(
                    min(1.0, left / cli_busy), 3
                )
            if freezes:
                result["catch_up"] = catch_up(a, freezes)
            result["stamps_readable"] = all(
                a.call("tile_stamp", key) is not None for key in keys
            )
        loaded = result["with_upload"]
        result["goals"] = GOALS
        result["met"] = {
            "worst_own_tk_stall_ms": max(
                result[p]["worst_own_tk_stall_ms"]
                for p in ("meeting_alone", "with_upload")
            ) < GOALS["worst_own_tk_stall_ms_below"],
            "own_tk_stall_p99_ms": max(
                result[p]["own_tk_stall_p99_ms"]
                for p in ("meeting_alone", "with_upload")
            ) < GOALS["own_tk_stall_p99_ms_below"],
            "rendered_fps": min(
                result[p]["min_rendered_fps"] for p in ("meeting_alone", "with_upload")
            ) >= GOALS["rendered_fps_per_tile_at_least"],
            "upload_rate_vs_cli": loaded["upload_rate_vs_cli"]
            >= GOALS["upload_rate_vs_cli_at_least"],
        }  # fmt: skip
        return result
    finally:
        if bob is not None:
            bob.close()
        a.close()
        child.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(child.workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x480", help="every camera, WxH")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="the meeting alone")
    parser.add_argument("--upload-mib", type=int, default=1024)
    parser.add_argument(
        "--freezes", type=int, default=3, help="SIGSTOPs of 250 ms (0: none)"
    )
    parser.add_argument(
        "--audio",
        action="store_true",
        help="the app's microphone and speaker on a PulseAudio null sink",
    )
    args = parser.parse_args()
    result = run(
        args.size, args.fps, args.seconds, args.upload_mib * 1024**2, args.freezes,
        args.audio,
    )  # fmt: skip
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
