"""Small windows that never block the event loop: each reports through
callbacks instead of ``wait_window``, so the app keeps drawing (and tests keep
driving it) while one is open."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable

import ttkbootstrap as ttk

from ...engine.model import ServerIdentity
from ...errors import CertificateMismatch
from .placement import clamp_to_screen

__all__ = [
    "CertificateChangedDialog",
    "ChangePasswordDialog",
    "ConfirmDialog",
    "Dialog",
    "FingerprintDialog",
    "MeetDialog",
    "format_fingerprint",
]


def format_fingerprint(fingerprint: str) -> str:
    """A SHA-256 fingerprint in four lines of eight groups, easy to compare."""
    hex_digits = fingerprint.replace(":", "").upper()
    groups = [hex_digits[i : i + 2] for i in range(0, len(hex_digits), 2)]
    lines = [" ".join(groups[i : i + 8]) for i in range(0, len(groups), 8)]
    return "\n".join(lines)


class Dialog(ttk.Toplevel):
    """A transient window over ``master`` with a body and a row of buttons."""

    def __init__(self, master: tk.Misc, title: str) -> None:
        super().__init__(master=master, title=title, resizable=(False, False))
        self.withdraw()
        self.transient(master.winfo_toplevel())
        self.body = ttk.Frame(self, padding=20)
        self.body.pack(fill="both", expand=True)
        self.buttons = ttk.Frame(self, padding=(20, 0, 20, 16))
        self.buttons.pack(fill="x")
        self.protocol("WM_DELETE_WINDOW", self.on_cancel)
        self.bind("<Escape>", lambda _e: self.on_cancel())

    def show(self) -> None:
        """Place the dialog over its master, whole on the screen, and show it."""
        self.update_idletasks()
        top = self.master.winfo_toplevel()
        x = top.winfo_rootx() + max(0, (top.winfo_width() - self.winfo_reqwidth()) // 2)
        y = top.winfo_rooty() + max(
            0, (top.winfo_height() - self.winfo_reqheight()) // 3
        )
        x, y = clamp_to_screen(
            x,
            y,
            self.winfo_reqwidth(),
            self.winfo_reqheight(),
            (self.winfo_screenwidth(), self.winfo_screenheight()),
        )
        self.geometry(f"+{x}+{y}")
        self.deiconify()
        self.lift()

    def add_button(
        self, text: str, command: Callable[[], None], bootstyle: str = "primary"
    ) -> ttk.Button:
        button = ttk.Button(
            self.buttons, text=text, command=command, bootstyle=bootstyle
        )
        button.pack(side="right", padx=(8, 0))
        return button

    def on_cancel(self) -> None:
        self.destroy()


class ConfirmDialog(Dialog):
    """Asks before a destructive action: ``text`` says what will happen, the
    ``action`` button (in red) calls ``on_confirm``; Cancel does nothing."""

    def __init__(
        self,
        master: tk.Misc,
        title: str,
        text: str,
        action: str,
        on_confirm: Callable[[], object],
    ) -> None:
        super().__init__(master, title)
        self._on_confirm = on_confirm
        self.text = text
        ttk.Label(self.body, text=title, font="-size 11 -weight bold").pack(anchor="w")
        ttk.Label(self.body, text=text, wraplength=340, justify="left").pack(
            anchor="w", pady=(8, 0)
        )
        self.confirm_button = self.add_button(action, self.on_confirm, "danger")
        self.cancel_button = self.add_button("Cancel", self.on_cancel, "secondary")
        self.show()
        self.cancel_button.focus_set()

    def on_confirm(self) -> None:
        self.destroy()
        self._on_confirm()


class FingerprintDialog(Dialog):
    """First connection to a server: show its fingerprint and ask to trust it."""

    def __init__(
        self,
        master: tk.Misc,
        identity: ServerIdentity,
        on_trust: Callable[[ServerIdentity], None],
    ) -> None:
        super().__init__(master, "Confirm the server")
        self.identity = identity
        self._on_trust = on_trust
        self.create_body()
        self.trust_button = self.add_button("Trust and continue", self.on_trust)
        self.add_button("Cancel", self.on_cancel, "secondary")
        self.show()

    def create_body(self) -> None:
        ttk.Label(
            self.body,
            text=f"First connection to {self.identity.address}",
            font="-size 12 -weight bold",
        ).pack(anchor="w")
        ttk.Label(
            self.body,
            text=(
                "Compare this certificate fingerprint (SHA-256) with the one your\n"
                "server's administrator gave you. Continue only if they match."
            ),
            justify="left",
        ).pack(anchor="w", pady=(8, 8))
        self.fingerprint_label = ttk.Label(
            self.body,
            text=format_fingerprint(self.identity.fingerprint),
            font="TkFixedFont",
            justify="left",
            bootstyle="primary",
        )
        self.fingerprint_label.pack(anchor="w")

    def on_trust(self) -> None:
        self.destroy()
        self._on_trust(self.identity)


class CertificateChangedDialog(Dialog):
    """The server presented another certificate than the pinned one: refuse."""

    def __init__(self, master: tk.Misc, error: CertificateMismatch) -> None:
        super().__init__(master, "Certificate changed")
        self.error = error
        self.create_body()
        self.add_button("Close", self.on_cancel, "danger")
        self.show()

    def create_body(self) -> None:
        ttk.Label(
            self.body,
            text=f"⚠ The certificate of {self.error.address} has CHANGED",
            font="-size 12 -weight bold",
            bootstyle="danger",
        ).pack(anchor="w")
        ttk.Label(
            self.body,
            text=(
                "Someone may be intercepting the connection, or the server was\n"
                "reinstalled. quicmeet will not connect. If the change is expected,\n"
                "remove the server's line from known_hosts.json in your data folder."
            ),
            justify="left",
        ).pack(anchor="w", pady=(8, 8))
        for title, value in (
            ("Pinned", self.error.pinned),
            ("Presented now", self.error.presented),
        ):
            ttk.Label(self.body, text=title, font="-weight bold").pack(anchor="w")
            ttk.Label(
                self.body,
                text=format_fingerprint(value),
                font="TkFixedFont",
                justify="left",
            ).pack(anchor="w", pady=(0, 8))


class ChangePasswordDialog(Dialog):
    """Old password, new one twice; ``on_submit(old, new)`` does the rest."""

    def __init__(self, master: tk.Misc, on_submit: Callable[[str, str], None]) -> None:
        super().__init__(master, "Change password")
        self._on_submit = on_submit
        self.old_var = tk.StringVar(self)
        self.new_var = tk.StringVar(self)
        self.again_var = tk.StringVar(self)
        self.error_var = tk.StringVar(self)
        self.create_body()
        self.submit_button = self.add_button("Change password", self.on_submit)
        self.add_button("Cancel", self.on_cancel, "secondary")
        self.show()
        self.old_entry.focus_set()

    def create_body(self) -> None:
        rows = (
            ("Current password", self.old_var),
            ("New password", self.new_var),
            ("New password again", self.again_var),
        )
        entries = []
        for row, (label, var) in enumerate(rows):
            ttk.Label(self.body, text=label).grid(row=row, column=0, sticky="w", pady=4)
            entry = ttk.Entry(self.body, textvariable=var, show="•", width=28)
            entry.grid(row=row, column=1, sticky="ew", padx=(12, 0), pady=4)
            entry.bind("<Return>", lambda _e: self.on_submit())
            entries.append(entry)
        self.old_entry, self.new_entry, self.again_entry = entries
        ttk.Label(
            self.body, textvariable=self.error_var, bootstyle="danger", wraplength=320
        ).grid(row=3, column=0, columnspan=2, sticky="w", pady=(8, 0))

    def on_submit(self) -> None:
        new = self.new_var.get()
        if new != self.again_var.get():
            self.error_var.set("The new passwords differ.")
            return
        self.submit_button.configure(state="disabled")
        self._on_submit(self.old_var.get(), new)

    def on_failed(self, message: str) -> None:
        self.error_var.set(message)
        self.submit_button.configure(state="normal")


class MeetDialog(Dialog):
    """Start a meeting (``on_create(password)``) or join one by its code
    (``on_join(code, password)``); :meth:`on_failed` shows why not."""

    def __init__(
        self,
        master: tk.Misc,
        on_create: Callable[[str], object],
        on_join: Callable[[str, str], object],
    ) -> None:
        super().__init__(master, "Meet")
        self._on_create = on_create
        self._on_join = on_join
        self.password_var = tk.StringVar(self)
        self.code_var = tk.StringVar(self)
        self.join_password_var = tk.StringVar(self)
        self.error_var = tk.StringVar(self)
        self.create_new()
        self.create_join()
        self.add_button("Close", self.on_cancel, "secondary")
        self.show()
        self.code_entry.focus_set()

    def create_new(self) -> None:
        ttk.Label(self.body, text="New meeting", font="-weight bold").pack(anchor="w")
        ttk.Label(self.body, text="Password (optional)").pack(anchor="w", pady=(6, 0))
        ttk.Entry(self.body, textvariable=self.password_var, show="•").pack(fill="x")
        self.start_button = ttk.Button(
            self.body,
            text="Start a meeting",
            command=self.on_start,
            bootstyle="primary",
        )
        self.start_button.pack(anchor="w", pady=(8, 16))

    def create_join(self) -> None:
        ttk.Label(self.body, text="Join a meeting", font="-weight bold").pack(
            anchor="w"
        )
        ttk.Label(self.body, text="Meeting code").pack(anchor="w", pady=(6, 0))
        self.code_entry = ttk.Entry(self.body, textvariable=self.code_var, width=30)
        self.code_entry.pack(fill="x")
        self.code_entry.bind("<Return>", lambda _e: self.on_join())
        ttk.Label(self.body, text="Password, if it has one").pack(
            anchor="w", pady=(6, 0)
        )
        ttk.Entry(self.body, textvariable=self.join_password_var, show="•").pack(
            fill="x"
        )
        self.join_button = ttk.Button(
            self.body, text="Join", command=self.on_join, bootstyle="primary"
        )
        self.join_button.pack(anchor="w", pady=(8, 0))
        ttk.Label(
            self.body, textvariable=self.error_var, bootstyle="danger", wraplength=320
        ).pack(anchor="w", pady=(8, 0))

    def on_start(self) -> None:
        self.error_var.set("")
        self._on_create(self.password_var.get())

    def on_join(self) -> None:
        code = self.code_var.get().strip()
        if code:
            self.error_var.set("")
            self._on_join(code, self.join_password_var.get())

    def on_failed(self, message: str) -> None:
        if self.winfo_exists():
            self.error_var.set(message)
