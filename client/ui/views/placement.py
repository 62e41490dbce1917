"""Keeping windows on the screen: wherever a window is asked to open (beside
the main window, at a remembered spot), it ends up fully visible."""

from __future__ import annotations

import re
import tkinter as tk

__all__ = ["MARGIN", "OnScreen", "clamp_to_screen"]

MARGIN = 8
"""Pixels kept between a moved window and the screen's edge."""


def clamp_to_screen(
    x: int, y: int, width: int, height: int, screen: tuple[int, int]
) -> tuple[int, int]:
    """The top-left corner closest to (``x``, ``y``) at which a window of
    ``width`` x ``height`` pixels fits on a ``screen`` (width, height); a
    window larger than the screen keeps its top-left corner on it."""
    screen_w, screen_h = screen
    x = min(x, screen_w - width - MARGIN)
    y = min(y, screen_h - height - MARGIN)
    return max(0, x), max(0, y)


_GEOMETRY = re.compile(r"^(?:(\d+)x(\d+))?(?:([+-]-?\d+)([+-]-?\d+))?$")


class OnScreen:
    """Mixed into a window class before ``ttk.Toplevel``: a position given to
    :meth:`geometry` is moved so that the whole window is on the screen."""

    def geometry(self, new_geometry: str | None = None) -> str:
        window: tk.Wm = super()  # type: ignore[assignment]
        if new_geometry is None:
            return str(window.geometry())
        match = _GEOMETRY.match(new_geometry)
        if match is None or match.group(3) is None:
            return str(window.geometry(new_geometry))
        width_text, height_text, x_text, y_text = match.groups()
        me: tk.Toplevel = self  # type: ignore[assignment]
        if width_text is None:
            me.update_idletasks()
            width = max(me.winfo_width(), me.winfo_reqwidth())
            height = max(me.winfo_height(), me.winfo_reqheight())
        else:
            width, height = int(width_text), int(height_text)
        screen = (me.winfo_screenwidth(), me.winfo_screenheight())
        x, y = clamp_to_screen(int(x_text), int(y_text), width, height, screen)
        size = f"{width_text}x{height_text}" if width_text is not None else ""
        return str(window.geometry(f"{size}+{x}+{y}"))
