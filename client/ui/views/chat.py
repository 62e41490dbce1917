"""A chat window per friend: header with presence and typing indicator, the
transcript with paging, search, and the composer."""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import filedialog

import ttkbootstrap as ttk

from ...engine.model import (
    ConversationUpdate,
    FriendEntry,
    Person,
    TransfersChanged,
)
from ...store import LocalMessage
from ..controller import Controller
from ..errors import describe
from .filecards import FileCards
from .images import ImageStore
from .placement import OnScreen
from .search import SearchResults
from .theme import style_text
from .transcript import Transcript

__all__ = ["ChatView", "ChatWindow"]

HEADER_AVATAR = 40
PRESENCE_TEXT = {"online": "online", "away": "away", "offline": "offline"}


class ChatView(ttk.Frame):
    """The conversation with one friend, and the files sent both ways."""

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        images: ImageStore,
        friend: FriendEntry,
        notify: Callable[[str, str, str], None],
        opener: Callable[[Path], None],
        file_opener: Callable[[Path], None],
    ) -> None:
        super().__init__(master)
        self.controller = controller
        self.images = images
        self.friend = friend
        self.peer = friend.person.username
        self._notify = notify
        self._opener = opener
        self._file_opener = file_opener
        self.status_var = tk.StringVar(self)
        self.search_var = tk.StringVar(self)
        self.search_status_var = tk.StringVar(self)
        self.composer_error_var = tk.StringVar(self)
        self.typing = False
        self.create_header()
        self.create_search()
        self.create_composer()
        self.create_transcript()
        self.create_files()
        self.set_friend(friend)

    # -- layout ------------------------------------------------------------------------

    def create_header(self) -> None:
        header = ttk.Frame(self, padding=(12, 10))
        header.pack(fill="x")
        self.avatar_label = ttk.Label(header)
        self.avatar_label.pack(side="left")
        names = ttk.Frame(header, padding=(10, 0))
        names.pack(side="left", fill="x", expand=True)
        self.name_label = ttk.Label(names, font="-size 12 -weight bold")
        self.name_label.pack(anchor="w")
        self.status_label = ttk.Label(
            names, textvariable=self.status_var, bootstyle="secondary"
        )
        self.status_label.pack(anchor="w")
        self.search_button = ttk.Button(
            header,
            text="Search",
            command=self.on_toggle_search,
            bootstyle="secondary-outline",
        )
        self.search_button.pack(side="right")
        ttk.Separator(self).pack(fill="x")

    def create_search(self) -> None:
        self.search_frame = ttk.Frame(self, padding=(12, 8))
        row = ttk.Frame(self.search_frame)
        row.pack(fill="x")
        self.search_entry = ttk.Entry(row, textvariable=self.search_var)
        self.search_entry.pack(side="left", fill="x", expand=True)
        self.search_entry.bind("<Return>", lambda _e: self.on_search())
        self.search_entry.bind("<Escape>", lambda _e: self.on_toggle_search())
        ttk.Button(row, text="Find", command=self.on_search).pack(
            side="left", padx=(6, 0)
        )
        self.results = SearchResults(self.search_frame, on_pick=self.on_result_picked)
        self.results.pack(fill="x", pady=(6, 0))
        ttk.Label(
            self.search_frame,
            textvariable=self.search_status_var,
            bootstyle="secondary",
        ).pack(anchor="w")

    def create_transcript(self) -> None:
        self.transcript = Transcript(
            self, peer_name=self.friend.person.name, on_need_older=self.on_need_older
        )
        self.transcript.pack(fill="both", expand=True)

    def create_composer(self) -> None:
        composer = ttk.Frame(self, padding=(12, 8, 12, 12))
        composer.pack(side="bottom", fill="x")
        self.composer_error = ttk.Label(
            self,
            textvariable=self.composer_error_var,
            bootstyle="danger",
            wraplength=460,
            justify="left",
            padding=(12, 6, 12, 0),
        )
        ttk.Separator(self).pack(side="bottom", fill="x")
        buttons = ttk.Frame(composer)
        buttons.pack(side="right", fill="y", padx=(8, 0))
        self.composer = tk.Text(
            composer,
            width=1,
            height=3,
            wrap="word",
            undo=True,
            relief="flat",
            padx=6,
            pady=4,
        )
        self.composer.pack(side="left", fill="both", expand=True)
        style_text(self.composer)
        self.composer.bind("<Return>", self.on_return)
        self.composer.bind("<KeyPress>", self.on_key, add="+")
        self.send_button = ttk.Button(
            buttons, text="Send", command=self.on_send, bootstyle="primary"
        )
        self.send_button.pack(fill="x")
        self.file_button = ttk.Button(
            buttons,
            text="File…",
            command=self.on_choose_file,
            bootstyle="secondary-outline",
        )
        self.file_button.pack(fill="x", pady=(4, 0))

    def create_files(self) -> None:
        """The files sent both ways, as cards in the transcript; why one did not
        open shows between transcript and composer."""
        self.files = FileCards(
            self,
            self.controller,
            self.transcript,
            self.peer,
            open_folder=self._opener,
            open_file=self._file_opener,
        )
        self.files.pack(side="bottom", fill="x", before=self.transcript)

    # -- updates from the app ----------------------------------------------------------

    def set_friend(self, friend: FriendEntry) -> None:
        self.friend = friend
        person: Person = friend.person
        self.name_label.configure(text=person.name)
        self.winfo_toplevel().title(f"{person.name} — quicmeet")
        self.avatar_label.configure(
            image=self.images.avatar(person, HEADER_AVATAR, friend.presence)
        )
        self.transcript.set_peer_name(person.name)
        self._show_status()

    def set_typing(self, typing: bool) -> None:
        self.typing = typing
        self._show_status()

    def _show_status(self) -> None:
        if self.typing:
            self.status_var.set(f"{self.friend.person.name} is typing…")
            self.status_label.configure(bootstyle="primary")
            return
        self.status_label.configure(bootstyle="secondary")
        status = PRESENCE_TEXT[self.friend.presence]
        if self.friend.presence == "offline" and self.friend.last_seen_ms:
            seen = time.strftime(
                "%Y-%m-%d %H:%M", time.localtime(self.friend.last_seen_ms / 1000)
            )
            status = f"offline · last seen {seen}"
        mood = self.friend.person.mood
        self.status_var.set(f"{status} · {mood}" if mood else status)

    def apply(self, update: ConversationUpdate) -> None:
        if update.reset:
            self.transcript.reset(update.messages, update.has_more)
        elif update.older:
            self.transcript.prepend(update.messages, update.has_more)
        else:
            self.transcript.upsert(update.messages)

    # -- handlers ----------------------------------------------------------------------

    def set_transfers(self, snapshot: TransfersChanged) -> None:
        self.files.show(snapshot)

    def on_return(self, event: tk.Event) -> str | None:
        if isinstance(event.state, int) and event.state & 0x0001:  # Shift: new line
            return None
        self.on_send()
        return "break"

    def on_key(self, event: tk.Event) -> None:
        if event.char and event.char.isprintable():
            self.controller.typing(self.peer)
            self.show_composer_error("")

    def on_send(self) -> None:
        text = self.composer.get("1.0", "end-1c").strip()
        if not text:
            return
        self.composer.delete("1.0", "end")
        self.show_composer_error("")
        self.controller.send_message(
            self.peer, text, on_error=lambda error: self.on_send_failed(text, error)
        )

    def on_send_failed(self, text: str, error: BaseException) -> None:
        """Put the draft back in the composer (before anything typed since) and
        say why under the transcript, where the user is typing."""
        if not self.winfo_exists():
            self._notify("Message not sent", describe(error), "danger")
            return
        typed = self.composer.get("1.0", "end-1c")
        if typed.strip() != text:
            self.composer.insert("1.0", text + ("\n" if typed.strip() else ""))
        self.show_composer_error(f"Not sent: {describe(error)}")
        self.composer.focus_set()

    def set_draft(self, text: str) -> None:
        """Put ``text`` (a draft kept from before) in the composer."""
        self.composer.delete("1.0", "end")
        self.composer.insert("1.0", text)

    def show_composer_error(self, message: str) -> None:
        """Show ``message`` above the composer (hidden when empty)."""
        if message == self.composer_error_var.get():
            return
        self.composer_error_var.set(message)
        if message:
            self.composer_error.pack(side="bottom", fill="x", before=self.files)
        else:
            self.composer_error.pack_forget()

    def on_choose_file(self) -> None:
        path = filedialog.askopenfilename(
            parent=self, title=f"Send a file to {self.friend.person.name}"
        )
        if path:
            self.on_file_chosen(Path(path))

    def on_file_chosen(self, path: Path) -> None:
        self.controller.send_file(self.peer, path, on_error=self.on_file_failed)

    def on_file_failed(self, error: BaseException) -> None:
        if not self.winfo_exists():
            self._notify("File not sent", describe(error), "danger")
            return
        self.show_composer_error(f"File not sent: {describe(error)}")

    def on_need_older(self) -> None:
        self.controller.older_messages(self.peer)

    def on_toggle_search(self) -> None:
        if self.search_frame.winfo_ismapped():
            self.search_frame.pack_forget()
            self.composer.focus_set()
        else:
            self.search_frame.pack(fill="x", before=self.transcript)
            self.search_entry.focus_set()

    def on_search(self) -> None:
        text = self.search_var.get().strip()
        if not text:
            return
        self.search_status_var.set("Searching…")
        self.controller.search_messages(self.peer, text, on_done=self.on_search_results)

    def on_search_results(self, results: list[LocalMessage]) -> None:
        if not self.winfo_exists():
            return
        self.results.show(
            results, self.search_var.get().strip(), self.friend.person.name
        )
        count = len(results)
        self.search_status_var.set(
            "No messages found."
            if not count
            else f"{count} message{'s' if count > 1 else ''}"
        )

    def on_result_picked(self, message_id: int) -> None:
        self.controller.load_until(
            self.peer, message_id, on_done=lambda _r: self.transcript.reveal(message_id)
        )


