"""How long the Tk event loop was blocked: the responsiveness the user feels."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import tkinter as tk
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from client.media.receiver import percentile
from client.ui.ticker import Ticker

__all__ = [
    "Stall",
    "StallMonitor",
    "machine_busy_s",
    "machine_steal_ms",
    "shared_ms",
    "thread_schedstat",
]

SCHEDSTAT = Path("/proc/thread-self/schedstat")
PROC_STAT = Path("/proc/stat")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
"""Clock ticks a second, the unit of ``/proc/stat``."""


def thread_schedstat() -> tuple[int, int] | None:
    """The calling thread's time on a CPU and time runnable but waiting for
    one, in nanoseconds (Linux ``schedstat``); ``None`` where unavailable."""
    try:
        on_cpu, waiting, _ = SCHEDSTAT.read_text().split()
    except (OSError, ValueError):
        return None
    return int(on_cpu), int(waiting)


def machine_steal_ms() -> float | None:
    """How long, since boot, the hypervisor kept this virtual machine's CPUs
    (all of them together) from running it: Linux's ``steal`` time, counted
    in clock ticks (10 ms); ``None`` where unavailable. Time stolen from a
    running thread counts neither as its time on a CPU nor as waiting for
    one, so in a :class:`Stall` it looks blocked."""
    try:
        with PROC_STAT.open("rb") as fh:
            fields = fh.readline().split()
        ticks = int(fields[8])
    except (OSError, ValueError, IndexError):
        return None
    return ticks * 1000 / _CLOCK_TICKS


def machine_busy_s() -> float | None:
    """CPU seconds every process of this machine has run since boot, all
    CPUs together (``/proc/stat``: user, nice, system, irq and softirq; not
    idle, I/O wait or steal); ``None`` where unavailable. Over an interval,
    its growth divided by the wall time is how many cores were busy."""
    try:
        with PROC_STAT.open("rb") as fh:
            fields = fh.readline().split()
        ticks = sum(int(fields[i]) for i in (1, 2, 3, 6, 7))
    except (OSError, ValueError, IndexError):
        return None
    return ticks / _CLOCK_TICKS


@dataclass(frozen=True)
class Stall:
    """One long stall and where its time went: running on a CPU (work on the
    Tk thread), waiting for a CPU (other threads and processes had both
    cores), or neither (blocked: the GIL, the X server, a lock)."""

    ended: float
    """When it ended, on the ``time.perf_counter`` clock (on Linux the
    system-wide monotonic clock, so comparable with other processes)."""
    at_s: float
    """When it ended, in seconds since :meth:`StallMonitor.start`."""
    ms: float
    on_cpu_ms: float | None
    waiting_for_cpu_ms: float | None
    gc_ms: float = 0.0
    """How much of it Python's garbage collector ran (in any thread: it
    holds the GIL all along)."""
    stolen_ms: float | None = None
    """The machine's steal time over the stall (see :func:`machine_steal_ms`),
    in steps of 10 ms."""
    stacks: dict[str, int] = field(default_factory=dict)
    """Where the Tk thread was while it stalled, when the monitor samples it:
    per sample, ``[state]`` (``running``, or the system call it waited in:
    ``futex`` for a lock such as the GIL, ``poll`` for the X server) and its
    innermost Python frames (``file:line function``, innermost first), with
    how many samples saw each. Frames that end in the main loop mean Tcl
    itself was at work or waiting, with no Python callback running."""

    @property
    def blocked_ms(self) -> float | None:
        if self.on_cpu_ms is None or self.waiting_for_cpu_ms is None:
            return None
        return max(0.0, self.ms - self.on_cpu_ms - self.waiting_for_cpu_ms)

    def as_dict(self) -> dict[str, object]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        report: dict[str, object] = {
            "at_s": round(self.at_s, 2),
            "ms": r(self.ms),
            "on_cpu_ms": r(self.on_cpu_ms),
            "waiting_for_cpu_ms": r(self.waiting_for_cpu_ms),
            "blocked_ms": r(self.blocked_ms),
            "gc_ms": r(self.gc_ms),
            "stolen_ms": r(self.stolen_ms),
        }
        if self.stacks:
            report["stacks"] = self.stacks
        return report


def shared_ms(stall: Stall, others: Iterable[tuple[float, float]]) -> float:
    """How much of ``stall`` the ``others`` covered: ``(ended, ms)`` stalls on
    the same clock, such as those of a nearly idle process watching the same
    machine (``bench/sched_probe.py``). A stall the whole machine shared,
    its CPUs taken away from every process at once, was not the app's doing.
    """
    start = stall.ended - stall.ms / 1000
    covered = 0.0
    for ended, ms in others:
        covered += max(0.0, min(stall.ended, ended) - max(start, ended - ms / 1000))
    return min(stall.ms, covered * 1000)


class StallMonitor:
    """Measures the gaps between ticks scheduled every ``interval_ms`` (a
    :class:`Ticker`); a gap beyond the interval is time the Tk loop could not
    run.

    Call :meth:`start`, run the work, then read :attr:`worst_ms` (the longest
    stall, beyond the interval) and :attr:`ticks`; :meth:`reset` starts over.
    Each stall longer than ``explain_ms`` is kept in :attr:`stalls` with where
    its time went (see :class:`Stall`). With ``sample_every_ms``, a watchdog
    thread also samples the Tk thread's stack that often while a tick is
    overdue, and each kept stall lists the stacks it saw (the way a browser's
    hang watcher reports a hung main thread).
    """

    def __init__(
        self,
        widget: tk.Misc,
        interval_ms: int = 5,
        explain_ms: float = 25.0,
        sample_every_ms: float | None = None,
    ) -> None:
        self.interval_ms = interval_ms
        self.worst_ms = 0.0
        self.ticks = 0
        self.stalls_over_50ms = 0
        self.gaps_ms: list[float] = []
        """Every stall (gap beyond the interval), in order."""
        self.explain_ms = explain_ms
        self.stalls: list[Stall] = []
        self._last: float | None = None
        self._last_sched: tuple[int, int] | None = None
        self._last_steal: float | None = None
        self._started = 0.0
        self._ticker = Ticker(widget, interval_ms, self._tick)
        self.sample_every_ms = sample_every_ms
        self._samples: list[tuple[float, str]] = []
        self._watchdog: threading.Thread | None = None
        self._stopped = threading.Event()
        self._collections: list[tuple[float, float]] = []
        self._collecting_since: float | None = None

    def start(self) -> None:
        self._last = self._started = time.perf_counter()
        self._last_sched = thread_schedstat()
        self._last_steal = machine_steal_ms()
        self._ticker.start()
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        if self.sample_every_ms is not None and self._watchdog is None:
            self._stopped.clear()
            self._watchdog = threading.Thread(
                target=self._watch,
                args=(threading.get_ident(), threading.get_native_id()),
                name="quicmeet-stall-watchdog",
                daemon=True,
            )
            self._watchdog.start()

    def stop(self) -> None:
        self._ticker.stop()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._watchdog is not None:
            self._stopped.set()
            self._watchdog.join()
            self._watchdog = None

    def _watch(self, tk_thread: int, tk_native_id: int) -> None:
        """The watchdog (its own thread): while a tick is overdue by a fifth
        of ``explain_ms``, note where the Tk thread is: its Python stack, and
        whether it is on a CPU or which system call it waits in."""
        assert self.sample_every_ms is not None
        every_s = self.sample_every_ms / 1000
        overdue_s = (self.interval_ms + self.explain_ms / 5) / 1000
        state = Path(f"/proc/self/task/{tk_native_id}/syscall")
        names = _SYSCALLS.get(os.uname().machine, {})
        while not self._stopped.wait(every_s):
            last = self._last
            now = time.perf_counter()
            if last is None or now - last < overdue_s:
                continue
            doing = _syscall(state, names)
            frame = sys._current_frames().get(tk_thread)
            if frame is not None:
                self._samples.append((now, f"[{doing}] {_where(frame)}"))

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """Note when each collection ran (any thread, the GIL held)."""
        now = time.perf_counter()
        if phase == "start":
            self._collecting_since = now
        elif self._collecting_since is not None:
            self._collections.append((self._collecting_since, now))
            self._collecting_since = None

    def reset(self) -> None:
        self.worst_ms = 0.0
        self.ticks = 0
        self.stalls_over_50ms = 0
        self.gaps_ms = []
        self.stalls = []
        self._last = self._started = time.perf_counter()
        self._last_sched = thread_schedstat()
        self._last_steal = machine_steal_ms()

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the stalls (0 before any tick)."""
        return percentile(self.gaps_ms, q) or 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        sched = thread_schedstat()
        steal = machine_steal_ms()
        if self._last is not None:
            stall_ms = (now - self._last) * 1000.0 - self.interval_ms
            self.worst_ms = max(self.worst_ms, stall_ms)
            self.gaps_ms.append(stall_ms)
            if stall_ms > 50.0:
                self.stalls_over_50ms += 1
            if stall_ms > self.explain_ms:
                stolen = (
                    None
                    if steal is None or self._last_steal is None
                    else steal - self._last_steal
                )
                self.stalls.append(self._explain(now, stall_ms, sched, stolen))
        if self._samples:
            self._samples = []
        if self._collections:
            self._collections = []
        self.ticks += 1
        self._last, self._last_sched, self._last_steal = now, sched, steal

    def _explain(
        self,
        now: float,
        stall_ms: float,
        sched: tuple[int, int] | None,
        stolen_ms: float | None,
    ) -> Stall:
        on_cpu = waiting = None
        if sched is not None and self._last_sched is not None:
            # Over the whole gap (interval included): the interval is idle.
            on_cpu = (sched[0] - self._last_sched[0]) / 1e6
            waiting = (sched[1] - self._last_sched[1]) / 1e6
        assert self._last is not None
        seen = Counter(where for at, where in self._samples if at >= self._last)
        collected = sum(
            min(now, end) - max(self._last, begun)
            for begun, end in self._collections
            if end > self._last
        )
        return Stall(
            now,
            now - self._started,
            stall_ms,
            on_cpu,
            waiting,
            gc_ms=min(stall_ms, collected * 1000.0),
            stolen_ms=stolen_ms,
            stacks=dict(seen),
        )


