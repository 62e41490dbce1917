"""What the desktop client changes in the Python process so that the Tk thread
stays responsive while other threads work hard, and undoes on close.

Measured with ``tests/ui/test_responsiveness.py`` (a 1 GiB upload during a
4-person meeting): before these, the Tk loop stalled up to 140 ms.
"""

from __future__ import annotations

import gc
import sys
import tkinter as tk

__all__ = ["BACKGROUND_NICE", "TkThreadTuning"]

COLLECT_MS = 500
"""How often the Tk thread collects garbage (see :meth:`TkThreadTuning._collect`)."""
SWITCH_INTERVAL_S = 0.001
"""How long another thread may keep the GIL while the Tk thread waits for it.
Python's default, 5 ms, is paid on every Tcl-to-Python call while the loop
thread is busy (a large transfer): several per frame add up to stalls of 50 ms.
"""
BACKGROUND_NICE = 5
"""The loop thread, and the media threads it starts, yield the CPU to the Tk
thread: when a large transfer and a meeting fill both cores, what the user
touches still runs at once, and a video frame is skipped instead. (Schedstat
showed the Tk thread runnable but waiting for a core longer than it ran.)"""


class TkThreadTuning:
    """Sets the GIL switch interval and takes garbage collection over, on the
    Tk thread of ``root``; :meth:`close` restores both."""

    def __init__(self, root: tk.Misc) -> None:
        self.root = root
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        gc.collect()
        gc.freeze()
        self._collections = 0
        self._after_id: str | None = root.after(COLLECT_MS, self._collect)

    def _collect(self) -> None:
        """Collect garbage here, on the Tk thread, instead of automatically.

        A destroyed view can linger in a reference cycle; if another thread's
        allocation triggered the collection, tkinter would finalize its
        variables from that thread (and block it waiting for the Tk loop).
        Young objects are collected every tick, older ones now and then.
        Everything alive at startup (modules, classes: most of the heap) was
        frozen out of the collector, so a full collection scans only what
        came later and stays far below a frame's time; scanning it all took
        35-50 ms, a stall the user sees.
        """
        self._after_id = self.root.after(COLLECT_MS, self._collect)
        self._collections += 1
        generation = (
            2 if self._collections % 60 == 0 else 1 if self._collections % 8 == 0 else 0
        )
        gc.collect(generation)

    def cancel(self) -> None:
        """Stop collecting from the Tk loop (before the root is destroyed)."""
        if self._after_id is not None:
            self.root.after_cancel(self._after_id)
            self._after_id = None

    def close(self) -> None:
        """Give garbage collection back to Python (after the root is destroyed)."""
        self.cancel()
        gc.unfreeze()
        gc.collect()
        if self._gc_was_enabled:
            gc.enable()
        sys.setswitchinterval(self._switch_interval)
