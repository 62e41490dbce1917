"""Meeting invitations as bars in the main window, each with Join and
Decline, that stay until the user answers (a notice that fades is missed)."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable

import ttkbootstrap as ttk

__all__ = ["Invitations"]


class Invitations(ttk.Frame):
    """The open invitations, newest first, one bar per meeting."""

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master)
        self.bars: dict[str, ttk.Frame] = {}
        self.texts: dict[str, str] = {}
        self.buttons: dict[str, dict[str, ttk.Button]] = {}

    def show(
        self,
        room_id: str,
        inviter: str,
        on_join: Callable[[], object],
        on_decline: Callable[[], object],
    ) -> None:
        """Show ``inviter``'s invitation to ``room_id`` (replacing an older one
        to the same meeting); Join calls ``on_join``, Decline ``on_decline``."""
        self.dismiss(room_id)
        bar = ttk.Frame(self, padding=(14, 8), bootstyle="info")
        text = f"{inviter} invites you to a meeting"
        ttk.Label(
            bar, text=text, bootstyle="@info", font="-weight bold",
            wraplength=220, justify="left",
        ).pack(side="left", fill="x", expand=True)  # fmt: skip
        decline = ttk.Button(
            bar,
            text="Decline",
            bootstyle="light",
            command=lambda: (self.dismiss(room_id), on_decline()),
        )
        decline.pack(side="right")
        join = ttk.Button(
            bar,
            text="Join",
            bootstyle="success",
            command=lambda: (self.dismiss(room_id), on_join()),
        )
        join.pack(side="right", padx=(0, 6))
        children = self.pack_slaves()
        if children:
            bar.pack(fill="x", pady=(0, 2), before=children[0])
        else:
            bar.pack(fill="x", pady=(0, 2))
        self.bars[room_id] = bar
        self.texts[room_id] = text
        self.buttons[room_id] = {"Join": join, "Decline": decline}

    def dismiss(self, room_id: str) -> None:
        """Take the invitation to ``room_id`` away (answered or gone)."""
        bar = self.bars.pop(room_id, None)
        if bar is not None:
            bar.destroy()
            del self.texts[room_id]
            del self.buttons[room_id]

    def shown(self) -> list[tuple[str, str]]:
        """(room id, text) of every bar, top to bottom."""
        order = {str(bar): room for room, bar in self.bars.items()}
        return [
            (order[str(bar)], self.texts[order[str(bar)]]) for bar in self.pack_slaves()
        ]
