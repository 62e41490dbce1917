"""Text cut to the pixels it may take, for canvases (which do not clip)."""

from __future__ import annotations

import tkinter.font as tkfont

__all__ = ["fit_text"]


def fit_text(text: str, font: tkfont.Font, room: int) -> str:
    """``text`` cut with an ellipsis to at most ``room`` pixels in ``font``."""
    if font.measure(text) <= room:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if font.measure(text[:middle].rstrip() + "…") <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"
