"""Files inside a conversation: each file sent or offered with one friend is a
card in the chat's transcript, where it happened, with its name, size and
state, a progress bar while it moves, and the actions its state allows.

:class:`FileCards` keeps the cards of one chat from the
:class:`~client.engine.model.TransfersChanged` snapshots; the transcript
places them among the messages (:meth:`Transcript.set_card`). An offer and
the download of the same file share one card, which turns from "Download"
into a progress bar where it stands.
"""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Callable
from pathlib import Path

import ttkbootstrap as ttk

from ...engine.backend.files import human_size
from ...engine.model import FileOfferEntry, TransferEntry, TransfersChanged
from ..controller import Controller
from .cardslots import CardFrame
from .names import display_name
from .theme import palette
from .transcript import Transcript
from .transfers import BAR_STYLE_MOVING, BAR_STYLES, describe_transfer, open_in_folder

__all__ = ["FileCard", "FileCards", "card_actions"]

FileItem = TransferEntry | FileOfferEntry
MIN_WIDTH = 260
"""The narrowest a card's content gets (pixels), so that cards line up."""


def card_key(item: FileItem) -> str:
    """One key per file: the offer and its download share it."""
    if isinstance(item, FileOfferEntry):
        return f"file:{item.file_id}"
    if item.direction == "down" and item.file_id:
        return f"file:{item.file_id}"
    return f"transfer:{item.id}"


def card_actions(item: FileItem) -> list[str]:
    """The buttons of a card, by what can be done with the file now."""
    if isinstance(item, FileOfferEntry):
        return ["Download", "Decline"]
    if item.state == "active":
        return ["Pause", "Cancel"]
    if item.state in ("paused", "failed"):
        return ["Resume", "Cancel"]
    if item.state == "done":
        return ["Open", "Open folder"] if item.direction == "down" else ["Open folder"]
    return []


class FileCard(CardFrame):
    """One file as a card; :meth:`show` draws it as ``item`` is now.
    ``on_action(item, label)`` runs a button."""

    def __init__(
        self,
        master: tk.Misc,
        item: FileItem,
        width: int,
        on_action: Callable[[FileItem, str], None],
    ) -> None:
        super().__init__(master, padx=12, pady=8, highlightthickness=1)
        self._on_action = on_action
        self.item = item
        self.name_label = tk.Label(
            self, font="-size 10 -weight bold", anchor="w", justify="left"
        )
        self.name_label.pack(fill="x")
        self.bar = ttk.Progressbar(self, length=width - 26)
        self._bar_style = ""
        self.detail_label = tk.Label(self, font="-size 9", anchor="w", justify="left")
        self.detail_label.pack(fill="x", pady=(2, 0))
        self.spacer = tk.Frame(self, height=0)
        self.spacer.pack()
        self.actions = tk.Frame(self)
        self.actions.pack(anchor="e", pady=(6, 0))
        self.buttons: dict[str, ttk.Button] = {}
        self._actions_for: list[str] | None = None
        self.set_width(width)
        self.paint()
        self.bind("<<ThemeChanged>>", lambda _e: self.paint(), add="+")
        self.show(item)

    def set_width(self, width: int) -> None:
        """Wrap the card's text to ``width`` pixels (the transcript's bubbles')."""
        inner = width - 26
        for label in (self.name_label, self.detail_label):
            label.configure(wraplength=inner)
        self.bar.configure(length=inner)
        self.spacer.configure(width=min(inner, MIN_WIDTH))

    def paint(self) -> None:
        """Colour the card from the theme in use."""
        colors = palette()
        outgoing = isinstance(self.item, TransferEntry) and self.item.direction == "up"
        fill = colors.bubble_out if outgoing else colors.bubble_in
        self.configure(background=fill, highlightbackground=colors.muted)
        self.actions.configure(background=fill)
        self.spacer.configure(background=fill)
        self.name_label.configure(background=fill, foreground=colors.fg)
        self.detail_label.configure(background=fill, foreground=colors.muted)

    def show(self, item: FileItem) -> None:
        self.item = item
        self.name_label.configure(text=item.name)
        if isinstance(item, FileOfferEntry):
            sender = display_name(self, item.sender)
            detail = f"↓ from {sender} · {human_size(item.size)} · waiting for you"
            self.bar.pack_forget()
        else:
            detail = describe_transfer(item, display_name(self, item.peer))
            self._show_bar(item)
        self.detail_label.configure(text=detail)
        actions = card_actions(item)
        if actions != self._actions_for:
            self._actions_for = actions
            for button in self.buttons.values():
                button.destroy()
            self.buttons = {}
            for label in actions:
                button = ttk.Button(
                    self.actions,
                    text=label,
                    bootstyle=(
                        "primary"
                        if label in ("Download", "Resume", "Open")
                        else "secondary-outline"
                    ),
                    command=lambda name=label: self._on_action(self.item, name),
                )
                button.pack(side="left", padx=(6, 0))
                self.buttons[label] = button

    def _show_bar(self, item: TransferEntry) -> None:
        if item.finished:
            self.bar.pack_forget()
            return
        self.bar.configure(maximum=max(1, item.size), value=item.done)
        style = BAR_STYLES.get(item.state, BAR_STYLE_MOVING)
        if style != self._bar_style:
            self._bar_style = style
            self.bar.configure(bootstyle=style)
        if not self.bar.winfo_ismapped():
            self.bar.pack(fill="x", pady=(4, 0), before=self.detail_label)

    def title(self) -> str:
        return self.item.name

    def detail(self) -> str:
        return str(self.detail_label.cget("text"))


