"""Finding people by name and asking them to be friends."""

from __future__ import annotations

import tkinter as tk

import ttkbootstrap as ttk

from ...engine.model import Person, Roster
from ..controller import Controller
from ..errors import describe
from .dialogs import Dialog
from .images import ImageStore

__all__ = ["PeopleDialog"]


class PeopleDialog(Dialog):
    """Search users by name prefix (paged), pick one, add a note, send."""

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        images: ImageStore,
        me: Person,
        roster: Roster,
    ) -> None:
        super().__init__(master, "Add a friend")
        self.controller = controller
        self.images = images
        self.me = me
        self.roster = roster
        self.query_var = tk.StringVar(self)
        self.note_var = tk.StringVar(self)
        self.status_var = tk.StringVar(self)
        self.results: list[Person] = []
        self.next_after: str | None = None
        self._query = ""
        self.create_search()
        self.create_results()
        self.create_note()
        self.send_button = self.add_button("Send request", self.on_send)
        self.add_button("Close", self.on_cancel, "secondary")
        self.on_selection()
        self.show()
        self.query_entry.focus_set()

    def create_search(self) -> None:
        row = ttk.Frame(self.body)
        row.pack(fill="x")
        self.query_entry = ttk.Entry(row, textvariable=self.query_var, width=30)
        self.query_entry.pack(side="left", fill="x", expand=True)
        self.query_entry.bind("<Return>", lambda _e: self.on_search())
        ttk.Button(row, text="Search", command=self.on_search).pack(
            side="left", padx=(8, 0)
        )

    def create_results(self) -> None:
        frame = ttk.Frame(self.body)
        frame.pack(fill="both", expand=True, pady=(10, 0))
        self.tree = ttk.Treeview(
            frame,
            columns=("username", "status"),
            show="tree headings",
            height=7,
            selectmode="browse",
        )
        self.tree.heading("#0", text="Name")
        self.tree.heading("username", text="Username")
        self.tree.heading("status", text="")
        self.tree.column("#0", width=190)
        self.tree.column("username", width=130)
        self.tree.column("status", width=90)
        self.tree.pack(fill="both", expand=True)
        self.tree.bind("<<TreeviewSelect>>", lambda _e: self.on_selection())
        self.tree.bind("<Double-Button-1>", lambda _e: self.on_send())
        more_row = ttk.Frame(self.body)
        more_row.pack(fill="x")
        self.more_button = ttk.Button(
            more_row, text="More results", command=self.on_more, bootstyle="link"
        )

    def create_note(self) -> None:
        ttk.Label(self.body, text="Note (optional)").pack(anchor="w", pady=(10, 0))
        self.note_entry = ttk.Entry(self.body, textvariable=self.note_var)
        self.note_entry.pack(fill="x", pady=(2, 0))
        ttk.Label(
            self.body,
            textvariable=self.status_var,
            wraplength=400,
            bootstyle="secondary",
        ).pack(anchor="w", pady=(8, 0))

    def set_roster(self, roster: Roster) -> None:
        self.roster = roster
        self._show(self.results)

    def _status_of(self, username: str) -> str:
        if username == self.me.username:
            return "you"
        if self.roster.friend(username) is not None:
            return "friend"
        if any(r.person.username == username for r in self.roster.outgoing):
            return "requested"
        if any(r.person.username == username for r in self.roster.incoming):
            return "asked you"
        return ""

    def _show(self, people: list[Person]) -> None:
        selected = self.selected()
        self.tree.delete(*self.tree.get_children())
        for person in people:
            self.tree.insert(
                "",
                "end",
                iid=person.username,
                text=person.name,
                values=(person.username, self._status_of(person.username)),
            )
        if selected in self.tree.get_children():
            self.tree.selection_set(selected)
        if self.next_after is not None:
            self.more_button.pack(anchor="w")
        else:
            self.more_button.pack_forget()
        self.on_selection()

    def selected(self) -> str | None:
        selection = self.tree.selection()
        return str(selection[0]) if selection else None

    # -- handlers -------------------------------------------------------------------

    def on_search(self) -> None:
        self._query = self.query_var.get().strip()
        if not self._query:
            return
        self.status_var.set("Searching…")
        self.controller.search_people(self._query, on_done=self.on_results)

    def on_more(self) -> None:
        self.controller.search_people(
            self._query,
            self.next_after,
            on_done=lambda page: self.on_results(page, more=True),
        )

    def on_results(
        self, page: tuple[list[Person], str | None], more: bool = False
    ) -> None:
        if not self.winfo_exists():
            return
        people, self.next_after = page
        self.results = self.results + people if more else people
        self.status_var.set("" if self.results else "Nobody by that name.")
        self._show(self.results)

    def on_selection(self) -> None:
        username = self.selected()
        can_send = username is not None and self._status_of(username) in (
            "",
            "asked you",
        )
        self.send_button.configure(state="normal" if can_send else "disabled")

    def on_send(self) -> None:
        username = self.selected()
        if username is None or str(self.send_button.cget("state")) == "disabled":
            return
        self.send_button.configure(state="disabled")
        self.controller.request_friend(
            username,
            self.note_var.get().strip(),
            on_done=lambda _r: self.on_sent(username),
            on_error=self.on_failed,
        )

    def on_sent(self, username: str) -> None:
        if self.winfo_exists():
            self.status_var.set(f"Request sent to {username}.")

    def on_failed(self, error: BaseException) -> None:
        if self.winfo_exists():
            self.status_var.set(describe(error))
            self.on_selection()