class ChatWindow(OnScreen, ttk.Toplevel):
    """The window around a :class:`ChatView`; ``on_closed(peer, draft)`` when
    closed (``draft``: the composer's unsent text),
    ``opener(path)`` shows a file's folder, ``file_opener(path)`` opens a
    received file."""

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        images: ImageStore,
        friend: FriendEntry,
        notify: Callable[[str, str, str], None],
        on_closed: Callable[[str, str], None],
        opener: Callable[[Path], None],
        file_opener: Callable[[Path], None],
    ) -> None:
        super().__init__(
            master=master,
            title=f"{friend.person.name} — quicmeet",
            size=(520, 640),
            minsize=(380, 420),
        )
        self.controller = controller
        self.peer = friend.person.username
        self._on_closed = on_closed
        self.view = ChatView(
            self, controller, images, friend, notify, opener, file_opener
        )
        self.view.pack(fill="both", expand=True)
        self.protocol("WM_DELETE_WINDOW", self.on_window_close)
        self.bind("<Map>", lambda e: self.on_visibility(e, True), add="+")
        self.bind("<Unmap>", lambda e: self.on_visibility(e, False), add="+")
        controller.open_conversation(self.peer)
        self.view.composer.focus_set()

    def on_visibility(self, event: tk.Event, visible: bool) -> None:
        if event.widget is self:
            self.controller.set_viewing(self.peer, visible)

    def on_window_close(self) -> None:
        draft = self.view.composer.get("1.0", "end-1c")
        self.controller.set_viewing(self.peer, False)
        self.controller.close_conversation(self.peer)
        self.destroy()
        self._on_closed(self.peer, draft)
