"""Watches the event loop for stalls: the worst time a callback kept it busy.

A task sleeps for ``interval`` seconds over and over; whatever it oversleeps is
time the loop could not run anything else. The worst overshoot since start (and a
warning in the log past ``warn_after``) tells an operator, and the benchmarks,
whether blocking work crept onto the loop.

Part of a stall may be the machine's: a loop thread that is ready to run but
waits for a CPU (other processes hold both cores) stalls without any fault of
its own code. On Linux the kernel counts that wait per thread
(``/proc/thread-self/schedstat``), so each stall is also reported less the
wait over its tick (which may begin before the stall, so the machine's part
is if anything overstated): ``worst_own_stall_ms`` is what the server's own
work (its callbacks, or its threads holding the GIL) cost the loop.

One cause of stalls is named apart: Python's cyclic garbage collector, whose
full (oldest-generation) collection walks every object the process keeps, so
its pause grows with the connections a node holds. :class:`CollectorWatch`
counts the collections and their pauses.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from typing import Any

__all__ = ["CollectorWatch", "LoopMonitor", "cpu_wait", "own_stall"]

log = logging.getLogger("quicmeet.monitor")

_SCHEDSTAT = "/proc/thread-self/schedstat"


def own_stall(stall: float, waited_for_cpu: float) -> float:
    """The part of a ``stall`` (seconds) not spent waiting for a CPU."""
    return max(0.0, stall - waited_for_cpu)


class _Schedstat:
    """One thread's own schedstat file, opened once.

    ``/proc/thread-self`` names the thread that opens it, so each thread keeps
    its own descriptor and re-reads it from offset 0 (the kernel writes the
    figures afresh at each read). Opening and closing the file cost about ten
    times the read (19 µs against 2 here), and the SFU reads it up to a
    thousand times a second. The descriptor is closed when its thread ends
    (the thread's locals go with it), and opened afresh in a forked child,
    whose threads are not the parent's.
    """

    def __init__(self) -> None:
        self.fd: int | None = None
        self.pid = 0
        self.failed = False

    def read(self) -> float | None:
        pid = os.getpid()
        if self.pid != pid:
            self.close()
            self.pid = pid
            self.failed = False
        if self.failed:
            return None
        try:
            if self.fd is None:
                self.fd = os.open(_SCHEDSTAT, os.O_RDONLY | os.O_CLOEXEC)
            return int(os.pread(self.fd, 128, 0).split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            # No schedstat in this kernel: not asked again.
            self.failed = True
            self.close()
            return None

    def close(self) -> None:
        if self.fd is not None:
            # In a forked child the descriptor is a copy: closing it leaves
            # the parent's open.
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.close()


_per_thread = threading.local()


def cpu_wait() -> float | None:
    """Seconds the calling thread has waited, runnable, for a CPU (since it
    started); None where the kernel does not say."""
    try:
        own = _per_thread.schedstat
    except AttributeError:
        own = _per_thread.schedstat = _Schedstat()
    return own.read()


class LoopMonitor:
    """Measures event-loop stalls in milliseconds."""

    def __init__(self, interval: float = 0.02, warn_after: float = 0.1) -> None:
        self.interval = interval
        self.warn_after = warn_after
        self.worst_stall_ms = 0.0
        self.worst_own_stall_ms: float | None = 0.0 if cpu_wait() is not None else None
        """The worst stall less the loop thread's wait for a CPU during it
        (None where the kernel does not count that wait)."""
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def reset(self) -> None:
        """Forget the worst stall so far (to measure one phase of a run)."""
        self.worst_stall_ms = 0.0
        if self.worst_own_stall_ms is not None:
            self.worst_own_stall_ms = 0.0
        self.samples = 0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            waited_before = cpu_wait()
            await asyncio.sleep(self.interval)
            stall = loop.time() - before - self.interval
            waited_after = cpu_wait()
            self.samples += 1
            if stall * 1000 > self.worst_stall_ms:
                self.worst_stall_ms = stall * 1000
            waited = 0.0
            if waited_before is not None and waited_after is not None:
                waited = waited_after - waited_before
                own = own_stall(stall, waited) * 1000
                if own > (self.worst_own_stall_ms or 0.0):
                    self.worst_own_stall_ms = own
            if stall > self.warn_after:
                log.warning(
                    "event loop stalled for %.0f ms (%.0f ms of it waiting for a CPU)",
                    stall * 1000,
                    min(waited, stall) * 1000,
                )

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class CollectorWatch:
    """Times the garbage collector's passes (through ``gc.callbacks``, which
    run in the thread that collects, before and after each pass). Full
    collections (generation 2) are the long ones: every tracked object of
    the process is walked, whatever generation it is in."""

    def __init__(self) -> None:
        self.full_collections = 0
        self.worst_full_ms = 0.0
        self.full_ms_total = 0.0
        self.worst_young_ms = 0.0
        """The worst pause of a young (generation 0 or 1) collection."""
        self.worst_full_cpu_ms = 0.0
        """The CPU time of the collecting thread in the worst full pass: well
        under its pause, the process waited for a core."""
        self.worst_full_collected = 0
        """Objects the worst full pass freed (cyclic garbage)."""
        self._started_at: float | None = None
        self._started_cpu = 0.0
        self._installed = False

    def start(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._on_collection)
            self._installed = True

    def stop(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._on_collection)
            self._installed = False

    def reset(self) -> None:
        """Forget the worst pauses so far (to measure one phase of a run)."""
        self.worst_full_ms = self.worst_young_ms = self.worst_full_cpu_ms = 0.0
        self.worst_full_collected = 0

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.perf_counter()
            self._started_cpu = time.thread_time()
            return
        if self._started_at is None:
            return
        pause_ms = (time.perf_counter() - self._started_at) * 1000
        self._started_at = None
        if info.get("generation") == 2:
            self.full_collections += 1
            self.full_ms_total += pause_ms
            if pause_ms > self.worst_full_ms:
                self.worst_full_ms = pause_ms
                self.worst_full_cpu_ms = (time.thread_time() - self._started_cpu) * 1000
                self.worst_full_collected = int(info.get("collected", 0))
        else:
            self.worst_young_ms = max(self.worst_young_ms, pause_ms)

    def snapshot(self) -> dict[str, float | int]:
        return {
            "gc_full_collections": self.full_collections,
            "gc_worst_full_pause_ms": round(self.worst_full_ms, 3),
            "gc_worst_full_pause_cpu_ms": round(self.worst_full_cpu_ms, 3),
            "gc_worst_full_collected": self.worst_full_collected,
            "gc_full_pause_ms_total": round(self.full_ms_total, 3),
            "gc_worst_young_pause_ms": round(self.worst_young_ms, 3),
        }
