"""Settings: theme, the server to sign in to, signing in automatically."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from typing import Any

import ttkbootstrap as ttk

from .dialogs import Dialog
from .theme import available_themes

__all__ = ["SettingsDialog"]


class SettingsDialog(Dialog):
    """Shows ``settings`` (the home's config); ``on_save(changes)`` applies and
    stores them; ``on_preview(theme)`` shows a theme while it is chosen."""

    def __init__(
        self,
        master: tk.Misc,
        settings: dict[str, Any],
        *,
        current_theme: str,
        data_folder: str,
        on_save: Callable[[dict[str, Any]], None],
        on_preview: Callable[[str], None],
    ) -> None:
        super().__init__(master, "Settings")
        self._on_save = on_save
        self._on_preview = on_preview
        self.original_theme = current_theme
        self.theme_var = tk.StringVar(self, current_theme)
        self.server_var = tk.StringVar(self, settings.get("server", ""))
        self.auto_var = tk.BooleanVar(self, settings.get("auto_sign_in", True))
        self.create_appearance()
        self.create_account(data_folder)
        self.add_button("Save", self.on_save)
        self.add_button("Cancel", self.on_cancel, "secondary")
        self.show()

    def create_appearance(self) -> None:
        ttk.Label(self.body, text="Appearance", font="-weight bold").pack(anchor="w")
        row = ttk.Frame(self.body, padding=(0, 6, 0, 14))
        row.pack(fill="x")
        ttk.Label(row, text="Theme").pack(side="left")
        self.theme_box = ttk.Combobox(
            row,
            textvariable=self.theme_var,
            values=available_themes(),
            state="readonly",
            width=24,
        )
        self.theme_box.pack(side="left", padx=(10, 0))
        self.theme_box.bind(
            "<<ComboboxSelected>>", lambda _e: self._on_preview(self.theme_var.get())
        )

    def create_account(self, data_folder: str) -> None:
        ttk.Label(self.body, text="Account", font="-weight bold").pack(anchor="w")
        ttk.Label(self.body, text="Server (used at the next sign-in)").pack(
            anchor="w", pady=(6, 0)
        )
        self.server_entry = ttk.Entry(self.body, textvariable=self.server_var, width=34)
        self.server_entry.pack(fill="x", pady=(2, 8))
        self.auto_check = ttk.Checkbutton(
            self.body,
            text="Sign in automatically on this computer",
            variable=self.auto_var,
            bootstyle="round-toggle",
        )
        self.auto_check.pack(anchor="w")
        ttk.Label(
            self.body,
            text=f"Data folder: {data_folder}",
            bootstyle="secondary",
            wraplength=360,
        ).pack(anchor="w", pady=(12, 0))

    def on_save(self) -> None:
        changes: dict[str, Any] = {
            "theme": self.theme_var.get(),
            "auto_sign_in": self.auto_var.get(),
        }
        server = self.server_var.get().strip()
        if server:
            changes["server"] = server
        self.destroy()
        self._on_save(changes)

    def on_cancel(self) -> None:
        if self.theme_var.get() != self.original_theme:
            self._on_preview(self.original_theme)
        self.destroy()
