"""The transfers window: every transfer and waiting file as a row of a table
(name, peer, size, progress, rate, state), the actions of the selected row
under it, and a way to clear the finished ones from the list."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from pathlib import Path

import ttkbootstrap as ttk

from ...engine.backend.files import human_size
from ...engine.model import FileOfferEntry, TransferEntry, TransfersChanged
from ..controller import Controller
from .names import display_name
from .placement import OnScreen
from .transfers import open_in_folder

__all__ = ["COLUMNS", "TransfersTable", "TransfersWindow", "progress_text", "row_of"]

COLUMNS = (
    ("name", "Name", 170, True),
    ("peer", "Peer", 110, False),
    ("size", "Size", 80, False),
    ("progress", "Progress", 210, False),
    ("rate", "Rate", 150, False),
    ("state", "State", 110, False),
)
"""(key, heading, width in pixels, stretches) of each column."""
BAR_CELLS = 10


def progress_text(done: int, size: int) -> str:
    """A text progress bar with its percentage: ``██████░░░░  60 %``."""
    share = 1.0 if size <= 0 else min(1.0, done / size)
    full = round(share * BAR_CELLS)
    return "█" * full + "░" * (BAR_CELLS - full) + f"  {share * 100:.0f} %"


def _state(entry: TransferEntry) -> str:
    if entry.state == "done":
        if entry.direction == "down":
            return "saved"
        return "received" if entry.delivered else "sent"
    if entry.state == "active":
        if entry.checking:
            return "checking"
        return "sending" if entry.direction == "up" else "receiving"
    if entry.state == "failed" and entry.error:
        return f"failed: {entry.error}"
    return entry.state


def row_of(item: TransferEntry | FileOfferEntry, peer_name: str) -> tuple[str, ...]:
    """The cells of ``item``'s row, in :data:`COLUMNS` order."""
    if isinstance(item, FileOfferEntry):
        return (
            item.name,
            f"from {peer_name}",
            human_size(item.size),
            progress_text(0, item.size),
            "",
            "waiting for you",
        )
    rate = ""
    if item.state == "active" and item.rate_bps > 0:
        rate = f"{human_size(item.rate_bps)}/s"
        if item.eta_s is not None:
            rate += f" · {int(item.eta_s)} s left"
    done = item.size if item.state == "done" else item.done
    return (
        item.name,
        f"to {peer_name}" if item.direction == "up" else f"from {peer_name}",
        human_size(item.size),
        progress_text(done, item.size),
        rate,
        _state(item),
    )


def _actions(item: TransferEntry | FileOfferEntry) -> list[str]:
    if isinstance(item, FileOfferEntry):
        return ["Download"]
    if item.state == "active":
        return ["Pause", "Cancel"]
    if item.state in ("paused", "failed"):
        return ["Resume", "Cancel"]
    if item.state == "done":
        return ["Open folder"]
    return []


