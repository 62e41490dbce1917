"""Transfers: every upload and download with a progress bar, rate, time left
and its actions, and the files friends sent that wait to be downloaded.

:class:`TransfersPanel` shows a :class:`~client.engine.model.TransfersChanged`
snapshot, filtered as its owner wants: all of it in the transfers window, one
friend's in a chat window. Rows are kept and updated in place, so ten
snapshots a second cost a few label and progress-bar updates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tkinter as tk
from collections.abc import Callable
from pathlib import Path

import ttkbootstrap as ttk

from ...engine.backend.files import human_size
from ...engine.model import FileOfferEntry, TransferEntry, TransfersChanged
from ..controller import Controller
from .names import display_name

__all__ = [
    "CannotOpenFolder",
    "TransfersPanel",
    "describe_transfer",
    "open_folder",
    "open_in_folder",
    "prepare_styles",
]

STATE_TEXT = {
    "paused": "paused",
    "failed": "failed",
    "cancelled": "cancelled",
}


class CannotOpenFolder(Exception):
    """The folder could not be shown; the message says why and where it is."""


def open_folder(path: Path) -> None:
    """Show ``path``'s folder in the desktop's file manager; raises
    :class:`CannotOpenFolder` when there is no way to."""
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        raise CannotOpenFolder(f"The folder {folder} no longer exists.")
    if sys.platform == "win32":
        os.startfile(folder)  # type: ignore[attr-defined]
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    program = shutil.which(opener)
    if program is None:
        raise CannotOpenFolder(
            f"Cannot open the folder: {opener} is not installed. "
            f"The file is in {folder}"
        )
    try:
        subprocess.Popen(
            [program, str(folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise CannotOpenFolder(
            f"Cannot open the folder ({exc.strerror}). The file is in {folder}"
        ) from exc


def open_in_folder(opener: Callable[[Path], None], path: Path) -> str:
    """Call ``opener(path)``; the sentence to show when it could not (else "")."""
    try:
        opener(path)
    except CannotOpenFolder as exc:
        return str(exc)
    return ""


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def describe_transfer(entry: TransferEntry, peer_name: str = "") -> str:
    """The line under a transfer's name: direction, peer (``peer_name``, else
    the username), amounts, rate, time."""
    peer = peer_name or entry.peer
    arrow = f"↑ to {peer}" if entry.direction == "up" else f"↓ from {peer}"
    size = human_size(entry.size)
    if entry.state == "done":
        if entry.direction == "up":
            status = "received" if entry.delivered else "sent"
            if entry.instant:
                status += " (the server had it already)"
        else:
            status = f"saved in {Path(entry.path).parent}" if entry.path else "saved"
        return f"{arrow} · {size} · {status}"
    amount = f"{human_size(entry.done)} of {size}"
    parts = [arrow, f"checking the file: {amount}" if entry.checking else amount]
    if entry.state == "active":
        if entry.rate_bps > 0:
            parts.append(f"{human_size(entry.rate_bps)}/s")
        if entry.eta_s is not None:
            parts.append(f"{_duration(entry.eta_s)} left")
    else:
        parts.append(STATE_TEXT.get(entry.state, entry.state))
    if entry.error:
        parts.append(entry.error)
    return " · ".join(parts)


BAR_STYLE_MOVING = "primary-striped"
"""The bar of a transfer that may still move. ttkbootstrap draws a striped
bar from a small tile, but a solid one anew at every change of its value:
4-6 ms of the Tk thread against 0.1 ms, ten times a second per transfer
(measured under Xvfb)."""
BAR_STYLES = {"done": "success", "failed": "danger", "cancelled": "secondary"}
"""Bars that no longer move, in their final colour."""


def prepare_styles(master: tk.Misc) -> None:
    """Build the transfer rows' styles now, in the current theme. ttkbootstrap
    builds a style the first time a widget asks for it, 2-7 ms of the Tk
    thread each (measured under Xvfb); without this, that cost falls on the
    moment the first transfer starts, and again as it ends."""
    for style in (BAR_STYLE_MOVING, *BAR_STYLES.values()):
        ttk.Progressbar(master, bootstyle=style).destroy()
    for style in ("secondary-outline", "primary"):
        ttk.Button(master, bootstyle=style).destroy()
    ttk.Label(master, bootstyle="secondary").destroy()


class _TransferRow(ttk.Frame):
    """One transfer: name, progress bar, details and the actions its state allows."""

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        opener: Callable[[Path], None],
        entry: TransferEntry,
        on_message: Callable[[str], None],
    ) -> None:
        super().__init__(master, padding=(0, 6))
        self.controller = controller
        self._opener = opener
        self._on_message = on_message
        self.entry = entry
        self.detail_var = tk.StringVar(self)
        self.name_label = ttk.Label(self, text=entry.name, font="-weight bold")
        self.name_label.grid(row=0, column=0, sticky="w")
        self.actions = ttk.Frame(self)
        self.actions.grid(row=0, column=1, rowspan=3, sticky="e", padx=(8, 0))
        self.bar = ttk.Progressbar(self, maximum=max(1, entry.size))
        self._bar_style = ""
        self.bar.grid(row=1, column=0, sticky="ew", pady=2)
        ttk.Label(
            self, textvariable=self.detail_var, bootstyle="secondary", font="-size 9"
        ).grid(row=2, column=0, sticky="w")
        self.columnconfigure(0, weight=1)
        self.buttons: dict[str, ttk.Button] = {}
        self._actions_for = ""
        self.show(entry)

    def show(self, entry: TransferEntry) -> None:
        self.entry = entry
        self.bar.configure(value=entry.size if entry.state == "done" else entry.done)
        self.detail_var.set(describe_transfer(entry, display_name(self, entry.peer)))
        bar_style = BAR_STYLES.get(entry.state, BAR_STYLE_MOVING)
        if bar_style != self._bar_style:
            self._bar_style = bar_style
            self.bar.configure(bootstyle=bar_style)
        actions = self._actions(entry)
        if "-".join(actions) != self._actions_for:
            self._actions_for = "-".join(actions)
            for button in self.buttons.values():
                button.destroy()
            self.buttons = {}
            for label in actions:
                button = ttk.Button(
                    self.actions,
                    text=label,
                    bootstyle="secondary-outline" if label != "Resume" else "primary",
                    command=lambda name=label: self.on_action(name),
                )
                button.pack(side="left", padx=(4, 0))
                self.buttons[label] = button

    @staticmethod
    def _actions(entry: TransferEntry) -> list[str]:
        if entry.state == "active":
            return ["Pause", "Cancel"]
        if entry.state in ("paused", "failed"):
            return ["Resume", "Cancel"]
        if entry.state == "done":
            return ["Open folder"]
        return []

    def on_action(self, name: str) -> None:
        transfer_id = self.entry.id
        if name == "Pause":
            self.controller.pause_transfer(transfer_id)
        elif name == "Resume":
            self.controller.resume_transfer(transfer_id)
        elif name == "Cancel":
            self.controller.cancel_transfer(transfer_id)
        elif name == "Open folder":
            self._on_message(open_in_folder(self._opener, Path(self.entry.path)))


class _OfferRow(ttk.Frame):
    """A file waiting for us, with its Download button."""

    def __init__(
        self, master: tk.Misc, controller: Controller, offer: FileOfferEntry
    ) -> None:
        super().__init__(master, padding=(0, 6))
        self.offer = offer
        text = ttk.Frame(self)
        text.pack(side="left", fill="x", expand=True)
        ttk.Label(text, text=offer.name, font="-weight bold").pack(anchor="w")
        ttk.Label(
            text,
            text=f"↓ from {display_name(self, offer.sender)} · "
            f"{human_size(offer.size)} · waiting for you",
            bootstyle="secondary",
            font="-size 9",
        ).pack(anchor="w")
        self.download_button = ttk.Button(
            self,
            text="Download",
            bootstyle="primary",
            command=lambda: controller.download(offer.file_id),
        )
        self.download_button.pack(side="right")


class TransfersPanel(ttk.Frame):
    """Rows for the offers and transfers that ``keep`` accepts, newest first."""

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        *,
        opener: Callable[[Path], None] = open_folder,
        keep: Callable[[TransferEntry | FileOfferEntry], bool] = lambda _e: True,
        empty_text: str = "",
    ) -> None:
        super().__init__(master)
        self.controller = controller
        self.opener = opener
        self._keep = keep
        self.rows: dict[str, _TransferRow | _OfferRow] = {}
        self.order: list[str] = []
        self.empty_label = ttk.Label(self, text=empty_text, bootstyle="secondary")
        if empty_text:
            self.empty_label.pack(anchor="w", pady=8)
        self.message_var = tk.StringVar(self)
        self.message_label = ttk.Label(
            self,
            textvariable=self.message_var,
            bootstyle="danger",
            wraplength=460,
            justify="left",
        )

    def set_message(self, text: str) -> None:
        """Show ``text`` under the rows (why a folder did not open); empty hides."""
        self.message_var.set(text)
        if text:
            self.message_label.pack(side="bottom", anchor="w", pady=(2, 4))
        else:
            self.message_label.pack_forget()

    def show(self, snapshot: TransfersChanged) -> None:
        wanted: list[tuple[str, TransferEntry | FileOfferEntry]] = [
            (f"offer:{o.file_id}", o) for o in snapshot.offers if self._keep(o)
        ] + [(f"transfer:{t.id}", t) for t in snapshot.transfers if self._keep(t)]
        keys = [key for key, _ in wanted]
        for key in set(self.rows) - set(keys):
            self.rows.pop(key).destroy()
        for key, item in wanted:
            row = self.rows.get(key)
            if isinstance(item, TransferEntry):
                if isinstance(row, _TransferRow):
                    if row.entry != item:
                        row.show(item)
                else:
                    self.rows[key] = _TransferRow(
                        self, self.controller, self.opener, item, self.set_message
                    )
            elif row is None:
                self.rows[key] = _OfferRow(self, self.controller, item)
        if keys != self.order:
            self.order = keys
            for row in self.rows.values():
                row.pack_forget()
            for key in keys:
                self.rows[key].pack(fill="x")
        if self.empty_label.cget("text"):
            if keys:
                self.empty_label.pack_forget()
            else:
                self.empty_label.pack(anchor="w", pady=8)

    def shown(self) -> list[tuple[str, str, str, list[str]]]:
        """(kind, name, detail, buttons) of every row, top to bottom."""
        result = []
        for key in self.order:
            row = self.rows[key]
            if isinstance(row, _TransferRow):
                result.append(
                    (
                        "transfer",
                        row.entry.name,
                        row.detail_var.get(),
                        list(row.buttons),
                    )
                )
            else:
                result.append(("offer", row.offer.name, row.offer.sender, ["Download"]))
        return result

    def press(self, name: str, button: str) -> None:
        """Invoke ``button`` on the row of the file ``name`` (the newest such)."""
        for key in self.order:
            row = self.rows[key]
            if isinstance(row, _TransferRow) and row.entry.name == name:
                row.buttons[button].invoke()
                return
            if isinstance(row, _OfferRow) and row.offer.name == name:
                row.download_button.invoke()
                return
        raise KeyError(name)
