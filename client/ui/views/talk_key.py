"""Push to talk in the meeting window: while the space bar is held (and the
focus is not in a text field), the microphone is sent though the Mic button
is off. X11 repeats a held key as release-press pairs, so a release counts
only when no press follows within :data:`TALK_RELEASE_MS`."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable

import ttkbootstrap as ttk

__all__ = ["TALK_RELEASE_MS", "TalkKey"]

TALK_RELEASE_MS = 80


class TalkKey:
    """Binds the space bar of ``window``; ``on_talk(pressed)`` hears when
    talking starts and ends."""

    def __init__(self, window: tk.Toplevel, on_talk: Callable[[bool], object]) -> None:
        self._window = window
        self._on_talk = on_talk
        self.down = False
        self._release: str | None = None
        window.bind("<KeyPress-space>", self.on_press, add="+")
        window.bind("<KeyRelease-space>", self.on_release, add="+")

    def _typing(self) -> bool:
        focus = self._window.focus_get()
        return isinstance(focus, tk.Entry | tk.Text | ttk.Entry | ttk.Combobox)

    def on_press(self, _event: object = None) -> None:
        if self._release is not None:
            self._window.after_cancel(self._release)
            self._release = None
        if self.down or self._typing():
            return
        self.down = True
        self._on_talk(True)

    def on_release(self, _event: object = None) -> None:
        if self.down and self._release is None:
            self._release = self._window.after(TALK_RELEASE_MS, self._end)

    def _end(self) -> None:
        self._release = None
        self.down = False
        self._on_talk(False)

    def cancel(self) -> None:
        """The window closes: drop the pending release."""
        if self._release is not None:
            self._window.after_cancel(self._release)
            self._release = None
