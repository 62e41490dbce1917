"""What the views of transfers share: the line that describes a transfer,
the styles of its progress bar, and opening a received file or its folder
(or saying why that is not possible). The transfers window is
:mod:`.transfer_table`, the cards in a chat :mod:`.filecards`."""

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
from ...engine.model import TransferEntry

__all__ = [
    "BAR_STYLES",
    "BAR_STYLE_MOVING",
    "CannotOpenFolder",
    "describe_transfer",
    "open_file",
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
    _desktop_open(folder, "the folder", folder)


def open_file(path: Path) -> None:
    """Open the file ``path`` with the desktop's program for it; raises
    :class:`CannotOpenFolder` when there is no way to."""
    if not path.is_file():
        raise CannotOpenFolder(f"The file {path} no longer exists.")
    _desktop_open(path, "the file", path.parent)


def _desktop_open(target: Path, what: str, folder: Path) -> None:
    if sys.platform == "win32":
        os.startfile(target)  # type: ignore[attr-defined]
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    program = shutil.which(opener)
    if program is None:
        raise CannotOpenFolder(
            f"Cannot open {what}: {opener} is not installed. The file is in {folder}"
        )
    try:
        subprocess.Popen(
            [program, str(target)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise CannotOpenFolder(
            f"Cannot open {what} ({exc.strerror}). The file is in {folder}"
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
