"""A chat's search results: one line per message with its full date, who
wrote it and its text with every match highlighted; a click picks one."""

from __future__ import annotations

import re
import tkinter as tk
import tkinter.font as tkfont
from collections.abc import Callable

import ttkbootstrap as ttk

from ...store import LocalMessage
from .grouping import full_date
from .theme import palette, style_text

__all__ = ["SearchResults", "match_spans"]

ROWS = 4


def match_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where ``query`` occurs in ``text`` ignoring case: (start, end) offsets."""
    if not query:
        return []
    return [m.span() for m in re.finditer(re.escape(query), text, re.IGNORECASE)]


class SearchResults(ttk.Frame):
    """The results list; ``on_pick(message_id)`` when the user clicks one."""

    def __init__(self, master: tk.Misc, on_pick: Callable[[int], None]) -> None:
        super().__init__(master)
        self._on_pick = on_pick
        self.ids: list[int] = []
        self.picked: int | None = None
        self.text = tk.Text(
            self,
            height=ROWS,
            width=1,
            wrap="none",
            cursor="hand2",
            borderwidth=0,
            highlightthickness=1,
            padx=6,
            pady=4,
            state="disabled",
            font="TkDefaultFont",
        )
        self.bold = tkfont.nametofont("TkDefaultFont").copy()
        self.bold.configure(weight="bold")
        scrollbar = ttk.Scrollbar(self, orient="vertical", command=self.text.yview)
        self.text.configure(yscrollcommand=scrollbar.set)
        scrollbar.pack(side="right", fill="y")
        self.text.pack(side="left", fill="both", expand=True)
        self.text.bind("<Button-1>", self.on_click)
        style_text(self.text)
        self.configure_tags()
        self.bind("<<ThemeChanged>>", lambda _e: self.configure_tags(), add="+")

    def configure_tags(self) -> None:
        colors = palette()
        self.text.tag_configure("date", foreground=colors.muted)
        self.text.tag_configure("who", font=self.bold)
        self.text.tag_configure("match", background=colors.found)
        self.text.tag_configure("picked", background=colors.selected)
        self.text.tag_raise("match")

    def show(self, results: list[LocalMessage], query: str, peer_name: str) -> None:
        """Show ``results`` for ``query`` (newest last, as the store gives them)."""
        self.ids = [message.id for message in results]
        self.picked = None
        text = self.text
        text.configure(state="normal")
        text.delete("1.0", "end")
        for row, message in enumerate(results):
            if row:
                text.insert("end", "\n")
            who = "You" if message.outgoing else peer_name
            body = " ".join(message.text.split())
            text.insert("end", f"{full_date(message.sent_ms)}  ", ("date",))
            text.insert("end", f"{who}: ", ("who",))
            start = text.index("end-1c")
            text.insert("end", body)
            for begin, end in match_spans(body, query):
                text.tag_add("match", f"{start}+{begin}c", f"{start}+{end}c")
        text.configure(state="disabled")

    def on_click(self, event: tk.Event) -> None:
        row = int(self.text.index(f"@{event.x},{event.y}").split(".")[0]) - 1
        if 0 <= row < len(self.ids):
            self.pick(row)

    def pick(self, row: int) -> None:
        """Mark row ``row`` and show its message in the transcript."""
        self.picked = self.ids[row]
        self.text.tag_remove("picked", "1.0", "end")
        self.text.tag_add("picked", f"{row + 1}.0", f"{row + 1}.end")
        self._on_pick(self.ids[row])

    def rows(self) -> list[str]:
        """Every row as shown."""
        content = self.text.get("1.0", "end-1c")
        return content.split("\n") if content else []

    def highlighted(self) -> list[str]:
        """The highlighted matches, in order."""
        ranges = self.text.tag_ranges("match")
        return [
            self.text.get(ranges[i], ranges[i + 1]) for i in range(0, len(ranges), 2)
        ]
