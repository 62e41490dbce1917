"""Notices ("toasts") stacked in the bottom-right corner of the main window.

They live inside the window (placed over the current view), so they survive a
switch from the main view back to the login view, which is exactly when the
"signed in elsewhere" notice must be read. A newer notice with the same key
(the same chat, say) replaces the older one instead of piling up.
"""

from __future__ import annotations

import functools
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass

import ttkbootstrap as ttk

__all__ = ["Toasts"]

MAX_SHOWN = 3
DEFAULT_DURATION_MS = 6000


@dataclass
class _Toast:
    frame: ttk.Frame
    title: str
    text: str
    key: str | None
    on_click: Callable[[], object] | None
    timer: str | None = None


class Toasts:
    """Shows notices over ``root``."""

    def __init__(self, root: tk.Misc) -> None:
        self.root = root
        self._toasts: list[_Toast] = []

    def show(
        self,
        title: str,
        text: str,
        level: str = "info",
        *,
        key: str | None = None,
        on_click: Callable[[], object] | None = None,
        duration_ms: int = DEFAULT_DURATION_MS,
    ) -> None:
        """Show a notice; clicking it dismisses it and calls ``on_click``."""
        for toast in list(self._toasts):
            if key is not None and toast.key == key:
                self._dismiss(toast)
        toast = self._create(title, text, level, key, on_click)
        toast.timer = self.root.after(duration_ms, self._dismiss, toast)
        self._toasts.append(toast)
        while len(self._toasts) > MAX_SHOWN:
            self._dismiss(self._toasts[0])
        self._layout()

    def _create(
        self,
        title: str,
        text: str,
        level: str,
        key: str | None,
        on_click: Callable[[], object] | None,
    ) -> _Toast:
        frame = ttk.Frame(self.root, padding=(14, 10), bootstyle=f"@{level}")
        title_label = ttk.Label(
            frame, text=title, font="-weight bold", bootstyle=f"@{level}"
        )
        title_label.pack(anchor="w")
        text_label = ttk.Label(
            frame, text=text, wraplength=300, justify="left", bootstyle=f"@{level}"
        )
        text_label.pack(anchor="w")
        toast = _Toast(frame, title, text, key, on_click)
        for widget in (frame, title_label, text_label):
            widget.bind("<Button-1>", functools.partial(self.on_click, toast))
        return toast

    def on_click(self, toast: _Toast, _event: object = None) -> None:
        self._dismiss(toast)
        if toast.on_click is not None:
            toast.on_click()

    def _dismiss(self, toast: _Toast) -> None:
        if toast not in self._toasts:
            return
        self._toasts.remove(toast)
        if toast.timer is not None:
            self.root.after_cancel(toast.timer)
        toast.frame.destroy()
        self._layout()

    def _layout(self) -> None:
        y = -12
        for toast in reversed(self._toasts):
            toast.frame.place(relx=1.0, rely=1.0, x=-12, y=y, anchor="se")
            toast.frame.lift()
            toast.frame.update_idletasks()
            y -= toast.frame.winfo_reqheight() + 8

    def shown(self) -> list[tuple[str, str]]:
        """The (title, text) of every notice on screen, oldest first."""
        return [(t.title, t.text) for t in self._toasts]

    def clear(self) -> None:
        for toast in list(self._toasts):
            self._dismiss(toast)
