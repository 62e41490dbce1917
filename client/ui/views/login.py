"""The sign-in and create-account view, with the certificate confirmation."""

from __future__ import annotations

import tkinter as tk

import ttkbootstrap as ttk

from ...engine.model import ServerIdentity
from ...errors import CertificateMismatch
from ..controller import Controller
from ..errors import UntrustedCertificate, describe
from .dialogs import CertificateChangedDialog, FingerprintDialog

__all__ = ["LoginView"]


class LoginView(ttk.Frame):
    """Server address, username and password; signs in or creates an account.

    A first connection to a server shows its fingerprint for confirmation; a
    changed certificate shows both fingerprints and goes no further.
    """

    def __init__(
        self,
        master: tk.Misc,
        controller: Controller,
        *,
        server: str,
        username: str,
    ) -> None:
        super().__init__(master, padding=40)
        self.controller = controller
        self.server_var = tk.StringVar(self, server)
        self.username_var = tk.StringVar(self, username)
        self.password_var = tk.StringVar(self)
        self.confirm_var = tk.StringVar(self)
        self.register_var = tk.BooleanVar(self, False)
        self.status_var = tk.StringVar(self)
        self.dialog: FingerprintDialog | CertificateChangedDialog | None = None
        self.create_header()
        self.create_form()
        self.create_actions()
        self.on_mode_changed()

    # -- layout --------------------------------------------------------------------

    def create_header(self) -> None:
        ttk.Label(
            self, text="quicmeet", font="-size 24 -weight bold", bootstyle="primary"
        ).pack(anchor="w")
        self.subtitle = ttk.Label(self, bootstyle="secondary")
        self.subtitle.pack(anchor="w", pady=(0, 20))

    def create_form(self) -> None:
        form = ttk.Frame(self)
        form.pack(fill="x")
        form.columnconfigure(0, weight=1)
        self.server_entry = self._field(form, 0, "Server", self.server_var)
        self.username_entry = self._field(form, 2, "Username", self.username_var)
        self.password_entry = self._field(form, 4, "Password", self.password_var, "•")
        self.confirm_label = ttk.Label(form, text="Password again")
        self.confirm_entry = ttk.Entry(form, textvariable=self.confirm_var, show="•")
        self.confirm_label.grid(row=6, column=0, sticky="w")
        self.confirm_entry.grid(row=7, column=0, sticky="ew", pady=(2, 10))
        for entry in (self.username_entry, self.password_entry, self.confirm_entry):
            entry.bind("<Return>", lambda _e: self.on_submit())

    def _field(
        self, form: ttk.Frame, row: int, label: str, var: tk.StringVar, show: str = ""
    ) -> ttk.Entry:
        ttk.Label(form, text=label).grid(row=row, column=0, sticky="w")
        entry = ttk.Entry(form, textvariable=var, show=show)
        entry.grid(row=row + 1, column=0, sticky="ew", pady=(2, 10))
        return entry

    def create_actions(self) -> None:
        self.submit_button = ttk.Button(
            self, command=self.on_submit, bootstyle="primary"
        )
        self.submit_button.pack(fill="x", pady=(6, 6))
        self.mode_button = ttk.Button(
            self, command=self.on_toggle_mode, bootstyle="link"
        )
        self.mode_button.pack()
        self.progress = ttk.Progressbar(self, mode="indeterminate", bootstyle="primary")
        self.status_label = ttk.Label(
            self,
            textvariable=self.status_var,
            bootstyle="danger",
            wraplength=340,
            justify="left",
        )
        self.status_label.pack(anchor="w", pady=(12, 0))

    # -- state ---------------------------------------------------------------------

    @property
    def working(self) -> bool:
        """A sign-in is under way (the form is disabled)."""
        return str(self.submit_button.cget("state")) == "disabled"

    def set_working(self, working: bool) -> None:
        state = "disabled" if working else "normal"
        for widget in (self.submit_button, self.mode_button, self.server_entry):
            widget.configure(state=state)
        if working:
            self.progress.pack(fill="x", pady=(8, 0), before=self.status_label)
            self.progress.start(12)
        else:
            self.progress.stop()
            self.progress.pack_forget()

    def show_message(self, text: str) -> None:
        """A line under the form (why we are back here, what went wrong)."""
        self.status_var.set(text)

    def focus_first_empty(self) -> None:
        for entry, var in (
            (self.server_entry, self.server_var),
            (self.username_entry, self.username_var),
            (self.password_entry, self.password_var),
        ):
            if not var.get():
                entry.focus_set()
                return
        self.password_entry.focus_set()

    # -- handlers --------------------------------------------------------------------

    def on_mode_changed(self) -> None:
        registering = self.register_var.get()
        self.subtitle.configure(
            text="Create an account" if registering else "Sign in to chat and meet"
        )
        self.submit_button.configure(
            text="Create account" if registering else "Sign in"
        )
        self.mode_button.configure(
            text="I already have an account" if registering else "Create an account"
        )
        if registering:
            self.confirm_label.grid()
            self.confirm_entry.grid()
        else:
            self.confirm_label.grid_remove()
            self.confirm_entry.grid_remove()

    def on_toggle_mode(self) -> None:
        self.register_var.set(not self.register_var.get())
        self.status_var.set("")
        self.on_mode_changed()

    def on_submit(self) -> None:
        if self.working:
            return
        server = self.server_var.get().strip()
        username = self.username_var.get().strip()
        password = self.password_var.get()
        if not server or not username or not password:
            self.status_var.set("Enter the server, your username and your password.")
            return
        registering = self.register_var.get()
        if registering and password != self.confirm_var.get():
            self.status_var.set("The passwords differ.")
            return
        self.status_var.set("")
        self.set_working(True)
        self.controller.sign_in(
            server,
            username,
            password,
            register=registering,
            on_done=self.on_signed_in,
            on_error=self.on_failed,
        )

    def on_signed_in(self, _result: object) -> None:
        if not self.winfo_exists():  # replaced by the main view already
            return
        self.set_working(False)
        self.password_var.set("")
        self.confirm_var.set("")

    def on_failed(self, error: BaseException) -> None:
        if not self.winfo_exists():
            return
        self.set_working(False)
        if isinstance(error, UntrustedCertificate):
            self.dialog = FingerprintDialog(self, error.identity, self.on_trusted)
        elif isinstance(error, CertificateMismatch):
            self.status_var.set(describe(error) + " Not connecting.")
            self.dialog = CertificateChangedDialog(self, error)
        else:
            self.status_var.set(describe(error))

    def on_trusted(self, identity: ServerIdentity) -> None:
        """The user confirmed the fingerprint: pin it, then sign in again."""
        self.dialog = None
        self.set_working(True)
        self.controller.trust(identity, on_done=lambda _r: self._resubmit())

    def _resubmit(self) -> None:
        self.set_working(False)
        self.on_submit()
