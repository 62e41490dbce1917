"""Colours of the current ttkbootstrap theme, for what draws itself (canvas,
text tags), and the list of themes the settings offer."""

from __future__ import annotations

import tkinter as tk
from dataclasses import dataclass

import ttkbootstrap as ttk

__all__ = [
    "DARK_THEME",
    "LIGHT_THEME",
    "Palette",
    "available_themes",
    "palette",
    "style_text",
    "theme_label",
    "theme_named",
]

LIGHT_THEME = "bootstrap-light"
DARK_THEME = "bootstrap-dark"


def _rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def _luma(color: str) -> float:
    r, g, b = _rgb(color)
    return 0.299 * r + 0.587 * g + 0.114 * b


def blend(a: str, b: str, amount: float) -> str:
    """``a`` moved ``amount`` (0..1) of the way towards ``b``."""
    mixed = (round(x + (y - x) * amount) for x, y in zip(_rgb(a), _rgb(b), strict=True))
    return "#" + "".join(f"{channel:02x}" for channel in mixed)


@dataclass(frozen=True, slots=True)
class Palette:
    """The colours a custom-drawn widget needs, taken from the theme."""

    bg: str
    fg: str
    muted: str
    hover: str
    selected: str
    primary: str
    danger: str
    success: str
    warning: str
    bubble_in: str
    bubble_out: str
    found: str
    tick_read: str
    input_bg: str
    input_fg: str
    dark: bool


def palette() -> Palette:
    """The palette of the theme in use now (read it again after a switch)."""
    colors = ttk.Style.get_instance().colors
    bg, fg = colors.bg, colors.fg
    return Palette(
        bg=bg,
        fg=fg,
        muted=blend(fg, bg, 0.45),
        hover=blend(bg, fg, 0.06),
        selected=blend(bg, colors.primary, 0.18),
        primary=colors.primary,
        danger=colors.danger,
        success=colors.success,
        warning=colors.warning,
        bubble_in=blend(bg, fg, 0.07),
        bubble_out=blend(bg, colors.primary, 0.16),
        found=blend(bg, colors.warning, 0.6),
        tick_read=colors.primary,
        input_bg=colors.inputbg,
        input_fg=colors.inputfg,
        dark=_luma(bg) < 128,
    )


def available_themes() -> list[str]:
    """The light and dark themes of this ttkbootstrap, light ones first."""
    names = sorted(ttk.Style.get_instance().theme_names())
    themes = [n for n in names if n.endswith(("-light", "-dark"))]
    return sorted(themes, key=lambda n: (n.endswith("-dark"), n))


def theme_label(name: str) -> str:
    """The name a person reads for theme ``name``: ``tokyo-night-dark`` is
    ``Tokyo Night (dark)``."""
    base, _, tone = name.rpartition("-")
    if not base:
        return name.replace("-", " ").title()
    return f"{base.replace('-', ' ').title()} ({tone})"


def theme_named(label: str) -> str:
    """The theme whose :func:`theme_label` is ``label`` (or ``label`` itself
    when it already is a theme's name); ValueError for an unknown one."""
    themes = available_themes()
    if label in themes:
        return label
    for name in themes:
        if theme_label(name) == label:
            return name
    raise ValueError(f"no theme called {label!r}")


def style_text(widget: tk.Text) -> None:
    """Paint a plain Tk text widget (which ttk themes do not reach) in the
    input colours of the theme in use, and again whenever it changes."""

    def paint() -> None:
        colors = palette()
        widget.configure(
            background=colors.input_bg,
            foreground=colors.input_fg,
            insertbackground=colors.input_fg,
            selectbackground=colors.selected,
            selectforeground=colors.fg,
            inactiveselectbackground=colors.selected,
            highlightthickness=1,
            highlightbackground=colors.hover,
            highlightcolor=colors.primary,
        )

    paint()
    widget.bind("<<ThemeChanged>>", lambda _e: paint(), add="+")
