"""Cards among a transcript's messages: where each goes and how it is kept.

A card (a file sent or offered, see :mod:`.filecards`) sits after the newest
message shown when it happened, in a block of the text tagged ``card<n>``. Tk
destroys an embedded window when its text is deleted, so a card is given as
a function that builds it, and built again after the transcript is reset.
"""

from __future__ import annotations

import bisect
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass

from ...store import LocalMessage

__all__ = ["CardFrame", "CardMaker", "CardSlots"]


class CardFrame(tk.Frame):
    """What a card is: a frame that can wrap itself to a width."""

    def set_width(self, width: int) -> None:
        """Lay the card out for ``width`` pixels (the transcript's bubbles')."""
        raise NotImplementedError

    def title(self) -> str:
        """What the card is about, in a few words (a file's name)."""
        raise NotImplementedError


CardMaker = Callable[[tk.Misc, int], CardFrame]
"""Builds a card in the given text widget, for the given width in pixels."""


@dataclass(slots=True)
class Card:
    """A card's place: after message ``anchor`` (0: above all), at ``time_ms``
    (Unix ms); ``widget`` is None until built."""

    tag: str
    anchor: int
    time_ms: int
    outgoing: bool
    make: CardMaker
    widget: CardFrame | None = None


class CardSlots:
    """The card half of :class:`~.transcript.Transcript`: it needs the text
    widget, the message ids (sorted) and messages, and the transcript's
    ``_edit``, ``_bubble_width`` and ``_forward_wheel``."""

    text: tk.Text
    ids: list[int]
    messages: dict[int, LocalMessage]
    cards: dict[str, Card]
    _card_serial: int
    _edit: Callable[[Callable[[], object]], None]
    _bubble_width: Callable[[], int]
    _forward_wheel: Callable[[tk.Event], str]

    def _index_before(self, key: tuple[int, int, int]) -> str:
        """Where a block with sort ``key`` goes: before the first block (message
        or card) that sorts after it, else at the end."""
        following: tuple[tuple[int, int, int], str] | None = None
        position = bisect.bisect(self.ids, key[0])
        if position < len(self.ids):
            following = ((self.ids[position], 0, 0), f"msg{self.ids[position]}")
        for card in self.cards.values():
            card_key = (card.anchor, 1, card.time_ms)
            if card.widget is not None and card_key > key:
                if following is None or card_key < following[0]:
                    following = (card_key, card.tag)
        return f"{following[1]}.first" if following is not None else "end-1c"

    def set_card(self, key: str, time_ms: int, outgoing: bool, make: CardMaker) -> None:
        """Show a card named ``key`` (once; later calls keep it where it is),
        built by ``make``, after the newest message sent at or before
        ``time_ms`` (Unix ms), on our side if ``outgoing``."""
        if key in self.cards:
            return
        anchor = max(
            (i for i in self.ids if self.messages[i].sent_ms <= time_ms), default=0
        )
        self._card_serial += 1
        card = Card(f"card{self._card_serial}", anchor, time_ms, outgoing, make)
        index = self._index_before((anchor, 1, time_ms))
        at_bottom = self.text.yview()[1] >= 0.999
        widget = make(self.text, self._bubble_width())
        for sequence in ("<MouseWheel>", "<Button-4>", "<Button-5>"):
            widget.bind(sequence, self._forward_wheel)
        self.cards[key] = card

        def write() -> None:
            text = self.text
            side = "out" if outgoing else "in"
            text.mark_set("insert_here", index)
            text.mark_gravity("insert_here", "left")
            text.window_create("insert_here", window=widget, align="top")
            text.tag_add(side, "insert_here")
            text.tag_add("bubble", "insert_here")
            text.tag_add(card.tag, "insert_here")
            text.insert("insert_here +1c", "\n", (side, card.tag))
            text.mark_unset("insert_here")

        self._edit(write)
        card.widget = widget
        if at_bottom:
            self.text.see("end")

    def card(self, key: str) -> CardFrame | None:
        """The card widget named ``key``, if shown."""
        card = self.cards.get(key)
        return card.widget if card is not None else None

    def drop_card(self, key: str) -> None:
        """Take the card ``key`` away."""
        card = self.cards.pop(key, None)
        if card is not None and self.text.tag_ranges(card.tag):
            self._edit(
                lambda: self.text.delete(f"{card.tag}.first", f"{card.tag}.last")
            )

    def card_order(self) -> list[str]:
        """The keys of the cards shown, top to bottom."""
        shown = [
            (self.text.index(f"{c.tag}.first"), key)
            for key, c in self.cards.items()
            if c.widget is not None and self.text.tag_ranges(c.tag)
        ]
        return [
            key
            for _, key in sorted(shown, key=lambda p: tuple(map(int, p[0].split("."))))
        ]