_SYSCALLS = {
    "x86_64": {0: "read", 1: "write", 7: "poll", 20: "writev", 23: "select",
               46: "sendmsg", 47: "recvmsg", 202: "futex", 270: "pselect6",
               271: "ppoll"},
    "aarch64": {63: "read", 64: "write", 66: "writev", 72: "pselect6",
                73: "ppoll", 98: "futex", 211: "sendmsg", 212: "recvmsg"},
}  # fmt: skip
"""The system calls a Tk thread waits in, by number: futex is a lock (the
GIL, or Tcl waiting for its next timer), the others talk to the X server."""


def _syscall(state: Path, names: dict[int, str]) -> str:
    """What the thread whose ``/proc/.../syscall`` is ``state`` is doing:
    ``running``, the name (from ``names``, else the number) of the system
    call it waits in, or ``?`` where Linux does not say."""
    try:
        first = state.read_text().split(maxsplit=1)[0]
    except (OSError, IndexError):
        return "?"
    if not first.lstrip("-").isdigit():
        return first
    number = int(first)
    return names.get(number, f"syscall {number}")


def _where(frame: FrameType | None, depth: int = 4) -> str:
    """The innermost ``depth`` Python frames from ``frame`` outwards, as
    ``file:line function`` joined by `` < ``, innermost first."""
    parts: list[str] = []
    while frame is not None and len(parts) < depth:
        code = frame.f_code
        parts.append(f"{Path(code.co_filename).name}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return " < ".join(parts)
