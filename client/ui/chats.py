"""The Tk side of conversations: one chat window per friend, opened on demand
and kept up to date with the roster, the conversation and the transfers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import ttkbootstrap as ttk

from ..engine.model import ConversationUpdate, PeerTyping, Roster, TransfersChanged
from .controller import Controller
from .views import ChatWindow, ImageStore

__all__ = ["Chats"]

CHAT_SIZE = (520, 640)


class Chats:
    """The open chat windows of ``root``, by friend.

    ``images()`` gives the current avatar store, ``notify(title, text, level)``
    shows a notice, ``open_folder(path)`` shows a file's folder,
    ``open_file(path)`` opens a received file and
    ``origin()`` says where a new window goes (x, y).
    """

    def __init__(
        self,
        root: ttk.Window,
        controller: Controller,
        *,
        images: Callable[[], ImageStore],
        notify: Callable[[str, str, str], None],
        open_folder: Callable[[Path], None],
        open_file: Callable[[Path], None],
        origin: Callable[[], tuple[int, int]],
    ) -> None:
        self.root = root
        self.controller = controller
        self._images = images
        self._notify = notify
        self._open_folder = open_folder
        self._open_file = open_file
        self._origin = origin
        self._windows: dict[str, ChatWindow] = {}
        self.drafts: dict[str, str] = {}
        """What was left in the composer of a closed chat, by friend."""
        self.roster = Roster()
        self.transfers = TransfersChanged()

    def __contains__(self, peer: object) -> bool:
        return peer in self._windows

    def __iter__(self) -> Iterator[str]:
        return iter(self._windows)

    def get(self, peer: str) -> ChatWindow | None:
        return self._windows.get(peer)

    def open(self, peer: str) -> ChatWindow | None:
        """Show the chat with ``peer`` (a friend), opening its window if needed."""
        window = self._windows.get(peer)
        if window is not None:
            window.deiconify()
            window.lift()
            return window
        friend = self.roster.friend(peer)
        if friend is None:
            return None
        window = ChatWindow(
            self.root,
            self.controller,
            self._images(),
            friend,
            self._notify,
            self._on_closed,
            self._open_folder,
            self._open_file,
        )
        window.view.set_transfers(self.transfers)
        window.view.set_draft(self.drafts.pop(peer, ""))
        x, y = self._origin()
        window.geometry(f"{CHAT_SIZE[0]}x{CHAT_SIZE[1]}+{x}+{y}")
        self._windows[peer] = window
        return window

    def _on_closed(self, peer: str, draft: str) -> None:
        """Forget the window and keep its unsent text for the next one."""
        self._windows.pop(peer, None)
        if draft.strip():
            self.drafts[peer] = draft

    def set_roster(self, roster: Roster) -> None:
        self.roster = roster
        for peer, window in self._windows.items():
            friend = roster.friend(peer)
            if friend is not None:
                window.view.set_friend(friend)

    def on_conversation(self, update: ConversationUpdate) -> None:
        window = self._windows.get(update.peer)
        if window is not None:
            window.view.apply(update)

    def on_typing(self, event: PeerTyping) -> None:
        window = self._windows.get(event.peer)
        if window is not None:
            window.view.set_typing(event.typing)

    def set_transfers(self, snapshot: TransfersChanged) -> None:
        self.transfers = snapshot
        for window in self._windows.values():
            window.view.set_transfers(snapshot)

    def reopen(self) -> None:
        """Tell a new engine which conversations are open and shown."""
        for peer, window in self._windows.items():
            self.controller.open_conversation(peer)
            if window.winfo_ismapped():
                self.controller.set_viewing(peer, True)

    def close_all(self) -> None:
        """Close every chat window (signed out)."""
        for peer in list(self._windows):
            self._windows.pop(peer).destroy()
        self.drafts.clear()
        self.roster = Roster()
        self.transfers = TransfersChanged()
