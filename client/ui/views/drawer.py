"""The friend drawer: friends grouped by presence, each with an avatar and a
presence dot, name, the newest message and its time (the mood while there is
none) and an unread badge; sent requests below.

Drawn on a canvas (two-line rows, coloured badges, collapsible groups) from
the last :class:`~client.engine.model.Roster` it was given, filtered by a text.
"""

from __future__ import annotations

import time
import tkinter as tk
import tkinter.font as tkfont
from collections.abc import Callable
from dataclasses import dataclass

import ttkbootstrap as ttk

from ...engine.model import FriendEntry, Roster
from .grouping import short_time
from .images import ImageStore
from .textfit import fit_text
from .theme import palette

__all__ = ["DrawerRow", "FriendDrawer"]

ROW_HEIGHT = 52
HEADER_HEIGHT = 30
AVATAR_SIZE = 36
PAD = 12
NAME_FONT = "-size 10"
LINE_FONT = "-size 9"
TIME_FONT = "-size 8"
GROUPS = (
    ("online", "Online"),
    ("away", "Away"),
    ("offline", "Offline"),
    ("requested", "Sent requests"),
)


@dataclass(frozen=True, slots=True)
class DrawerRow:
    """One line of the drawer as drawn: a group header or a person."""

    kind: str
    """``header``, ``friend`` or ``requested``."""
    key: str
    """The group name for headers, else the username."""
    top: int
    bottom: int


