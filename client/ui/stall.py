"""How long the Tk event loop was blocked: the responsiveness the user feels."""

from __future__ import annotations

import time
import tkinter as tk

from ..media.receiver import percentile

__all__ = ["StallMonitor"]


class StallMonitor:
    """Measures the gaps between ticks scheduled every ``interval_ms`` with
    ``after()``; a gap beyond the interval is time the Tk loop could not run.

    Call :meth:`start`, run the work, then read :attr:`worst_ms` (the longest
    stall, beyond the interval) and :attr:`ticks`; :meth:`reset` starts over.
    """

    def __init__(self, widget: tk.Misc, interval_ms: int = 5) -> None:
        self.widget = widget
        self.interval_ms = interval_ms
        self.worst_ms = 0.0
        self.ticks = 0
        self.stalls_over_50ms = 0
        self.gaps_ms: list[float] = []
        """Every stall (gap beyond the interval), in order."""
        self._last: float | None = None
        self._after_id: str | None = None

    def start(self) -> None:
        self._last = time.perf_counter()
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
        self._last = time.perf_counter()

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the stalls (0 before any tick)."""
        return percentile(self.gaps_ms, q) or 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            stall_ms = (now - self._last) * 1000.0 - self.interval_ms
            self.worst_ms = max(self.worst_ms, stall_ms)
            self.gaps_ms.append(stall_ms)
            if stall_ms > 50.0:
                self.stalls_over_50ms += 1
        self.ticks += 1
        self._last = now
        self._after_id = self.widget.after(self.interval_ms, self._tick)
