"""Editing one's own profile: display name, mood and avatar picture."""

from __future__ import annotations

import tkinter as tk
from pathlib import Path
from tkinter import filedialog

import ttkbootstrap as ttk

from ...engine.model import Person
from ..controller import Controller
from ..errors import describe
from .dialogs import Dialog
from .images import ImageStore

__all__ = ["ProfileDialog"]

PREVIEW_SIZE = 72
PICTURE_TYPES = [
    ("Pictures", "*.png *.jpg *.jpeg *.gif *.bmp *.webp"),
    ("All files", "*"),
]


class ProfileDialog(Dialog):
    """Name and mood are saved with Save; a new picture is uploaded at once."""

    def __init__(
        self, master: tk.Misc, controller: Controller, images: ImageStore, me: Person
    ) -> None:
        super().__init__(master, "Your profile")
        self.controller = controller
        self.images = images
        self.me = me
        self.name_var = tk.StringVar(self, me.display_name)
        self.mood_var = tk.StringVar(self, me.mood)
        self.error_var = tk.StringVar(self)
        self.create_picture()
        self.create_fields()
        self.save_button = self.add_button("Save", self.on_save)
        self.add_button("Cancel", self.on_cancel, "secondary")
        self.set_me(me)
        self.show()
        self.name_entry.focus_set()

    def create_picture(self) -> None:
        row = ttk.Frame(self.body)
        row.pack(fill="x", pady=(0, 14))
        self.preview = ttk.Label(row)
        self.preview.pack(side="left")
        buttons = ttk.Frame(row, padding=(14, 0))
        buttons.pack(side="left")
        ttk.Button(
            buttons,
            text="Choose picture…",
            command=self.on_choose_picture,
            bootstyle="primary-outline",
        ).pack(anchor="w")
        self.remove_button = ttk.Button(
            buttons,
            text="Remove picture",
            command=self.on_remove_picture,
            bootstyle="secondary-link",
        )
        self.remove_button.pack(anchor="w", pady=(4, 0))

    def create_fields(self) -> None:
        ttk.Label(self.body, text="Display name").pack(anchor="w")
        self.name_entry = ttk.Entry(self.body, textvariable=self.name_var, width=36)
        self.name_entry.pack(fill="x", pady=(2, 10))
        ttk.Label(self.body, text="Mood").pack(anchor="w")
        self.mood_entry = ttk.Entry(self.body, textvariable=self.mood_var, width=36)
        self.mood_entry.pack(fill="x", pady=(2, 4))
        for entry in (self.name_entry, self.mood_entry):
            entry.bind("<Return>", lambda _e: self.on_save())
        ttk.Label(
            self.body, textvariable=self.error_var, bootstyle="danger", wraplength=320
        ).pack(anchor="w", pady=(6, 0))

    def set_me(self, me: Person) -> None:
        """Our profile changed (a picture finished uploading)."""
        self.me = me
        self.preview.configure(image=self.images.avatar(me, PREVIEW_SIZE))
        has_picture = not me.avatar.startswith("icon-")
        self.remove_button.configure(state="normal" if has_picture else "disabled")

    # -- handlers ----------------------------------------------------------------------

    def on_choose_picture(self) -> None:
        path = filedialog.askopenfilename(
            parent=self, title="Choose a picture", filetypes=PICTURE_TYPES
        )
        if path:
            self.on_picture_chosen(Path(path))

    def on_picture_chosen(self, path: Path) -> None:
        self.error_var.set("Uploading…")
        self.controller.set_avatar(
            path, on_done=lambda _me: self.error_var.set(""), on_error=self.on_failed
        )

    def on_remove_picture(self) -> None:
        self.controller.remove_avatar()

    def on_save(self) -> None:
        self.save_button.configure(state="disabled")
        self.controller.update_profile(
            self.name_var.get().strip(),
            self.mood_var.get().strip(),
            on_done=lambda _me: self.destroy(),
            on_error=self.on_failed,
        )

    def on_failed(self, error: BaseException) -> None:
        if self.winfo_exists():
            self.error_var.set(describe(error))
            self.save_button.configure(state="normal")
