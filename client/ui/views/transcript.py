"""A conversation's messages in a text widget, oldest at the top.

Each message is a block of text tagged with its local id (``msg<id>``), its
body (``body<id>``) and its delivery tick (``tick<id>``), so a newer state
replaces just the tick, an older page is inserted above without moving what
the user is reading, and tests read back exactly what is on screen.
"""

from __future__ import annotations

import bisect
import time
import tkinter as tk
from collections.abc import Callable

import ttkbootstrap as ttk

from ...store import LocalMessage
from .theme import palette

__all__ = ["TICKS", "Transcript"]

TICKS = {
    "pending": "…",
    "sent": "✓",
    "delivered": "✓✓",
    "read": "✓✓",
    "failed": "✗ not sent",
    "received": "",
}
"""The mark after each outgoing message's text, by its state."""
HIGHLIGHT_MS = 2000


def _clock(sent_ms: int) -> str:
    when = time.localtime(sent_ms / 1000)
    if time.strftime("%Y-%m-%d", when) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M", when)
    return time.strftime("%Y-%m-%d %H:%M", when)


class Transcript(ttk.Frame):
    """Shows messages; ``on_need_older()`` is called when the user scrolls to
    the top and older messages exist."""

    def __init__(
        self,
        master: tk.Misc,
        *,
        peer_name: str,
        on_need_older: Callable[[], None],
    ) -> None:
        super().__init__(master)
        self.peer_name = peer_name
        self._on_need_older = on_need_older
        self.messages: dict[int, LocalMessage] = {}
        self.ids: list[int] = []
        self.has_more = False
        self.loading_older = False
        self.create_text()
        self.configure_tags()
        self.bind("<<ThemeChanged>>", lambda _e: self.configure_tags(), add="+")

    def create_text(self) -> None:
        self.text = tk.Text(
            self,
            width=1,
            height=1,
            wrap="word",
            borderwidth=0,
            highlightthickness=0,
            padx=12,
            pady=10,
            cursor="arrow",
            state="disabled",
        )
        self.scrollbar = ttk.Scrollbar(self, orient="vertical", command=self.text.yview)
        self.text.configure(yscrollcommand=self.on_scroll)
        self.scrollbar.pack(side="right", fill="y")
        self.text.pack(side="left", fill="both", expand=True)

    def configure_tags(self) -> None:
        colors = palette()
        text = self.text
        text.configure(background=colors.bg, foreground=colors.fg)
        text.tag_configure("in", justify="left", lmargin1=4, lmargin2=4, rmargin=90)
        text.tag_configure("out", justify="right", lmargin1=90, lmargin2=90, rmargin=4)
        text.tag_configure("meta", foreground=colors.muted, font="-size 8", spacing1=8)
        text.tag_configure(
            "body_in", background=colors.bubble_in, font="-size 10", spacing3=2
        )
        text.tag_configure(
            "body_out", background=colors.bubble_out, font="-size 10", spacing3=2
        )
        text.tag_configure("tick", foreground=colors.muted, font="-size 9")
        text.tag_configure(
            "tick_read", foreground=colors.primary, font="-size 9 -weight bold"
        )
        text.tag_configure("tick_failed", foreground=colors.danger, font="-size 9")
        text.tag_configure("found", background=colors.warning)
        text.tag_raise("found")

    # -- content -----------------------------------------------------------------------

    def reset(self, messages: tuple[LocalMessage, ...], has_more: bool) -> None:
        """Show exactly ``messages`` and scroll to the newest."""
        self._edit(lambda: self.text.delete("1.0", "end"))
        for tag in self.text.tag_names():
            if tag.startswith(("msg", "body", "tick")) and tag[-1].isdigit():
                self.text.tag_delete(tag)
        self.messages.clear()
        self.ids.clear()
        self.has_more = has_more
        self.upsert(messages, scroll=True)

    def prepend(self, messages: tuple[LocalMessage, ...], has_more: bool) -> None:
        """Insert an older page above, keeping the user's place."""
        self.loading_older = False
        self.has_more = has_more
        if not messages:
            return
        top_line = int(self.text.index("@0,0").split(".")[0])
        lines_before = self._line_count()
        self.upsert(messages, scroll=False)
        added = self._line_count() - lines_before
        self.text.yview(f"{top_line + added}.0")

    def upsert(self, messages: tuple[LocalMessage, ...], scroll: bool = False) -> None:
        """Show new messages in id order and update the tick of known ones."""
        at_bottom = self.text.yview()[1] >= 0.999
        for message in messages:
            if message.id in self.messages:
                self._update(message)
            else:
                self._insert(message)
                scroll = scroll or message.outgoing or at_bottom
        if scroll:
            self.text.see("end")

    def _insert(self, message: LocalMessage) -> None:
        position = bisect.bisect(self.ids, message.id)
        index = (
            f"msg{self.ids[position]}.first" if position < len(self.ids) else "end-1c"
        )
        self.ids.insert(position, message.id)
        self.messages[message.id] = message
        side = "out" if message.outgoing else "in"
        who = "You" if message.outgoing else self.peer_name
        block = f"msg{message.id}"

        def write() -> None:
            text = self.text
            text.mark_set("insert_here", index)
            text.insert(
                "insert_here",
                f"{who} · {_clock(message.sent_ms)}\n",
                (side, "meta", block),
            )
            # A plain space first: Tk paints the room left of a right-justified
            # line in the first character's background.
            text.insert("insert_here", " ", (side, block))
            text.insert(
                "insert_here",
                f" {message.text} ",
                (side, f"body_{side}", f"body{message.id}", block),
            )
            if message.outgoing:
                text.insert("insert_here", " ", (side, block))
                text.insert(
                    "insert_here",
                    self._tick(message),
                    self._tick_tags(message, side, block),
                )
            text.insert("insert_here", "\n", (side, block))
            text.mark_unset("insert_here")

        self._edit(write)

    def _update(self, message: LocalMessage) -> None:
        old = self.messages[message.id]
        self.messages[message.id] = message
        if not message.outgoing or old.state == message.state:
            return
        side = "out"
        tag = f"tick{message.id}"

        def write() -> None:
            start = self.text.index(f"{tag}.first")
            self.text.delete(start, f"{tag}.last")
            self.text.insert(
                start,
                self._tick(message),
                self._tick_tags(message, side, f"msg{message.id}"),
            )

        self._edit(write)

    @staticmethod
    def _tick(message: LocalMessage) -> str:
        return TICKS.get(message.state, "")

    @staticmethod
    def _tick_tags(message: LocalMessage, side: str, block: str) -> tuple[str, ...]:
        style = {"read": "tick_read", "failed": "tick_failed"}.get(
            message.state, "tick"
        )
        return (side, style, f"tick{message.id}", block)

    def _edit(self, change: Callable[[], None]) -> None:
        self.text.configure(state="normal")
        try:
            change()
        finally:
            self.text.configure(state="disabled")

    def _line_count(self) -> int:
        return int(self.text.index("end-1c").split(".")[0])

    # -- scrolling and finding ---------------------------------------------------------

    def on_scroll(self, first: float | str, last: float | str) -> None:
        self.scrollbar.set(first, last)
        if (
            float(first) <= 0.0
            and self.has_more
            and not self.loading_older
            and self.ids
        ):
            self.loading_older = True
            self._on_need_older()

    def reveal(self, message_id: int) -> None:
        """Scroll to the message ``message_id`` and highlight it for a moment."""
        tag = f"body{message_id}"
        if not self.text.tag_ranges(tag):
            return
        self.text.see(f"{tag}.first")
        self.text.tag_remove("found", "1.0", "end")
        self.text.tag_add("found", f"{tag}.first", f"{tag}.last")
        self.after(HIGHLIGHT_MS, lambda: self.text.tag_remove("found", "1.0", "end"))

    # -- reading back ------------------------------------------------------------------

    def shown(self) -> list[tuple[int, bool, str, str, str]]:
        """(id, outgoing, text, tick, tick style) of every message, read from the
        widget; the style is ``tick``, ``tick_read`` or ``tick_failed``."""
        result = []
        for message_id in self.ids:
            body = self.text.get(f"body{message_id}.first", f"body{message_id}.last")
            tick_tag = f"tick{message_id}"
            tick, style = "", ""
            if self.text.tag_ranges(tick_tag):
                tick = self.text.get(f"{tick_tag}.first", f"{tick_tag}.last")
                tags = self.text.tag_names(f"{tick_tag}.first")
                style = next(t for t in tags if t.startswith("tick") and t != tick_tag)
            outgoing = self.messages[message_id].outgoing
            result.append((message_id, outgoing, body.strip(), tick, style))
        return result

    def is_visible(self, message_id: int) -> bool:
        """Whether any of the message's text is inside the visible area."""
        tag = f"body{message_id}"
        return (
            bool(self.text.tag_ranges(tag))
            and self.text.bbox(f"{tag}.first") is not None
        )
