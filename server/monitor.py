"""Watches the event loop for stalls: the worst time a callback kept it busy.

A task sleeps for ``interval`` seconds over and over; whatever it oversleeps is
time the loop could not run anything else. The worst overshoot since start (and a
warning in the log past ``warn_after``) tells an operator, and the benchmarks,
whether blocking work crept onto the loop.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["LoopMonitor"]

log = logging.getLogger("quicmeet.monitor")


class LoopMonitor:
    """Measures event-loop stalls in milliseconds."""

    def __init__(self, interval: float = 0.02, warn_after: float = 0.1) -> None:
        self.interval = interval
        self.warn_after = warn_after
        self.worst_stall_ms = 0.0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def reset(self) -> None:
        """Forget the worst stall so far (to measure one phase of a run)."""
        self.worst_stall_ms = 0.0
        self.samples = 0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            stall = loop.time() - before - self.interval
            self.samples += 1
            if stall * 1000 > self.worst_stall_ms:
                self.worst_stall_ms = stall * 1000
            if stall > self.warn_after:
                log.warning("event loop stalled for %.0f ms", stall * 1000)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
