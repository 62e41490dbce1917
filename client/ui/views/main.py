"""The main window's view: own profile header, friend requests, the friend
drawer with its filter, and the account menu."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable

import ttkbootstrap as ttk

from ...engine.model import ConnectionState, Person, RequestEntry, Roster
from ..controller import Controller
from ..errors import describe
from .dialogs import ChangePasswordDialog
from .drawer import FriendDrawer
from .images import ImageStore
from .invitations import Invitations
from .names import remember_names
from .people import PeopleDialog
from .profile import ProfileDialog

__all__ = ["MainView"]

HEADER_AVATAR = 56
REQUEST_AVATAR = 32
PRESENCE_LABELS = {"online": "● Online", "away": "● Away"}


class MainView(ttk.Frame):
    """Everything of the signed-in user but the chats.

    ``on_open_chat(username)`` opens a chat window, ``on_settings()`` the
    settings, ``on_transfers()`` the transfers window, ``on_meet()`` starts or
    joins a meeting and ``notify(title, text, level)`` shows a notice.
    """

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        images: ImageStore,
        me: Person,
        *,
        on_open_chat: Callable[[str], object],
        on_settings: Callable[[], object],
        on_transfers: Callable[[], object],
        on_meet: Callable[[], object],
        notify: Callable[[str, str, str], None],
    ) -> None:
        super().__init__(master)
        self.controller = controller
        self.images = images
        self.me = me
        self._on_open_chat = on_open_chat
        self._on_settings = on_settings
        self._on_transfers = on_transfers
        self._on_meet = on_meet
        self.in_meeting = False
        """Whether we are in a meeting (friends can then be invited to it)."""
        self._notify = notify
        self.name_var = tk.StringVar(self)
        self.mood_var = tk.StringVar(self)
        self.presence_var = tk.StringVar(self, "online")
        self.filter_var = tk.StringVar(self)
        self.banner_var = tk.StringVar(self)
        self.roster = Roster()
        self._shown_requests: tuple[RequestEntry, ...] = ()
        self.request_buttons: dict[str, dict[str, ttk.Button]] = {}
        """The Accept and Decline buttons of each incoming request, by username."""
        self.profile_dialog: ProfileDialog | None = None
        self.people_dialog: PeopleDialog | None = None
        self.password_dialog: ChangePasswordDialog | None = None
        self.create_header()
        self.create_banner()
        self.invitations = Invitations(self)
        self.invitations.pack(fill="x")
        self.create_requests()
        self.create_filter()
        self.create_drawer()
        self.create_context_menu()
        self.set_me(me)

    # -- layout ----------------------------------------------------------------------

    def create_header(self) -> None:
        header = ttk.Frame(self, padding=(14, 14, 14, 10))
        header.pack(fill="x")
        self._header = header
        self.avatar_label = ttk.Label(header, cursor="hand2")
        self.avatar_label.pack(side="left")
        self.avatar_label.bind("<Button-1>", lambda _e: self.on_edit_profile())
        names = ttk.Frame(header, padding=(12, 0, 0, 0))
        names.pack(side="left", fill="x", expand=True)
        self.name_label = ttk.Label(
            names, textvariable=self.name_var, font="-size 13 -weight bold"
        )
        self.name_label.pack(anchor="w")
        self.mood_label = ttk.Label(
            names, textvariable=self.mood_var, bootstyle="secondary", cursor="hand2"
        )
        self.mood_label.pack(anchor="w")
        self.mood_label.bind("<Button-1>", lambda _e: self.on_edit_profile())
        self.presence_button = ttk.Menubutton(
            names, bootstyle="success-ghost", text=PRESENCE_LABELS["online"]
        )
        presence_menu = ttk.Menu(self.presence_button, tearoff=False)
        for status, label in PRESENCE_LABELS.items():
            presence_menu.add_radiobutton(
                label=label.removeprefix("● "),
                value=status,
                variable=self.presence_var,
                command=self.on_presence,
            )
        self.presence_button.configure(menu=presence_menu)
        self.presence_button.pack(anchor="w")
        self.menu_button = ttk.Menubutton(
            header, text="☰", bootstyle="secondary-outline"
        )
        self.account_menu = ttk.Menu(self.menu_button, tearoff=False)
        self.account_menu.add_command(
            label="Edit profile…", command=self.on_edit_profile
        )
        self.account_menu.add_command(label="Add friend…", command=self.on_add_friend)
        self.account_menu.add_command(
            label="Transfers…", command=lambda: self._on_transfers()
        )
        self.account_menu.add_command(label="Settings…", command=self._on_settings)
        self.account_menu.add_separator()
        self.account_menu.add_command(
            label="Change password…", command=self.on_change_password
        )
        self.account_menu.add_command(label="Sign out", command=self.on_sign_out)
        self.menu_button.configure(menu=self.account_menu)
        self.menu_button.pack(side="right", anchor="n")

    def create_banner(self) -> None:
        self.banner = ttk.Label(
            self, textvariable=self.banner_var, bootstyle="@warning", padding=(14, 6)
        )

    def create_requests(self) -> None:
        self.requests_frame = ttk.Labelframe(
            self, text="Friend requests", padding=(10, 4)
        )

    def create_filter(self) -> None:
        bar = ttk.Frame(self, padding=(14, 0, 14, 8))
        bar.pack(fill="x")
        self.filter_entry = ttk.Entry(bar, textvariable=self.filter_var)
        self.filter_entry.pack(side="left", fill="x", expand=True)
        self.filter_entry.bind("<KeyRelease>", lambda _e: self.on_filter())
        self.filter_hint = ttk.Label(
            self.filter_entry, text="Search friends", bootstyle="secondary"
        )
        self.filter_hint.bind("<Button-1>", lambda _e: self.filter_entry.focus_set())
        self.filter_entry.bind(
            "<FocusIn>", lambda _e: self._show_filter_hint(), add="+"
        )
        self.filter_entry.bind(
            "<FocusOut>", lambda _e: self._show_filter_hint(), add="+"
        )
        self._show_filter_hint()
        self.add_button = ttk.Button(
            bar, text="Add friend", command=self.on_add_friend, bootstyle="primary"
        )
        self.add_button.pack(side="left", padx=(8, 0))
        self.meet_button = ttk.Button(
            bar, text="Meet", command=lambda: self._on_meet(), bootstyle="success"
        )
        self.meet_button.pack(side="left", padx=(6, 0))
        self._filter_bar = bar

    def create_drawer(self) -> None:
        ttk.Separator(self).pack(fill="x")
        self.drawer = FriendDrawer(
            self, self.images, self._on_open_chat, self.on_row_menu
        )
        self.drawer.pack(fill="both", expand=True)

    def create_context_menu(self) -> None:
        self.row_menu = ttk.Menu(self, tearoff=False)

    # -- updates from the app -------------------------------------------------------

    def set_me(self, me: Person) -> None:
        self.me = me
        self.name_var.set(me.name)
        self.mood_var.set(me.mood or "Set a mood…")
        self.avatar_label.configure(image=self.images.avatar(me, HEADER_AVATAR))

    def set_roster(self, roster: Roster) -> None:
        remember_names(self, roster)
        self.roster = roster
        self.drawer.set_roster(roster)
        if roster.incoming != self._shown_requests:
            self._render_requests(roster.incoming)
        if self.people_dialog is not None and self.people_dialog.winfo_exists():
            self.people_dialog.set_roster(roster)

    def show_invitation(
        self,
        room_id: str,
        inviter: str,
        on_join: Callable[[], object],
        on_decline: Callable[[], object],
    ) -> None:
        """A bar with Join and Decline for ``inviter``'s meeting ``room_id``."""
        self.invitations.show(room_id, inviter, on_join, on_decline)

    def set_connection(self, state: ConnectionState) -> None:
        if state.online:
            self.banner.pack_forget()
        else:
            self.banner_var.set(state.detail)
            self.banner.pack(fill="x", after=self._header)

    def _render_requests(self, incoming: tuple[RequestEntry, ...]) -> None:
        self._shown_requests = incoming
        self.request_buttons = {}
        for child in self.requests_frame.winfo_children():
            child.destroy()
        if not incoming:
            self.requests_frame.pack_forget()
            return
        self.requests_frame.configure(text=f"Friend requests ({len(incoming)})")
        for request in incoming:
            row = ttk.Frame(self.requests_frame, padding=(0, 4))
            row.pack(fill="x")
            ttk.Label(
                row, image=self.images.avatar(request.person, REQUEST_AVATAR)
            ).pack(side="left")
            text = ttk.Frame(row, padding=(8, 0))
            text.pack(side="left", fill="x", expand=True)
            ttk.Label(text, text=request.person.name, font="-weight bold").pack(
                anchor="w"
            )
            ttk.Label(
                text,
                text=request.note or f"@{request.person.username}",
                bootstyle="secondary",
            ).pack(anchor="w")
            username = request.person.username
            decline = ttk.Button(
                row,
                text="Decline",
                bootstyle="secondary-outline",
                command=lambda u=username: self.on_respond(u, False),
            )
            decline.pack(side="right")
            accept = ttk.Button(
                row,
                text="Accept",
                bootstyle="success",
                command=lambda u=username: self.on_respond(u, True),
            )
            accept.pack(side="right", padx=(0, 6))
            self.request_buttons[username] = {"Accept": accept, "Decline": decline}
        self.requests_frame.pack(
            fill="x", padx=14, pady=(0, 10), before=self._filter_bar
        )

    # -- handlers ----------------------------------------------------------------------

    def _show_filter_hint(self) -> None:
        focused = str(self.tk.call("focus")) == str(self.filter_entry)
        if self.filter_var.get() or focused:
            self.filter_hint.place_forget()
        else:
            self.filter_hint.place(x=8, rely=0.5, anchor="w")

    def on_filter(self) -> None:
        self._show_filter_hint()
        self.drawer.set_filter(self.filter_var.get())

    def on_presence(self) -> None:
        status = self.presence_var.get()
        self.presence_button.configure(
            text=PRESENCE_LABELS[status],
            bootstyle="success-ghost" if status == "online" else "warning-ghost",
        )
        self.controller.set_presence(status)

    def on_respond(self, username: str, accept: bool) -> None:
        self.controller.respond(username, accept)

    def on_row_menu(self, username: str, kind: str, x: int, y: int) -> None:
        menu = self.row_menu
        menu.delete(0, "end")
        if kind == "friend":
            menu.add_command(
                label="Open chat", command=lambda: self._on_open_chat(username)
            )
            if self.in_meeting:
                menu.add_command(
                    label="Invite to the meeting",
                    command=lambda: self.controller.invite(username),
                )
            menu.add_separator()
            menu.add_command(
                label="Remove friend",
                command=lambda: self.controller.remove_friend(username),
            )
            menu.add_command(
                label="Block", command=lambda: self.controller.block(username)
            )
        else:
            menu.add_command(
                label="Cancel request",
                command=lambda: self.controller.cancel_request(username),
            )
        menu.tk_popup(x, y)

    def on_edit_profile(self) -> None:
        if self.profile_dialog is not None and self.profile_dialog.winfo_exists():
            self.profile_dialog.lift()
            return
        self.profile_dialog = ProfileDialog(self, self.controller, self.images, self.me)

    def on_add_friend(self) -> None:
        if self.people_dialog is not None and self.people_dialog.winfo_exists():
            self.people_dialog.lift()
            return
        self.people_dialog = PeopleDialog(
            self, self.controller, self.images, self.me, self.roster
        )

    def on_change_password(self) -> None:
        if self.password_dialog is not None and self.password_dialog.winfo_exists():
            self.password_dialog.lift()
            return
        self.password_dialog = ChangePasswordDialog(self, self.on_password_submitted)

    def on_password_submitted(self, old: str, new: str) -> None:
        dialog = self.password_dialog
        assert dialog is not None

        def done(_result: object) -> None:
            dialog.destroy()
            self._notify(
                "Password changed", "Other devices were signed out.", "success"
            )

        self.controller.change_password(
            old, new, on_done=done, on_error=lambda e: dialog.on_failed(describe(e))
        )

    def on_sign_out(self) -> None:
        self.controller.sign_out()