class FileCards(ttk.Frame):
    """The file cards of the chat with ``peer``, kept in ``transcript``; this
    frame itself shows why an action failed (a folder that did not open).

    Shows offers from the friend and transfers with them that are unfinished
    or ran since the app started. ``open_folder(path)`` shows a file's folder,
    ``open_file(path)`` opens the file itself.
    """

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        transcript: Transcript,
        peer: str,
        *,
        open_folder: Callable[[Path], None],
        open_file: Callable[[Path], None],
    ) -> None:
        super().__init__(master)
        self.controller = controller
        self.transcript = transcript
        self.peer = peer
        self._open_folder = open_folder
        self._open_file = open_file
        self.items: dict[str, FileItem] = {}
        self.order: list[str] = []
        self.message_var = tk.StringVar(self)
        self.message_label = ttk.Label(
            self,
            textvariable=self.message_var,
            bootstyle="danger",
            wraplength=460,
            justify="left",
            padding=(12, 4),
        )

    def _keep(self, item: FileItem) -> bool:
        if isinstance(item, FileOfferEntry):
            return item.sender == self.peer
        return item.peer == self.peer and (item.recent or not item.finished)

    def show(self, snapshot: TransfersChanged) -> None:
        """Add, update and remove cards to match ``snapshot``."""
        wanted: dict[str, FileItem] = {}
        # Oldest first, so that cards made at once stand in the order the
        # files were sent; a download replaces its offer.
        for item in (*reversed(snapshot.offers), *reversed(snapshot.transfers)):
            if self._keep(item):
                wanted[card_key(item)] = item
        for key in set(self.items) - set(wanted):
            del self.items[key]
            self.transcript.drop_card(key)
        now_ms = int(time.time() * 1000)
        for key, item in wanted.items():
            if self.items.get(key) == item and self.transcript.card(key) is not None:
                continue
            self.items[key] = item
            card = self.transcript.card(key)
            if isinstance(card, FileCard):
                card.show(item)
                card.paint()
                continue
            sent_ms = item.sent_ms if isinstance(item, FileOfferEntry) else now_ms
            outgoing = isinstance(item, TransferEntry) and item.direction == "up"
            self.transcript.set_card(key, sent_ms, outgoing, self._make_card(key))
        self.order = self.transcript.card_order()

    def _make_card(self, key: str) -> Callable[[tk.Misc, int], FileCard]:
        def make(master: tk.Misc, width: int) -> FileCard:
            return FileCard(master, self.items[key], width, self.on_action)

        return make

    def on_action(self, item: FileItem, label: str) -> None:
        if isinstance(item, FileOfferEntry):
            if label == "Decline":
                self.controller.decline_file(item.file_id)
            else:
                self.controller.download(item.file_id)
        elif label == "Pause":
            self.controller.pause_transfer(item.id)
        elif label == "Resume":
            self.controller.resume_transfer(item.id)
        elif label == "Cancel":
            self.controller.cancel_transfer(item.id)
        elif label == "Open folder":
            self.set_message(open_in_folder(self._open_folder, Path(item.path)))
        elif label == "Open":
            self.set_message(open_in_folder(self._open_file, Path(item.path)))

    def set_message(self, text: str) -> None:
        """Show ``text`` under the transcript (why a file did not open); empty
        hides it."""
        self.message_var.set(text)
        if text:
            self.message_label.pack(anchor="w")
        else:
            self.message_label.pack_forget()

    # -- reading back ------------------------------------------------------------------

    def shown(self) -> list[tuple[str, str, str, list[str]]]:
        """(kind, name, detail, buttons) of every card, top to bottom in the
        transcript; ``kind`` is ``offer`` or ``transfer``."""
        result = []
        for key in self.transcript.card_order():
            card = self.transcript.card(key)
            if not isinstance(card, FileCard):
                continue
            item = card.item
            kind = "offer" if isinstance(item, FileOfferEntry) else "transfer"
            detail = item.sender if isinstance(item, FileOfferEntry) else card.detail()
            result.append((kind, item.name, detail, list(card.buttons)))
        return result

    def press(self, name: str, button: str) -> None:
        """Invoke ``button`` on the card of the file ``name`` (the newest such)."""
        for key in reversed(self.transcript.card_order()):
            card = self.transcript.card(key)
            if isinstance(card, FileCard) and card.item.name == name:
                card.buttons[button].invoke()
                return
        raise KeyError(name)
