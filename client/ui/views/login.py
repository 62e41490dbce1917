"""The sign-in and create-account view, with the certificate confirmation."""

from __future__ import annotations

import re
import tkinter as tk

import ttkbootstrap as ttk

from codec.errors import ErrorCode

from ...engine.model import ServerIdentity
from ...errors import CertificateMismatch, ConnectionFailed, ServerError
from ..controller import Controller
from ..errors import UntrustedCertificate, describe
from .dialogs import CertificateChangedDialog, FingerprintDialog

__all__ = [
    "MIN_PASSWORD",
    "USERNAME_RULE",
    "LoginView",
    "password_hint",
    "username_problem",
]

MIN_PASSWORD = 8
"""The server's shortest password, in characters (its rule, checked here
before a round trip)."""
FIELD_OF_CODE = {
    ErrorCode.INVALID_CREDENTIALS: "password",
    ErrorCode.WEAK_PASSWORD: "password",
    ErrorCode.USERNAME_TAKEN: "username",
    ErrorCode.INVALID_USERNAME: "username",
}
"""Which field a server's refusal is about."""


USERNAME_RULE = "Usernames are 3 to 32 characters: letters, digits, _ . and -."
_USERNAME_CHARS = re.compile(r"^[a-z0-9_.-]*$")


def username_problem(username: str, *, complete: bool) -> str:
    """What is wrong with a new ``username`` by the server's rule, empty when
    nothing is; while typing (not ``complete``) a short name is not wrong yet."""
    name = username.strip().lower()
    if not _USERNAME_CHARS.match(name) or len(name) > 32:
        return USERNAME_RULE
    if complete and len(name) < 3:
        return USERNAME_RULE
    return ""


def password_hint(password: str) -> tuple[str, bool]:
    """The live line under a new password, and whether the rule is met."""
    missing = MIN_PASSWORD - len(password)
    if missing > 0:
        more = f" ({missing} more)" if password else ""
        return f"At least {MIN_PASSWORD} characters{more}", False
    return f"✓ {MIN_PASSWORD} characters or more", True


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
        self.show_var = tk.BooleanVar(self, False)
        self.field_errors: dict[str, tk.StringVar] = {}
        self.field_labels: dict[str, ttk.Label] = {}
        self.field_widgets: dict[str, tuple[tk.Misc, ...]] = {}
        self.hinting: set[str] = set()
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
        self.server_entry = self._field(form, 0, "server", "Server", self.server_var)
        self.username_entry = self._field(
            form, 3, "username", "Username", self.username_var
        )
        self.password_entry = self._field(
            form, 6, "password", "Password", self.password_var, "•"
        )
        self.show_check = ttk.Checkbutton(
            form,
            text="Show password",
            variable=self.show_var,
            command=self.on_show_password,
            bootstyle="round-toggle",
        )
        self.show_check.grid(row=9, column=0, sticky="w", pady=(0, 10))
        self.confirm_entry = self._field(
            form, 10, "confirm", "Password again", self.confirm_var, "•"
        )
        for entry in (self.username_entry, self.password_entry, self.confirm_entry):
            entry.bind("<Return>", lambda _e: self.on_submit())
        self.password_var.trace_add("write", lambda *_: self.on_password_typed())
        self.confirm_var.trace_add("write", lambda *_: self.set_error("confirm", ""))
        self.username_var.trace_add("write", lambda *_: self.on_username_typed())
        self.server_var.trace_add("write", lambda *_: self.set_error("server", ""))

    def _field(
        self,
        form: ttk.Frame,
        row: int,
        key: str,
        label: str,
        var: tk.StringVar,
        show: str = "",
    ) -> ttk.Entry:
        """A label, its entry and the line under it for the field's error (or,
        for a new password, its rule); ``key`` names the field."""
        title = ttk.Label(form, text=label)
        title.grid(row=row, column=0, sticky="w")
        entry = ttk.Entry(form, textvariable=var, show=show)
        entry.grid(row=row + 1, column=0, sticky="ew", pady=(2, 0))
        error = tk.StringVar(self)
        message = ttk.Label(
            form, textvariable=error, bootstyle="danger", font="-size 9"
        )
        message.grid(row=row + 2, column=0, sticky="w", pady=(1, 6))
        self.field_errors[key] = error
        self.field_labels[key] = message
        self.field_widgets[key] = (title, entry, message)
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
        for widget in self.field_widgets["confirm"]:
            if registering:
                widget.grid()
            else:
                widget.grid_remove()
        self.clear_errors()
        self.on_password_typed()

    def on_toggle_mode(self) -> None:
        self.register_var.set(not self.register_var.get())
        self.status_var.set("")
        self.on_mode_changed()

    def on_show_password(self) -> None:
        show = "" if self.show_var.get() else "•"
        self.password_entry.configure(show=show)
        self.confirm_entry.configure(show=show)

    def on_username_typed(self) -> None:
        """While creating an account, a username the server would refuse is
        said at once."""
        problem = ""
        if self.register_var.get():
            problem = username_problem(self.username_var.get(), complete=False)
        self.set_error("username", problem)

    def on_password_typed(self) -> None:
        """While creating an account, the rule under the password, live."""
        label = self.field_labels["password"]
        if not self.register_var.get():
            self.hinting.discard("password")
            label.configure(bootstyle="danger")
            self.field_errors["password"].set("")
            return
        hint, met = password_hint(self.password_var.get())
        self.hinting.add("password")
        label.configure(bootstyle="success" if met else "secondary")
        self.field_errors["password"].set(hint)

    def set_error(self, field: str, message: str) -> None:
        """Show ``message`` under ``field`` (empty clears it)."""
        if field == "password" and not message and self.register_var.get():
            self.on_password_typed()
            return
        if message:
            self.hinting.discard(field)
            self.field_labels[field].configure(bootstyle="danger")
        self.field_errors[field].set(message)

    def clear_errors(self) -> None:
        for field in self.field_errors:
            self.set_error(field, "")

    def errors(self) -> dict[str, str]:
        """The errors shown under the fields, by field."""
        return {
            field: var.get()
            for field, var in self.field_errors.items()
            if var.get() and field not in self.hinting
        }

    def hint(self) -> str:
        """The live rule under a new password (empty when not shown)."""
        return self.field_errors["password"].get() if "password" in self.hinting else ""

    def on_submit(self) -> None:
        if self.working:
            return
        server = self.server_var.get().strip()
        username = self.username_var.get().strip()
        password = self.password_var.get()
        registering = self.register_var.get()
        self.status_var.set("")
        missing = {
            "server": "Enter the server's address." if not server else "",
            "username": "Enter your username." if not username else "",
            "password": "Enter your password." if not password else "",
        }
        if registering and username:
            missing["username"] = username_problem(username, complete=True)
        if registering and password and not password_hint(password)[1]:
            missing["password"] = f"Use at least {MIN_PASSWORD} characters."
        if registering and password != self.confirm_var.get():
            missing["confirm"] = "The passwords differ."
        for field, message in missing.items():
            self.set_error(field, message)
        if any(missing.values()):
            return
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
        elif isinstance(error, ConnectionFailed):
            self.set_error("server", describe(error))
        elif isinstance(error, ServerError) and int(error.code) in FIELD_OF_CODE:
            self.set_error(FIELD_OF_CODE[int(error.code)], describe(error))
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
