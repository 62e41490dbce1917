"""A conversation's messages in a text widget, oldest at the top.

Each message is a bubble (:class:`~.bubble.Bubble`) embedded in the text,
preceded by its lead: a date separator when the day changes and the
sender's name when a new group starts (see :mod:`.grouping`). The block is
tagged with its local id (``msg<id>``), the lead ``lead<id>`` and the bubble
``body<id>``, so an older page is inserted above without moving what the user
is reading, and tests read back exactly what is on screen.

Cards (files sent or offered) sit among the messages; see :mod:`.cardslots`.
"""

from __future__ import annotations

import bisect
import time
import tkinter as tk
from collections.abc import Callable

import ttkbootstrap as ttk

from ...store import LocalMessage
from .bubble import Bubble, BubbleLook
from .cardslots import CardSlots
from .grouping import clock, lead_of
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
"""The mark after each outgoing message's time, by its state."""
HIGHLIGHT_MS = 2000
BUBBLE_SHARE = 0.72
"""The widest a bubble gets, as a share of the transcript's width."""
SIDE_MARGIN = 8
DEFAULT_WIDTH = 480


class Transcript(CardSlots, ttk.Frame):
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
        self.bubbles: dict[int, Bubble] = {}
        self.ids: list[int] = []
        self.found: int | None = None
        self.has_more = False
        self.loading_older = False
        self._laid_out_width = 0
        self._found_timer: str | None = None
        self.cards = {}
        self._card_serial = 0
        self.create_text()
        self.menu_message: int | None = None
        self.menu = ttk.Menu(self, tearoff=False)
        self.menu.add_command(label="Copy text", command=self.on_copy_menu)
        self.configure_tags()
        self.bind("<<ThemeChanged>>", lambda _e: self.configure_tags(), add="+")
        self.text.bind("<Configure>", self.on_resize, add="+")

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
        """Colour the transcript and every bubble from the theme in use."""
        colors = palette()
        text = self.text
        text.configure(background=colors.bg, foreground=colors.fg)
        text.tag_configure(
            "in", justify="left", lmargin1=SIDE_MARGIN, lmargin2=SIDE_MARGIN
        )
        text.tag_configure("out", justify="right", rmargin=SIDE_MARGIN)
        text.tag_configure(
            "meta",
            foreground=colors.muted,
            font="-size 8 -weight bold",
            spacing1=10,
            spacing3=2,
        )
        text.tag_configure(
            "day", justify="center", foreground=colors.muted, font="-size 8",
            spacing1=14, spacing3=6,
        )  # fmt: skip
        text.tag_configure("bubble", spacing1=3)
        for message_id in self.ids:
            self._draw(message_id)

    # -- content -----------------------------------------------------------------------

    def reset(self, messages: tuple[LocalMessage, ...], has_more: bool) -> None:
        """Show exactly ``messages`` and scroll to the newest."""
        self._edit(lambda: self.text.delete("1.0", "end"))
        for tag in self.text.tag_names():
            if tag.startswith(("msg", "body", "lead", "card")) and tag[-1].isdigit():
                self.text.tag_delete(tag)
        for bubble in self.bubbles.values():
            bubble.destroy()
        self.bubbles.clear()
        self.messages.clear()
        self.ids.clear()
        self.found = None
        self.has_more = has_more
        for card in self.cards.values():
            card.widget = None
        self.upsert(messages, scroll=True)
        for key, card in list(self.cards.items()):
            del self.cards[key]
            self.set_card(key, card.time_ms, card.outgoing, card.make)
        self.text.see("end")

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
        following = self.ids[position] if position < len(self.ids) else None
        index = self._index_before((message.id, 0, 0))
        self.ids.insert(position, message.id)
        self.messages[message.id] = message
        side = "out" if message.outgoing else "in"
        block = f"msg{message.id}"
        bubble = Bubble(self.text, message.text, self.text.cget("background"))
        for sequence in ("<MouseWheel>", "<Button-4>", "<Button-5>"):
            bubble.bind(sequence, self._forward_wheel)
        bubble.bind("<Button-3>", lambda e, i=message.id: self.on_bubble_menu(e, i))
        self.bubbles[message.id] = bubble
        self._draw(message.id)

        def write() -> None:
            text = self.text
            text.mark_set("insert_here", index)
            text.mark_gravity("insert_here", "left")
            text.window_create("insert_here", window=bubble, align="top")
            text.tag_add(side, "insert_here")
            text.tag_add("bubble", "insert_here")
            text.tag_add(f"body{message.id}", "insert_here")
            text.tag_add(block, "insert_here")
            text.insert("insert_here +1c", "\n", (side, block))
            text.mark_unset("insert_here")
            self._write_lead(message.id)
            if following is not None:
                self._write_lead(following)

        self._edit(write)

    def _write_lead(self, message_id: int) -> None:
        """(Re)write the separator and header above ``message_id``; inside
        :meth:`_edit`."""
        text = self.text
        tag = f"lead{message_id}"
        if text.tag_ranges(tag):
            text.delete(f"{tag}.first", f"{tag}.last")
        position = self.ids.index(message_id)
        message = self.messages[message_id]
        before = self.messages[self.ids[position - 1]] if position else None
        lead = lead_of(
            (before.outgoing, before.sent_ms) if before else None,
            (message.outgoing, message.sent_ms),
            int(time.time() * 1000),
        )
        where = f"body{message_id}.first"
        block = f"msg{message_id}"
        if lead.day:
            text.insert(where, f"{lead.day}\n", ("day", tag, block))
        if lead.header:
            side = "out" if message.outgoing else "in"
            who = "You" if message.outgoing else self.peer_name
            text.insert(where, f"{who}\n", (side, "meta", tag, block))

    def _update(self, message: LocalMessage) -> None:
        old = self.messages[message.id]
        self.messages[message.id] = message
        if message.outgoing and old.state != message.state:
            self._draw(message.id)

    def _draw(self, message_id: int) -> None:
        message = self.messages[message_id]
        look = BubbleLook.of(
            palette(), message.outgoing, message.state, message_id == self.found
        )
        tick = TICKS.get(message.state, "") if message.outgoing else ""
        self.bubbles[message_id].draw(
            look, clock(message.sent_ms), tick, self._bubble_width()
        )

    def _bubble_width(self) -> int:
        width = self.text.winfo_width()
        if width <= 1:
            width = DEFAULT_WIDTH
        return int((width - 2 * SIDE_MARGIN - 24) * BUBBLE_SHARE)

    def on_resize(self, event: tk.Event) -> None:
        """Wrap the bubbles again when the width changed noticeably."""
        if abs(event.width - self._laid_out_width) < 8:
            return
        self._laid_out_width = event.width
        for message_id in self.ids:
            self._draw(message_id)
        for card in self.cards.values():
            if card.widget is not None:
                card.widget.set_width(self._bubble_width())

    def on_bubble_menu(self, event: tk.Event, message_id: int) -> None:
        """Right click on a bubble: a menu to copy its text."""
        self.menu_message = message_id
        self.menu.tk_popup(event.x_root, event.y_root)

    def on_copy_menu(self) -> None:
        if self.menu_message is not None:
            self.copy_message(self.menu_message)

    def copy_message(self, message_id: int) -> None:
        """Put the text of message ``message_id`` on the clipboard."""
        self.clipboard_clear()
        self.clipboard_append(self.messages[message_id].text)

    def _forward_wheel(self, event: tk.Event) -> str:
        """The wheel over a bubble scrolls the transcript."""
        if event.num == 4 or getattr(event, "delta", 0) > 0:
            self.text.yview_scroll(-3, "units")
        else:
            self.text.yview_scroll(3, "units")
        return "break"

    def set_peer_name(self, name: str) -> None:
        """Show ``name`` on the friend's headers from now on and on those shown."""
        if name == self.peer_name:
            return
        self.peer_name = name
        self._edit(lambda: [self._write_lead(i) for i in self.ids])

    def _edit(self, change: Callable[[], object]) -> None:
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
        if message_id not in self.bubbles:
            return
        self.text.see(f"body{message_id}.first")
        previous, self.found = self.found, message_id
        if previous is not None and previous in self.bubbles:
            self._draw(previous)
        self._draw(message_id)
        if self._found_timer is not None:
            self.after_cancel(self._found_timer)
        self._found_timer = self.after(HIGHLIGHT_MS, self._end_highlight)

    def destroy(self) -> None:
        """Go, with the highlight's timer (it would outlive the widget)."""
        if self._found_timer is not None:
            self.after_cancel(self._found_timer)
            self._found_timer = None
        super().destroy()

    def _end_highlight(self) -> None:
        self._found_timer = None
        found, self.found = self.found, None
        if found is not None and found in self.bubbles:
            self._draw(found)

    # -- reading back ------------------------------------------------------------------

    def shown(self) -> list[tuple[int, bool, str, str, str]]:
        """(id, outgoing, text, tick, tick style) of every message, read from the
        bubbles; the style is ``tick``, ``tick_read`` or ``tick_failed``."""
        result = []
        for message_id in self.ids:
            bubble = self.bubbles[message_id]
            body = str(bubble.itemcget("body", "text"))
            tick, style = bubble.tick()
            outgoing = self.messages[message_id].outgoing
            result.append((message_id, outgoing, body.strip(), tick, style))
        return result

    def blocks(self) -> list[str]:
        """Top to bottom: each message's text, each card's title in brackets."""
        placed = [
            (self.text.index(f"body{i}.first"), self.messages[i].text) for i in self.ids
        ] + [
            (self.text.index(f"{c.tag}.first"), f"[{c.widget.title()}]")
            for c in self.cards.values()
            if c.widget is not None and self.text.tag_ranges(c.tag)
        ]
        return [
            text
            for _, text in sorted(
                placed, key=lambda p: tuple(map(int, p[0].split(".")))
            )
        ]

    def leads(self) -> list[str]:
        """The separator and header lines as shown, top to bottom."""
        lines = self.text.get("1.0", "end-1c").split("\n")
        return [line for line in lines if line.strip()]

    def is_visible(self, message_id: int) -> bool:
        """Whether any of the message's bubble is inside the visible area."""
        tag = f"body{message_id}"
        return (
            bool(self.text.tag_ranges(tag))
            and self.text.bbox(f"{tag}.first") is not None
        )