class TransfersTable(ttk.Frame):
    """The table and its buttons; ``opener(path)`` shows a file's folder."""

    def __init__(
        self, master: tk.Misc, controller: Controller, opener: Callable[[Path], None]
    ) -> None:
        super().__init__(master)
        self.controller = controller
        self.opener = opener
        self.items: dict[str, TransferEntry | FileOfferEntry] = {}
        self.cleared: set[int] = set()
        """Finished transfers the user cleared from the list."""
        self.message_var = tk.StringVar(self)
        self.snapshot = TransfersChanged()
        self.create_table()
        self.create_buttons()

    def create_table(self) -> None:
        frame = ttk.Frame(self)
        frame.pack(fill="both", expand=True)
        self.tree = ttk.Treeview(
            frame,
            columns=[key for key, *_ in COLUMNS],
            show="headings",
            selectmode="browse",
        )
        for key, heading, width, stretch in COLUMNS:
            self.tree.heading(key, text=heading, anchor="w")
            self.tree.column(key, width=width, minwidth=60, stretch=stretch)
        scrollbar = ttk.Scrollbar(frame, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=scrollbar.set)
        scrollbar.pack(side="right", fill="y")
        self.tree.pack(side="left", fill="both", expand=True)
        self.tree.bind("<<TreeviewSelect>>", lambda _e: self.update_buttons())
        self.tree.bind("<Double-1>", lambda _e: self.on_default_action())
        self.empty_label = ttk.Label(
            self, text="No transfers yet.", bootstyle="secondary"
        )

    def create_buttons(self) -> None:
        row = ttk.Frame(self, padding=(0, 8, 0, 0))
        row.pack(fill="x")
        self.buttons: dict[str, ttk.Button] = {}
        for label in ("Download", "Pause", "Resume", "Cancel", "Open folder"):
            button = ttk.Button(
                row,
                text=label,
                bootstyle="secondary-outline",
                command=lambda name=label: self.on_action(name),
            )
            button.pack(side="left", padx=(0, 4))
            self.buttons[label] = button
        self.clear_button = ttk.Button(
            row, text="Clear finished", command=self.on_clear, bootstyle="link"
        )
        self.clear_button.pack(side="right")
        ttk.Label(
            self,
            textvariable=self.message_var,
            bootstyle="danger",
            wraplength=560,
            justify="left",
        ).pack(anchor="w", pady=(6, 0))

    # -- updates -------------------------------------------------------------------

    def show(self, snapshot: TransfersChanged) -> None:
        """Show ``snapshot`` (rows kept and updated in place, newest first)."""
        self.snapshot = snapshot
        wanted: dict[str, TransferEntry | FileOfferEntry] = {
            f"offer:{o.file_id}": o for o in snapshot.offers
        }
        for entry in snapshot.transfers:
            if entry.id not in self.cleared:
                wanted[f"transfer:{entry.id}"] = entry
        for key in set(self.items) - set(wanted):
            self.tree.delete(key)
        for index, (key, item) in enumerate(wanted.items()):
            peer = item.sender if isinstance(item, FileOfferEntry) else item.peer
            cells = row_of(item, display_name(self, peer))
            if key in self.items:
                if self.items[key] != item:
                    self.tree.item(key, values=cells)
                if self.tree.index(key) != index:
                    self.tree.move(key, "", index)
            else:
                self.tree.insert("", index, iid=key, values=cells)
        self.items = wanted
        if wanted:
            self.empty_label.pack_forget()
        else:
            self.empty_label.pack(anchor="w", pady=8, before=self.tree.master)
        self.update_buttons()

    def selected(self) -> TransferEntry | FileOfferEntry | None:
        selection = self.tree.selection()
        return self.items.get(str(selection[0])) if selection else None

    def update_buttons(self) -> None:
        item = self.selected()
        allowed = _actions(item) if item is not None else []
        for label, button in self.buttons.items():
            button.configure(state="normal" if label in allowed else "disabled")
        finished = any(
            isinstance(i, TransferEntry) and i.finished for i in self.items.values()
        )
        self.clear_button.configure(state="normal" if finished else "disabled")

    # -- handlers --------------------------------------------------------------------

    def on_action(self, name: str) -> None:
        item = self.selected()
        if item is None or name not in _actions(item):
            return
        self.message_var.set("")
        if isinstance(item, FileOfferEntry):
            self.controller.download(item.file_id)
        elif name == "Pause":
            self.controller.pause_transfer(item.id)
        elif name == "Resume":
            self.controller.resume_transfer(item.id)
        elif name == "Cancel":
            self.controller.cancel_transfer(item.id)
        elif name == "Open folder":
            self.message_var.set(open_in_folder(self.opener, Path(item.path)))

    def on_default_action(self) -> None:
        item = self.selected()
        if item is not None and _actions(item):
            self.on_action(_actions(item)[0])

    def on_clear(self) -> None:
        """Take the finished transfers off the list (files stay where they are)."""
        self.cleared |= {
            i.id
            for i in self.items.values()
            if isinstance(i, TransferEntry) and i.finished
        }
        self.show(self.snapshot)

    # -- reading back ----------------------------------------------------------------

    def shown(self) -> list[tuple[str, ...]]:
        """The cells of every row, top to bottom."""
        return [
            tuple(str(v) for v in self.tree.item(key, "values"))
            for key in self.tree.get_children()
        ]

    def press(self, name: str, button: str) -> None:
        """Select the newest row of the file ``name`` and press ``button``."""
        for key in self.tree.get_children():
            if self.tree.set(key, "name") == name:
                self.tree.selection_set(key)
                self.update_buttons()
                self.buttons[button].invoke()
                return
        raise KeyError(name)


class TransfersWindow(OnScreen, ttk.Toplevel):
    """All transfers in a window of their own."""

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        snapshot: TransfersChanged,
        opener: Callable[[Path], None],
    ) -> None:
        super().__init__(
            master=master,
            title="Transfers — quicmeet",
            size=(900, 420),
            minsize=(560, 240),
        )
        self.panel = TransfersTable(self, controller, opener)
        self.panel.pack(fill="both", expand=True, padx=14, pady=14)
        self.panel.show(snapshot)
