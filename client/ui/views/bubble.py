"""One chat message drawn as a rounded bubble: its text wrapped to a width,
and a footer with the time and, for one's own messages, the delivery tick."""

from __future__ import annotations

import tkinter as tk
from dataclasses import dataclass

from .theme import Palette

__all__ = ["Bubble", "BubbleLook"]

PAD_X = 10
PAD_Y = 6
RADIUS = 12
BODY_FONT = "-size 10"
FOOTER_FONT = "-size 8"


@dataclass(frozen=True, slots=True)
class BubbleLook:
    """How a bubble is drawn: its fill, text colour, footer colour and the
    colour and style name of the tick (``tick``, ``tick_read``, ``tick_failed``)."""

    fill: str
    fg: str
    muted: str
    tick_color: str
    tick_style: str

    @classmethod
    def of(cls, colors: Palette, outgoing: bool, state: str, found: bool) -> BubbleLook:
        """The look of a message in ``state`` (``found``: picked in a search)."""
        fill = colors.bubble_out if outgoing else colors.bubble_in
        if found:
            fill = colors.found
        style = {"read": "tick_read", "failed": "tick_failed"}.get(state, "tick")
        tick_color = {
            "tick_read": colors.tick_read,
            "tick_failed": colors.danger,
        }.get(style, colors.muted)
        return cls(fill, colors.fg, colors.muted, tick_color, style)


def _rounded(x0: float, y0: float, x1: float, y1: float, r: float) -> list[float]:
    """The points of a rounded rectangle for a smoothed polygon."""
    return [
        x0 + r, y0, x1 - r, y0, x1, y0, x1, y0 + r,
        x1, y1 - r, x1, y1, x1 - r, y1, x0 + r, y1,
        x0, y1, x0, y1 - r, x0, y0 + r, x0, y0,
    ]  # fmt: skip


class Bubble(tk.Canvas):
    """A message bubble sized to its text; :meth:`draw` lays it out again
    (after a resize, a new tick or a new theme)."""

    def __init__(self, master: tk.Misc, text: str, background: str) -> None:
        super().__init__(
            master, highlightthickness=0, borderwidth=0, background=background
        )
        self.message_text = text
        self._shape = self.create_polygon(0, 0, 0, 0, smooth=True, tags=("shape",))
        self._body = self.create_text(
            PAD_X, PAD_Y, text=text, anchor="nw", font=BODY_FONT, tags=("body",)
        )
        self._footer = self.create_text(
            0, 0, anchor="ne", font=FOOTER_FONT, tags=("footer",)
        )
        self._tick = self.create_text(0, 0, anchor="ne", font=FOOTER_FONT)

    def draw(self, look: BubbleLook, footer: str, tick: str, max_width: int) -> None:
        """Wrap the text to ``max_width`` pixels (the whole bubble) and paint."""
        self.configure(background=str(self.master.cget("background")))
        self.itemconfigure(self._body, width=max(40, max_width - 2 * PAD_X))
        self.itemconfigure(self._body, fill=look.fg)
        self.itemconfigure(self._footer, text=footer, fill=look.muted)
        self.itemconfigure(
            self._tick, text=tick, fill=look.tick_color, tags=("tick", look.tick_style)
        )
        bx0, by0, bx1, by1 = self.bbox(self._body)
        tick_w = self._width(self._tick) if tick else 0
        footer_w = self._width(self._footer) + (tick_w + 4 if tick else 0)
        width = max(bx1 - bx0, footer_w) + 2 * PAD_X
        footer_y = by1 + 1
        right = width - PAD_X
        self.coords(self._tick, right, footer_y)
        self.coords(self._footer, right - (tick_w + 4 if tick else 0), footer_y)
        height = footer_y + self._height(self._footer) + PAD_Y
        self.coords(self._shape, *_rounded(0, 0, width - 1, height - 1, RADIUS))
        self.itemconfigure(self._shape, fill=look.fill, outline=look.fill)
        self.configure(width=width, height=height)

    def _width(self, item: int) -> int:
        x0, _, x1, _ = self.bbox(item)
        return int(x1 - x0)

    def _height(self, item: int) -> int:
        _, y0, _, y1 = self.bbox(item)
        return int(y1 - y0)

    def tick(self) -> tuple[str, str]:
        """(text, style) of the tick as drawn; empty for none."""
        text = str(self.itemcget(self._tick, "text"))
        if not text:
            return "", ""
        tags = self.gettags(self._tick)
        style = next((t for t in tags if t != "tick"), "tick")
        return text, style

    def fill(self) -> str:
        """The bubble's colour as drawn."""
        return str(self.itemcget(self._shape, "fill"))
