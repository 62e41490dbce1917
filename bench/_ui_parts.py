"""Parts of ``bench/ui.py``: the CPU of the processes of a run, the CLI's
upload it is compared with, freezes of the app and the catch-up after them,
and the app's sound devices' line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import process_cpu_seconds  # noqa: I001
from stall import StallMonitor, machine_busy_s, shared_ms

from tests.cli import cli_args, cli_env
from tests.conftest import ServerProcess
from tests.ui.harness import LocalApp, run_until, wait_until
from tests.ui.load import sound_health, sparse_file

MONITOR_MS = 10
"""The stall monitor's tick: fine enough to see a 50 ms stall, and not itself
a load."""
FREEZE_S = 0.25
AFTER_FREEZE_S = 1.0
"""How long after a freeze a stall still counts as catching up from it."""
FREEZER = """
import json, os, signal, sys, time
pids, times = [int(p) for p in sys.argv[1].split(",")], int(sys.argv[4])
freeze_s, gap_s = float(sys.argv[2]), float(sys.argv[3])
frozen = []
for _ in range(times):
    time.sleep(gap_s)
    start = time.perf_counter()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    time.sleep(freeze_s)
    for pid in pids:
        os.kill(pid, signal.SIGCONT)
    ended = time.perf_counter()
    frozen.append([ended, (ended - start) * 1000])
print(json.dumps(frozen))
"""
"""Stops the processes ``pids`` (comma-separated) for ``freeze_s`` seconds
``times`` times, ``gap_s`` apart, and prints each freeze as ``[ended, ms]``
on the ``perf_counter`` clock. A child process: a thread of the app would be
stopped with it."""


class ProcessCpu:
    """CPU seconds of named processes between :meth:`start` and :meth:`shares`,
    and of the whole machine (``machine``: every process, all cores)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self._wall = 0.0

    def _now(self) -> dict[str, float]:
        now = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        engine = self.pids.get("app_engine")
        if engine is not None:
            # The engine's upload pumps, once they ended (docs/engine.md).
            now["app_pumps"] = process_cpu_seconds(engine, children=True)
        machine = machine_busy_s()
        if machine is not None:
            now["machine"] = machine
        return now

    def start(self) -> None:
        self._start = self._now()
        self._wall = time.perf_counter()

    def shares(self) -> dict[str, float]:
        """Each process's CPU time since :meth:`start` over the wall time
        (1.0 is one whole core)."""
        wall = time.perf_counter() - self._wall
        return {
            name: round((seconds - self._start[name]) / wall, 3)
            for name, seconds in self._now().items()
        }


def sound_now(a: LocalApp) -> tuple[int, ...]:
    """The own tile's sound line as :func:`sound_health` reads it, once the
    statistics show it."""
    return wait_until(
        lambda: sound_health(a.call("tile_stats", "self:camera")),
        a,
        what="the sound devices' line",
    )


def sound_during(before: tuple[int, ...], after: tuple[int, ...]) -> dict[str, Any]:
    """The sound devices' glitches between two readings of their line, and
    the buffers they ended with."""
    return {
        "speaker_s": after[0] - before[0],
        "underruns": after[1] - before[1],
        "overruns": after[3] - before[3],
        "dropped": after[4] - before[4],
        "buffer_ms": {"speaker": after[2], "microphone": after[5]},
    }


def cli_upload(server: ServerProcess, workdir: Path, size: int) -> dict[str, Any]:
    """``quicmeet-cli file send`` of ``size`` bytes between two new users,
    timed from the command's start to its end (hashing included, as the
    app's upload includes it)."""
    homes = {name: workdir / name for name in ("cli-sender", "cli-recipient")}
    env = cli_env()

    def cli(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_args(server, homes[name], *args),
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=1800,
            check=True,
        )

    for name in homes:
        cli(name, "register", name)
    cli("cli-sender", "friend", "add", "cli-recipient")
    cli("cli-recipient", "friend", "accept", "cli-sender")
    path = workdir / "cli.bin"
    sparse_file(path, size)
    cpu = ProcessCpu({"server": server.proc.pid})
    cpu.start()
    started = time.perf_counter()
    sent = cli("cli-sender", "--json", "file", "send", "cli-recipient", str(path))
    seconds = time.perf_counter() - started
    shares = cpu.shares()
    result = json.loads(sent.stdout.strip().splitlines()[-1])
    assert result.get("bytes_sent") == size and not result.get("instant"), result
    path.unlink()
    return {
        "seconds": round(seconds, 1),
        "mb_per_s": round(size / seconds / 1e6, 2),
        # The CLI runs as a child that has ended: the machine's busy cores
        # less the server's are the CLI's and everything else's.
        "cpu_share": shares,
    }


def catch_up(a: LocalApp, freezes: int) -> dict[str, Any]:
    """Stop the app's two processes (window and engine) ``freezes`` times for
    :data:`FREEZE_S` and measure how long the Tk loop then takes to catch up."""
    app_pids = f"{os.getpid()},{a.app.link.pid}"
    freezer = subprocess.Popen(
        [sys.executable, "-c", FREEZER, app_pids, str(FREEZE_S), "2",
         str(freezes)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    monitor = StallMonitor(a.app.root, interval_ms=MONITOR_MS)
    monitor.start()
    try:
        run_until(a, lambda: freezer.poll() is not None, timeout=60, what="freezes")
        deadline = time.monotonic() + AFTER_FREEZE_S
        run_until(a, lambda: time.monotonic() > deadline, timeout=5)
    finally:
        monitor.stop()
        if freezer.poll() is None:
            freezer.kill()
            for pid in (os.getpid(), a.app.link.pid):
                if pid is not None:
                    os.kill(pid, signal.SIGCONT)
    out, _ = freezer.communicate()
    frozen = json.loads(out)
    caught_up = []
    for ended, ms in frozen:
        # The stall the freeze fell in, and any in the second after it, each
        # less the part of the freeze it covered.
        window = (ended + AFTER_FREEZE_S, ms + AFTER_FREEZE_S * 1000)
        near = [s for s in monitor.stalls if shared_ms(s, [window]) > 0]
        caught_up.append(
            max((s.ms - shared_ms(s, [(ended, ms)]) for s in near), default=0.0)
        )
    return {
        "freezes_ms": [round(ms, 1) for _, ms in frozen],
        "catch_up_ms": [round(ms, 1) for ms in caught_up],
    }


def children() -> list[int]:
    """This process's child processes (Linux)."""
    task = Path(f"/proc/{os.getpid()}/task")
    pids: list[int] = []
    for thread in task.iterdir():
        children = (thread / "children").read_text().split()
        pids.extend(int(pid) for pid in children)
    return pids


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""
