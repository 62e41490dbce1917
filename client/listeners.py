"""Callbacks that follow a stream of events: rooms' and audio's listeners.

A listener that raises is logged and the rest are still told; removing one
twice does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Listeners"]

E = TypeVar("E")


class Listeners(Generic[E]):
    """The listeners of one event source; ``what`` names it in the log."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self._listeners: list[Callable[[E], None]] = []

    def add(self, listener: Callable[[E], None]) -> Callable[[], None]:
        """Call ``listener`` with every event; returns a function that stops
        it (calling that again does nothing)."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    def notify(self, event: E) -> None:
        """Tell every listener of ``event``, in the order they were added."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                self._log.exception(
                    "%s listener failed on %s", self._what, type(event).__name__
                )
