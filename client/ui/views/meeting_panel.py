"""The meeting window's side panel: members with the host's controls and
invitations, and the meeting's chat."""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Callable

import ttkbootstrap as ttk

from ...engine.model import MeetingChanged, MeetingChatLine, Roster
from ..controller import Controller
from .theme import palette, style_text

__all__ = ["MeetingChat", "MembersPanel"]

HOST_ACTIONS = ("Make host", "Ask to mute", "Remove")


class MembersPanel(ttk.Labelframe):
    """Who is here (host, hands, microphones); the host's controls act on the
    selected member (``ask(title, text, action, then)`` confirms a removal);
    online friends can be invited."""

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        ask: Callable[[str, str, str, Callable[[], object]], None],
    ) -> None:
        super().__init__(master, text="Members", padding=8)
        self.controller = controller
        self._ask = ask
        self.meeting: MeetingChanged | None = None
        self.roster = Roster()
        self.locked_var = tk.BooleanVar(self, False)
        self.invite_var = tk.StringVar(self)
        self.invitable: dict[str, str] = {}
        """Online friends not in the meeting: username by the name shown."""
        self.create_list()
        self.create_host_controls()
        self.create_invite()

    def create_list(self) -> None:
        self.tree = ttk.Treeview(
            self, columns=("state",), show="tree", height=6, selectmode="browse"
        )
        self.tree.column("#0", width=150, stretch=True)
        self.tree.column("state", width=90, stretch=False, anchor="e")
        self.tree.pack(fill="both", expand=True)
        self.tree.bind("<<TreeviewSelect>>", lambda _e: self.update_controls())

    def create_host_controls(self) -> None:
        row = ttk.Frame(self, padding=(0, 6, 0, 0))
        row.pack(fill="x")
        self.host_buttons: dict[str, ttk.Button] = {}
        for label in HOST_ACTIONS:
            button = ttk.Button(
                row,
                text=label,
                bootstyle="secondary-outline",
                command=lambda name=label: self.on_host_action(name),
            )
            button.pack(side="left", padx=(0, 4))
            self.host_buttons[label] = button
        self.lock_check = ttk.Checkbutton(
            self,
            text="Lock the meeting",
            variable=self.locked_var,
            command=lambda: self.controller.lock_meeting(self.locked_var.get()),
            bootstyle="round-toggle",
        )
        self.lock_check.pack(anchor="w", pady=(6, 0))

    def create_invite(self) -> None:
        row = ttk.Frame(self, padding=(0, 8, 0, 0))
        row.pack(fill="x")
        self.invite_box = ttk.Combobox(
            row, textvariable=self.invite_var, state="readonly", width=16
        )
        self.invite_box.pack(side="left", fill="x", expand=True)
        self.invite_button = ttk.Button(
            row, text="Invite", command=self.on_invite, bootstyle="primary"
        )
        self.invite_button.pack(side="left", padx=(6, 0))

    # -- updates ---------------------------------------------------------------------

    def set_state(self, state: MeetingChanged) -> None:
        self.meeting = state
        selected = self.selected()
        self.tree.delete(*self.tree.get_children())
        for member in state.members:
            marks = []
            if member.host:
                marks.append("★ host")
            if member.hand_raised:
                marks.append("☝")
            if member.muted:
                marks.append("mic off")
            name = f"{member.name} (you)" if member.me else member.name
            self.tree.insert(
                "", "end", iid=member.username, text=name, values=(" ".join(marks),)
            )
        if selected in self.tree.get_children():
            self.tree.selection_set(selected)
        self.locked_var.set(state.locked)
        self.update_controls()
        self._offer_invites()

    def set_roster(self, roster: Roster) -> None:
        self.roster = roster
        self._offer_invites()

    def _offer_invites(self) -> None:
        present = {m.username for m in self.meeting.members} if self.meeting else set()
        self.invitable = {
            f.person.name: f.person.username
            for f in self.roster.friends
            if f.presence != "offline" and f.person.username not in present
        }
        labels = list(self.invitable)
        self.invite_box.configure(values=labels)
        if self.invite_var.get() not in labels:
            self.invite_var.set(labels[0] if labels else "")
        self.invite_button.configure(state="normal" if labels else "disabled")

    def selected(self) -> str | None:
        selection = self.tree.selection()
        return str(selection[0]) if selection else None

    def update_controls(self) -> None:
        me = self.meeting.me if self.meeting else None
        hosting = me is not None and me.host
        target = self.selected()
        other = target is not None and (me is None or target != me.username)
        for button in self.host_buttons.values():
            button.configure(state="normal" if hosting and other else "disabled")
        self.lock_check.configure(state="normal" if hosting else "disabled")

    def members(self) -> list[tuple[str, str]]:
        """(name, marks) of every member, as listed."""
        return [
            (str(self.tree.item(iid, "text")), str(self.tree.set(iid, "state")))
            for iid in self.tree.get_children()
        ]

    # -- handlers ------------------------------------------------------------------

    def on_host_action(self, name: str) -> None:
        username = self.selected()
        if username is None:
            return
        actions: dict[str, Callable[[str], object]] = {
            "Make host": self.controller.make_host,
            "Ask to mute": self.controller.ask_to_mute,
        }
        if name in actions:
            actions[name](username)
            return
        who = str(self.tree.item(username, "text"))
        self._ask(
            f"Remove {who}?",
            f"{who} will be taken out of the meeting.",
            "Remove",
            lambda: self.controller.remove_member(username),
        )

    def on_invite(self) -> None:
        username = self.invitable.get(self.invite_var.get())
        if username:
            self.controller.invite(username)


class MeetingChat(ttk.Labelframe):
    """The meeting's chat: lines as they come, and a line to send."""

    def __init__(self, master: tk.Misc, controller: Controller) -> None:
        super().__init__(master, text="Chat", padding=8)
        self.controller = controller
        self.entry_var = tk.StringVar(self)
        self.text = tk.Text(
            self, height=8, width=30, wrap="word", state="disabled", relief="flat"
        )
        self.text.pack(fill="both", expand=True)
        style_text(self.text)
        self.text.tag_configure("who", font="-weight bold")
        self.configure_tags()
        self.text.bind("<<ThemeChanged>>", lambda _e: self.configure_tags(), add="+")
        self.entry = ttk.Entry(self, textvariable=self.entry_var)
        self.entry.pack(fill="x", pady=(6, 0))
        self.entry.bind("<Return>", lambda _e: self.on_send())
        self.lines: list[MeetingChatLine] = []

    def configure_tags(self) -> None:
        self.text.tag_configure("when", foreground=palette().muted, font="-size 8")

    def add(self, line: MeetingChatLine) -> None:
        self.lines.append(line)
        when = time.strftime("%H:%M", time.localtime(line.sent_ms / 1000))
        who = "You" if line.me else line.name
        self.text.configure(state="normal")
        self.text.insert("end", f"{who} ", ("who",))
        self.text.insert("end", f"{when}\n", ("when",))
        self.text.insert("end", f"{line.text}\n")
        self.text.configure(state="disabled")
        self.text.see("end")

    def on_send(self) -> None:
        text = self.entry_var.get().strip()
        if text:
            self.entry_var.set("")
            self.controller.meeting_chat(text)
