"""What the desktop client changes in the Python process so that the Tk thread
stays responsive while other threads work hard, and undoes on close.

Measured with ``tests/ui/test_responsiveness.py`` (a 1 GiB upload during a
4-person meeting): before these, the Tk loop stalled up to 140 ms.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
import tkinter as tk

__all__ = ["BACKGROUND_NICE", "TK_SLICE_NS", "TkThreadTuning", "set_thread_slice"]

COLLECT_MS = 500
"""How often the Tk thread collects garbage (see :meth:`TkThreadTuning._collect`)."""
SWITCH_INTERVAL_S = 0.0001
"""How long another thread may keep the GIL while the Tk thread waits for it.
The Tk thread gives the GIL up at every call into Tcl and takes it back after,
several hundred times a second (every paste of a picture, every timer, every
callback); while the loop thread computes (QUIC during a large upload), each
take-back waited for the holder's interval. ``bench/ui.py --busy-threads 2``
with four 640x480 tiles at 30 fps, the phases side by side in one run: with
Python's default, 5 ms, the tiles showed 1-2 fps and the Tk loop stalled up
to 400 ms; with 1 ms, 16 fps and 100 ms; with 0.1 ms, 25-28 fps and 26-34 ms.
The threads that compute are interrupted more often for it, only while
another thread waits: the responsiveness test's 1 GiB upload kept its
10 MB/s.
"""
BACKGROUND_NICE = 5
"""The loop thread, and the media threads it starts, yield the CPU to the Tk
thread: when a large transfer and a meeting fill both cores, what the user
touches still runs at once, and a video frame is skipped instead. (Schedstat
showed the Tk thread runnable but waiting for a core longer than it ran.)"""


TK_SLICE_NS = 300_000
"""The time slice the Tk thread asks the Linux scheduler for (EEVDF, kernel
6.12 and later; the default is about 1.4 ms here). A thread with a shorter
slice gets an earlier deadline, so it runs sooner after it wakes, in shorter
turns: what an event loop that wakes for every frame and input needs.
Without it, schedstat showed the Tk thread runnable but waiting 15-30 ms for
a core while the app's own nice 5 threads ran, and a separate idle process
did not wait; with it, the responsiveness test had 0-2 stalls over 25 ms per
upload in four runs (0-12 in five without)."""

_SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}


class _SchedAttr(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
    ]


def set_thread_slice(slice_ns: int, tid: int | None = None) -> bool:
    """Ask for a custom time slice for thread ``tid`` (the calling one by
    default; 0 gives the default back), keeping its normal policy and nice;
    ``False`` where the system has no such thing (not Linux, an older kernel:
    it then has no effect)."""
    if sys.platform != "linux":
        return False
    number = _SYS_SCHED_SETATTR.get(os.uname().machine)
    if number is None:
        return False
    tid = threading.get_native_id() if tid is None else tid
    attr = _SchedAttr(
        size=ctypes.sizeof(_SchedAttr),
        sched_policy=os.SCHED_OTHER,
        sched_nice=os.getpriority(os.PRIO_PROCESS, tid),
        sched_runtime=slice_ns,
    )
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(number, tid, ctypes.byref(attr), 0) == 0


class TkThreadTuning:
    """Sets the GIL switch interval and the time slice of the Tk thread of
    ``root`` (the calling one) and takes garbage collection over there;
    :meth:`close`, on the same thread, restores all three."""

    def __init__(self, root: tk.Misc) -> None:
        self.root = root
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        set_thread_slice(TK_SLICE_NS)
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
        set_thread_slice(0)
