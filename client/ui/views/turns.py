"""Work on the Tk thread cut into pieces, one piece per turn of the Tk loop.

Four tiles pasted in one tick held the loop for four pastes (each one a
picture sent to the X server); one paste per turn lets timers and input in
between, so the loop is never held longer than one piece.
"""

from __future__ import annotations

import tkinter as tk
from collections import deque
from collections.abc import Callable, Iterable

__all__ = ["TurnByTurn"]


class TurnByTurn:
    """Runs pieces of work on the Tk thread, one that did something per turn.

    :meth:`run` calls the pieces in order at once until one returns True (it
    did some work); the rest wait for the loop's next idle turn, and so on.
    A piece that returns False (nothing to do) costs no turn. A new
    :meth:`run` replaces the pieces still waiting; :meth:`cancel` drops them
    (call it before the widget is destroyed)."""

    def __init__(self, widget: tk.Misc) -> None:
        self._widget = widget
        self._pieces: deque[Callable[[], bool]] = deque()
        self._after: str | None = None

    def run(self, pieces: Iterable[Callable[[], bool]]) -> None:
        self.cancel()
        self._pieces.extend(pieces)
        self._next()

    def cancel(self) -> None:
        self._pieces.clear()
        if self._after is not None:
            self._widget.after_cancel(self._after)
            self._after = None

    def _next(self) -> None:
        self._after = None
        while self._pieces:
            if self._pieces.popleft()():
                break
        if self._pieces:
            self._after = self._widget.after_idle(self._next)
