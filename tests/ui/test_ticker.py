"""The Tk ticker: one Tcl command for the UI tick's whole life."""

from __future__ import annotations

import time
import tkinter as tk

from client.ui.ticker import Ticker


def test_a_ticker_ticks_through_one_tcl_command_until_stopped(display: str) -> None:
    root = tk.Tk()
    try:
        # Only the message: a kept exception would hold the root in a cycle
        # (its traceback), which the collector may then free on another thread.
        reported: list[str] = []
        root.report_callback_exception = lambda *args: reported.append(str(args[1]))
        calls: list[float] = []

        def tick() -> None:
            calls.append(time.monotonic())
            if len(calls) == 3:
                raise ValueError("a failing tick")

        commands = set(root.tk.call("info", "commands"))
        ticker = Ticker(root, 10, tick)
        ticker.start()
        ticker.start()  # a second start changes nothing
        (added,) = set(root.tk.call("info", "commands")) - commands
        run_tk(root, 0.3)
        # Every 10 ms, past the failure, through the same command.
        assert 10 <= len(calls) <= 31, len(calls)
        assert reported == ["a failing tick"]
        assert set(root.tk.call("info", "commands")) - commands == {added}
        assert ticker.running
        ticker.stop()
        ticker.stop()
        assert not ticker.running
        assert set(root.tk.call("info", "commands")) == commands
        stopped_at = len(calls)
        run_tk(root, 0.05)
        assert len(calls) == stopped_at
    finally:
        root.destroy()


def run_tk(root: tk.Tk, seconds: float) -> None:
    """Let the Tk loop run for ``seconds``, as the app's main loop would."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        root.update()
        time.sleep(0.002)
