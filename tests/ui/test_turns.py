"""Work cut into pieces on the Tk thread: one piece that did something per
turn of the loop, timers served in between."""

from __future__ import annotations

import _tkinter
import tkinter as tk
from collections.abc import Callable

from client.ui.views.turns import TurnByTurn


def piece(log: list[str], name: str, worked: bool) -> Callable[[], bool]:
    def run() -> bool:
        log.append(name)
        return worked

    return run


def turns(root: tk.Tk) -> None:
    """Run turns of the Tk loop until nothing is left to do (without waiting:
    a turn runs either the events that came, the timers due, or one pass of
    the idle callbacks)."""
    for _ in range(1000):
        if not root.tk.dooneevent(_tkinter.ALL_EVENTS | _tkinter.DONT_WAIT):
            return
    raise AssertionError("the Tk loop never ran out of work")


def test_one_piece_that_worked_per_turn_and_a_due_timer_goes_first(
    display: str,
) -> None:
    root = tk.Tk()
    try:
        log: list[str] = []
        spread = TurnByTurn(root)

        def first() -> bool:
            root.after(0, lambda: log.append("timer"))
            log.append("b")
            return True

        spread.run(
            [
                piece(log, "a", False),
                first,
                piece(log, "c", True),
                piece(log, "d", False),
                piece(log, "e", True),
            ]
        )
        assert log == ["a", "b"]
        turns(root)
        assert log == ["a", "b", "timer", "c", "d", "e"]
    finally:
        root.destroy()


def test_a_new_run_replaces_the_pieces_waiting_and_cancel_drops_them(
    display: str,
) -> None:
    root = tk.Tk()
    try:
        log: list[str] = []
        spread = TurnByTurn(root)
        spread.run([piece(log, "old 1", True), piece(log, "old 2", True)])
        spread.run([piece(log, "new 1", True), piece(log, "new 2", True)])
        turns(root)
        assert log == ["old 1", "new 1", "new 2"]
        spread.run([piece(log, "gone 1", True), piece(log, "gone 2", True)])
        spread.cancel()
        turns(root)
        assert log == ["old 1", "new 1", "new 2", "gone 1"]
        assert root.tk.call("after", "info") == ""
    finally:
        root.destroy()
