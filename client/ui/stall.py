"""How long the Tk event loop was blocked: the responsiveness the user feels."""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..media.receiver import percentile

__all__ = ["Stall", "StallMonitor", "shared_ms", "thread_schedstat"]

SCHEDSTAT = Path("/proc/thread-self/schedstat")


def thread_schedstat() -> tuple[int, int] | None:
    """The calling thread's time on a CPU and time runnable but waiting for
    one, in nanoseconds (Linux ``schedstat``); ``None`` where unavailable."""
    try:
        on_cpu, waiting, _ = SCHEDSTAT.read_text().split()
    except (OSError, ValueError):
        return None
    return int(on_cpu), int(waiting)


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

    @property
    def blocked_ms(self) -> float | None:
        if self.on_cpu_ms is None or self.waiting_for_cpu_ms is None:
            return None
        return max(0.0, self.ms - self.on_cpu_ms - self.waiting_for_cpu_ms)

    def as_dict(self) -> dict[str, float | None]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        return {
            "at_s": round(self.at_s, 2),
            "ms": r(self.ms),
            "on_cpu_ms": r(self.on_cpu_ms),
            "waiting_for_cpu_ms": r(self.waiting_for_cpu_ms),
            "blocked_ms": r(self.blocked_ms),
        }


def shared_ms(stall: Stall, others: Iterable[tuple[float, float]]) -> float:
    """How much of ``stall`` the ``others`` covered: ``(ended, ms)`` stalls on
    the same clock, such as those of a nearly idle process watching the same
    machine (``tests/ui/sched_probe.py``). A stall the whole machine shared,
    its CPUs taken away from every process at once, was not the app's doing.
    """
    start = stall.ended - stall.ms / 1000
    covered = 0.0
    for ended, ms in others:
        covered += max(0.0, min(stall.ended, ended) - max(start, ended - ms / 1000))
    return min(stall.ms, covered * 1000)


class StallMonitor:
    """Measures the gaps between ticks scheduled every ``interval_ms`` with
    ``after()``; a gap beyond the interval is time the Tk loop could not run.

    Call :meth:`start`, run the work, then read :attr:`worst_ms` (the longest
    stall, beyond the interval) and :attr:`ticks`; :meth:`reset` starts over.
    Each stall longer than ``explain_ms`` is kept in :attr:`stalls` with where
    its time went (see :class:`Stall`).
    """

    def __init__(
        self, widget: tk.Misc, interval_ms: int = 5, explain_ms: float = 25.0
    ) -> None:
        self.widget = widget
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
        self._started = 0.0
        self._after_id: str | None = None

    def start(self) -> None:
        self._last = self._started = time.perf_counter()
        self._last_sched = thread_schedstat()
        self._after_id = self.widget.after(self.interval_ms, self._tick)

    def stop(self) -> None:
        if self._after_id is not None:
            self.widget.after_cancel(self._after_id)
            self._after_id = None

    def reset(self) -> None:
        self.worst_ms = 0.0
        self.ticks = 0
        self.stalls_over_50ms = 0
        self.gaps_ms = []
        self.stalls = []
        self._last = self._started = time.perf_counter()
        self._last_sched = thread_schedstat()

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the stalls (0 before any tick)."""
        return percentile(self.gaps_ms, q) or 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        sched = thread_schedstat()
        if self._last is not None:
            stall_ms = (now - self._last) * 1000.0 - self.interval_ms
            self.worst_ms = max(self.worst_ms, stall_ms)
            self.gaps_ms.append(stall_ms)
            if stall_ms > 50.0:
                self.stalls_over_50ms += 1
            if stall_ms > self.explain_ms:
                self.stalls.append(self._explain(now, stall_ms, sched))
        self.ticks += 1
        self._last, self._last_sched = now, sched
        self._after_id = self.widget.after(self.interval_ms, self._tick)

    def _explain(
        self, now: float, stall_ms: float, sched: tuple[int, int] | None
    ) -> Stall:
        on_cpu = waiting = None
        if sched is not None and self._last_sched is not None:
            # Over the whole gap (interval included): the interval is idle.
            on_cpu = (sched[0] - self._last_sched[0]) / 1e6
            waiting = (sched[1] - self._last_sched[1]) / 1e6
        return Stall(now, now - self._started, stall_ms, on_cpu, waiting)
