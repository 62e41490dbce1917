"""The systems ``bench/adaptation.py`` can put through a link, and what a run
of one returns: time series on the Unix clock.

A system is anything that can hold a one-way video call through a UDP relay:
:class:`Quicmeet` runs a quicmeet server and two ``quicmeet-cli meet``
processes, the impaired one (``far``) publishing synthetic stamped video
through ``quicmeet-netsim``, the other (``near``) on loopback receiving only.
Another system plugs in by returning the same :class:`Run` for the same relay
address, so both meet identical links.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from _common import ROOT, Child, start_quicmeet_server  # noqa: I001
from meeting import make_homes

from codec.media import NO_LIMIT_BPS


@dataclass
class Run:
    """What one system did through one link (times are Unix seconds)."""

    started_at: float
    """When the publisher started."""
    receiver_started_at: float = 0.0
    """When the receiver started (joined)."""
    sent: list[tuple[float, float]] = field(default_factory=list)
    """(time, bits per second sent by the publisher over the last interval)."""
    estimate: list[tuple[float, float]] = field(default_factory=list)
    """(time, the publisher's bandwidth estimate), if the system has one."""
    frames: list[tuple[float, float | None]] = field(default_factory=list)
    """(time a picture was shown at the receiver, glass-to-glass ms or None)."""
    limit: list[tuple[float, float]] = field(default_factory=list)
    """(time, the rate limit the SFU (or relay) set the publisher's video), if
    the system has one."""
    events: list[tuple[float, str, int]] = field(default_factory=list)
    """(time, what, bits per second): the publisher's estimate's cuts by
    cause, probes and probe results, if the system reports them."""
    trace: list[list[float]] = field(default_factory=list)
    """System-specific time series (first column the time), for diagnosis."""
    extra: dict = field(default_factory=dict)
    """System-specific figures (counters from its stats)."""


class System(Protocol):
    name: str

    def run(self, relay: Child, seconds: float, upstream: Child) -> Run:
        """Hold a call of ``seconds`` with the publisher behind ``relay``."""
        ...


def _first_line(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """The first line ``proc`` writes to ``path`` (waiting up to ``timeout`` s)."""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if "\n" in text:
            return text.split("\n", 1)[0]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{path} has no first line")


def _wait_all(procs: list[subprocess.Popen[str]], timeout: float, work: Path) -> None:
    """Wait up to ``timeout`` s for each of ``procs`` to end well (their logs
    are in ``work``)."""
    for proc in procs:
        if proc.wait(timeout) != 0:
            raise RuntimeError(f"meet failed, see {work}")


def _reap(procs: list[subprocess.Popen[str]]) -> None:
    """Kill whichever of ``procs`` still runs (a run that failed)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Quicmeet:
    """quicmeet: server, far publisher through the relay, near receiver."""

    name = "quicmeet"

    def __init__(self, size: str = "640x480", fps: int = 30) -> None:
        self.size = size
        self.fps = fps

    def server(self) -> Child:
        return start_quicmeet_server()

    def run(self, relay: Child, seconds: float, upstream: Child) -> Run:

        work = Path(tempfile.mkdtemp(prefix="quicmeet-bench-adapt-"))
        make_homes(
            work, upstream.address, {"far": relay.address, "near": upstream.address}
        )
        started = time.time()
        far = self._meet(relay.address, work / "far", "--create",
                         "--duration", str(seconds + 2),
                         "--stats", str(work / "far.json"))  # fmt: skip
        procs = [far]
        try:
            room_id = json.loads(_first_line(work / "far.out", far))["room"]["room_id"]
            near_started = time.time()
            near = self._meet(upstream.address, work / "near", "--room", room_id,
                              "--video", "none", "--duration", str(seconds),
                              "--stats", str(work / "near.json"))  # fmt: skip
            procs.append(near)
            _wait_all(procs, seconds + 90, work)
        finally:
            _reap(procs)
        sender = json.loads((work / "far.json").read_text())
        receiver = json.loads((work / "near.json").read_text())
        run = self._run(started, sender, receiver)
        run.receiver_started_at = near_started
        return run

    def _meet(self, address: str, home: Path, *args: str) -> subprocess.Popen[str]:
        # Output goes to files: the final report is larger than a pipe holds.
        with open(f"{home}.out", "w") as out, open(f"{home}.err", "w") as err:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "client",
                    "--server",
                    address,
                    "--home",
                    str(home),
                    "--json",
                    "meet",
                    "--video",
                    "synthetic",
                    "--size",
                    self.size,
                    "--fps",
                    str(self.fps),
                    *args,
                ],  # fmt: skip
                cwd=ROOT,
                stdout=out,
                stderr=err,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    @staticmethod
    def _run(started: float, sender: dict, receiver: dict) -> Run:
        run = Run(started)
        timeline = sender["hop"]["timeline"]
        for (t0, _, sent0), (t1, estimate, sent1) in zip(
            timeline, timeline[1:], strict=False
        ):
            if t1 > t0:
                run.sent.append((t1, (sent1 - sent0) * 8 / (t1 - t0)))
            run.estimate.append((t1, float(estimate)))
        received = receiver["received"]
        if received:
            run.frames = [(t, lat) for t, lat in received[0]["timeline"]]
        (track,) = sender["sent"]
        run.extra = {
            key: track.get(key)
            for key in (
                "frames_sent",
                "frames_skipped",
                "frames_dropped",
                "keyframes_sent",
                "quality_changes",
                "ladder_rung",
                "encoded_width",
                "encoded_fps",
                "retransmissions",
            )  # fmt: skip
        }
        hop = sender["hop"]
        # None: no limit (the SFU needs the track at whatever rate it has)
        run.limit = [
            (t, float(NO_LIMIT_BPS if bps is None else bps))
            for t, _, bps in sender["rate_limit_timeline"]
        ]
        run.events = [(t, what, bps) for t, what, bps in hop.get("events", [])]
        run.trace = hop.get("trace", [])
        run.extra.update(
            {k: v for k, v in hop.items() if k not in ("timeline", "trace", "events")}
        )
        if received:
            got = received[0]
            run.extra.update(
                {
                    f"receiver_{k}": got.get(k)
                    for k in (
                        "fps",
                        "frames_rendered",
                        "keyframe_requests",
                        "frames_lost",
                        "packets_lost",
                        "freezes",
                        "time_frozen_s",
                    )
                }  # fmt: skip
            )
        return run
