"""A callback the Tk loop runs every few milliseconds, at the cost of one
crossing from Python into Tcl per tick.

``widget.after(ms, func)`` registers a new Tcl command for ``func`` on every
call and deletes it once it ran: three calls into Tcl per tick. Each of them
gives up the GIL and must take it back, and while another thread computes
in Python (the loop thread during a large upload) taking it back can wait a
whole switch interval. At 100 ticks a second the UI tick and the stall
monitor made 300 of those crossings for the timers alone.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable

__all__ = ["Ticker"]


class Ticker:
    """Calls ``callback`` on the Tk thread ``interval_ms`` after the previous
    call began, from :meth:`start` until :meth:`stop`, through one Tcl
    command registered for the ticker's whole life. An exception in
    ``callback`` is reported like any Tk callback's and the ticks go on."""

    def __init__(
        self, widget: tk.Misc, interval_ms: int, callback: Callable[[], None]
    ) -> None:
        self.widget = widget
        self.interval_ms = interval_ms
        self.callback = callback
        self._command: str | None = None
        self._after_id: str | None = None

    @property
    def running(self) -> bool:
        return self._after_id is not None

    def start(self) -> None:
        if self._command is None:
            self._command = self.widget.register(self._tick)
        if self._after_id is None:
            self._schedule()

    def stop(self) -> None:
        """Cancel the next tick and unregister the command (idempotent)."""
        if self._after_id is not None:
            self.widget.tk.call("after", "cancel", self._after_id)
            self._after_id = None
        if self._command is not None:
            self.widget.deletecommand(self._command)
            self._command = None

    def _schedule(self) -> None:
        self._after_id = self.widget.tk.call("after", self.interval_ms, self._command)

    def _tick(self) -> None:
        # Scheduled first, so that a failing callback does not end the ticks.
        self._schedule()
        self.callback()