class FriendDrawer(ttk.Frame):
    """The friend list. ``on_open(username)`` opens a chat; ``on_menu(username,
    kind, x_root, y_root)`` shows the row's context menu."""

    def __init__(
        self,
        master: tk.Misc,
        images: ImageStore,
        on_open: Callable[[str], object],
        on_menu: Callable[[str, str, int, int], None],
    ) -> None:
        super().__init__(master)
        self.images = images
        self._on_open = on_open
        self._on_menu = on_menu
        self.roster = Roster()
        self.filter_text = ""
        self.collapsed: set[str] = set()
        self.selected: str | None = None
        self.rows: list[DrawerRow] = []
        self._hover: str | None = None
        self._fonts: dict[str, tkfont.Font] = {}
        self.create_canvas()

    def create_canvas(self) -> None:
        self.canvas = tk.Canvas(self, highlightthickness=0, borderwidth=0, takefocus=1)
        self.scrollbar = ttk.Scrollbar(
            self, orient="vertical", command=self.canvas.yview
        )
        self.canvas.configure(yscrollcommand=self.scrollbar.set)
        self.canvas.pack(side="left", fill="both", expand=True)
        self.scrollbar.pack(side="right", fill="y")
        self.canvas.bind("<Configure>", lambda _e: self.render())
        self.canvas.bind("<Button-1>", self.on_click)
        self.canvas.bind("<Double-Button-1>", self.on_double_click)
        self.canvas.bind("<Button-3>", self.on_right_click)
        self.canvas.bind("<Motion>", self.on_motion)
        self.canvas.bind("<Leave>", lambda _e: self._set_hover(None))
        self.canvas.bind("<Return>", lambda _e: self.open_selected())
        self.canvas.bind("<Up>", lambda _e: self.move_selection(-1))
        self.canvas.bind("<Down>", lambda _e: self.move_selection(1))
        for sequence in ("<Button-4>", "<Button-5>", "<MouseWheel>"):
            self.canvas.bind(sequence, self.on_wheel)
        self.bind("<<ThemeChanged>>", lambda _e: self.render(), add="+")

    # -- model ---------------------------------------------------------------------

    def set_roster(self, roster: Roster) -> None:
        self.roster = roster
        self.render()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().lower()
        self.render()

    def _matches(self, username: str, name: str) -> bool:
        text = self.filter_text
        return not text or text in username.lower() or text in name.lower()

    def groups(self) -> dict[str, list[FriendEntry]]:
        """The friends (and sent requests) to show, by group, sorted by name."""
        grouped: dict[str, list[FriendEntry]] = {key: [] for key, _ in GROUPS}
        for entry in self.roster.friends:
            if self._matches(entry.person.username, entry.person.name):
                grouped[entry.presence].append(entry)
        for request in self.roster.outgoing:
            if self._matches(request.person.username, request.person.name):
                grouped["requested"].append(FriendEntry(request.person, "offline"))
        for entries in grouped.values():
            entries.sort(key=lambda e: e.person.name.lower())
        return grouped

    # -- drawing -------------------------------------------------------------------

    def render(self) -> None:
        colors = palette()
        canvas = self.canvas
        canvas.delete("all")
        canvas.configure(background=colors.bg)
        width = max(canvas.winfo_width(), 200)
        self.rows = []
        y = 0
        grouped = self.groups()
        for group, title in GROUPS:
            entries = grouped[group]
            if group == "requested" and not entries:
                continue
            y = self._draw_header(group, title, len(entries), y, width)
            if group in self.collapsed:
                continue
            kind = "requested" if group == "requested" else "friend"
            for entry in entries:
                y = self._draw_row(entry, kind, y, width)
        canvas.configure(scrollregion=(0, 0, width, y))

    def _draw_header(
        self, group: str, title: str, count: int, y: int, width: int
    ) -> int:
        colors = palette()
        arrow = "▸" if group in self.collapsed else "▾"
        self.canvas.create_text(
            PAD,
            y + HEADER_HEIGHT // 2,
            text=f"{arrow}  {title.upper()}  {count}",
            anchor="w",
            fill=colors.muted,
            font="-size 9 -weight bold",
            tags=("header", f"header:{group}"),
        )
        self.rows.append(DrawerRow("header", group, y, y + HEADER_HEIGHT))
        return y + HEADER_HEIGHT

    def _draw_row(self, entry: FriendEntry, kind: str, y: int, width: int) -> int:
        colors = palette()
        canvas = self.canvas
        username = entry.person.username
        tag = f"row:{username}"
        background = (
            colors.selected
            if username == self.selected
            else colors.hover
            if username == self._hover
            else colors.bg
        )
        canvas.create_rectangle(
            0,
            y,
            width,
            y + ROW_HEIGHT,
            fill=background,
            width=0,
            tags=("row", tag, f"bg:{username}"),
        )
        presence = None if kind == "requested" else entry.presence
        image = self.images.avatar(entry.person, AVATAR_SIZE, presence)
        canvas.create_image(
            PAD, y + ROW_HEIGHT // 2, image=image, anchor="w", tags=("row", tag)
        )
        text_x = PAD + AVATAR_SIZE + 10
        unread = entry.unread
        badge = (str(unread) if unread < 100 else "99+") if unread else ""
        badge_width = max(22, 9 * len(badge) + 12) if badge else 0
        when = (
            short_time(entry.last_ms, int(time.time() * 1000))
            if entry.last_text
            else ""
        )
        second = _second_line(entry, kind)
        right = width - PAD
        name_font = NAME_FONT + (" -weight bold" if unread else "")
        time_width = self._font(TIME_FONT).measure(when) + 8 if when else 0
        canvas.create_text(
            text_x,
            y + 17 if second else y + ROW_HEIGHT // 2,
            text=self._fit(entry.person.name, name_font, right - time_width - text_x),
            anchor="w",
            fill=colors.fg if presence != "offline" or unread else colors.muted,
            font=name_font,
            tags=("row", tag, f"name:{username}"),
        )
        canvas.create_text(
            right,
            y + 17,
            text=when,
            anchor="e",
            fill=colors.muted,
            font=TIME_FONT,
            tags=("row", tag, f"time:{username}"),
        )
        badge_room = badge_width + 8 if badge else 0
        canvas.create_text(
            text_x,
            y + 35,
            text=self._fit(second, LINE_FONT, right - badge_room - text_x),
            anchor="w",
            fill=colors.muted,
            font=LINE_FONT,
            tags=("row", tag, f"line:{username}"),
        )
        if badge:
            label = badge
            left = right - badge_width
            top, bottom = y + 35 - 10, y + 35 + 10
            canvas.create_oval(
                left,
                top,
                left + 20,
                bottom,
                fill=colors.danger,
                width=0,
                tags=("row", tag),
            )
            canvas.create_oval(
                right - 20,
                top,
                right,
                bottom,
                fill=colors.danger,
                width=0,
                tags=("row", tag),
            )
            canvas.create_rectangle(
                left + 10,
                top,
                right - 10,
                bottom,
                fill=colors.danger,
                width=0,
                tags=("row", tag),
            )
            canvas.create_text(
                (left + right) // 2,
                y + 35,
                text=label,
                fill="white",
                font="-size 9 -weight bold",
                tags=("row", tag, f"badge:{username}"),
            )
        self.rows.append(DrawerRow(kind, username, y, y + ROW_HEIGHT))
        return y + ROW_HEIGHT

    def _font(self, spec: str) -> tkfont.Font:
        font = self._fonts.get(spec)
        if font is None:
            font = self._fonts[spec] = tkfont.Font(root=self, font=spec)
        return font

    def _fit(self, text: str, spec: str, room: int) -> str:
        return fit_text(text, self._font(spec), room)

    # -- reading back what is shown ------------------------------------------------

    def row_at(self, y: int) -> DrawerRow | None:
        """The row at widget coordinate ``y`` (scrolling accounted for)."""
        canvas_y = int(self.canvas.canvasy(y))
        for row in self.rows:
            if row.top <= canvas_y < row.bottom:
                return row
        return None

    def shown(self) -> list[tuple[str, str, str, str]]:
        """What the canvas shows, top to bottom: (group, name, second line,
        badge) for every person row, read from the drawn items; the second
        line is the newest message, else the mood."""
        result = []
        group = ""
        for row in self.rows:
            if row.kind == "header":
                group = row.key
                continue
            result.append(
                (
                    group,
                    self._item_text(f"name:{row.key}"),
                    self._item_text(f"line:{row.key}"),
                    self._item_text(f"badge:{row.key}"),
                )
            )
        return result

    def times(self) -> dict[str, str]:
        """The time shown on each person row, by username (empty if none)."""
        return {
            row.key: self._item_text(f"time:{row.key}")
            for row in self.rows
            if row.kind != "header"
        }

    def _item_text(self, tag: str) -> str:
        items = self.canvas.find_withtag(tag)
        return str(self.canvas.itemcget(items[0], "text")) if items else ""

    def row_center(self, username: str) -> tuple[int, int]:
        """Widget coordinates of the middle of ``username``'s row (for clicks)."""
        for row in self.rows:
            if row.kind != "header" and row.key == username:
                top = int(row.top - self.canvas.canvasy(0))
                return self.canvas.winfo_width() // 2, top + (row.bottom - row.top) // 2
        raise KeyError(username)

    # -- handlers --------------------------------------------------------------------

    def on_click(self, event: tk.Event) -> None:
        self.canvas.focus_set()
        row = self.row_at(event.y)
        if row is None:
            return
        if row.kind == "header":
            self.collapsed ^= {row.key}
        else:
            self.selected = row.key
        self.render()

    def on_double_click(self, event: tk.Event) -> None:
        row = self.row_at(event.y)
        if row is not None and row.kind == "friend":
            self._on_open(row.key)

    def on_right_click(self, event: tk.Event) -> None:
        row = self.row_at(event.y)
        if row is not None and row.kind != "header":
            self.selected = row.key
            self.render()
            self._on_menu(row.key, row.kind, event.x_root, event.y_root)

    def on_motion(self, event: tk.Event) -> None:
        row = self.row_at(event.y)
        self._set_hover(row.key if row is not None and row.kind != "header" else None)

    def _set_hover(self, username: str | None) -> None:
        if username != self._hover:
            self._hover = username
            self.render()

    def on_wheel(self, event: tk.Event) -> None:
        if getattr(event, "num", 0) == 4 or getattr(event, "delta", 0) > 0:
            self.canvas.yview_scroll(-2, "units")
        else:
            self.canvas.yview_scroll(2, "units")

    def move_selection(self, step: int) -> None:
        people = [row.key for row in self.rows if row.kind == "friend"]
        if not people:
            return
        index = people.index(self.selected) + step if self.selected in people else 0
        self.selected = people[max(0, min(len(people) - 1, index))]
        self.render()

    def open_selected(self) -> None:
        if self.selected is not None and any(
            row.kind == "friend" and row.key == self.selected for row in self.rows
        ):
            self._on_open(self.selected)


def _second_line(entry: FriendEntry, kind: str) -> str:
    """Under the name: the newest message (ours marked ``You:``), else the mood."""
    if kind == "requested":
        return "waiting for an answer"
    if not entry.last_text:
        return entry.person.mood
    text = " ".join(entry.last_text.split())
    return f"You: {text}" if entry.last_outgoing else text
