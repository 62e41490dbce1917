"""Settings: theme, the server to sign in to, signing in automatically,
where received files are saved, and the video and sound devices."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import filedialog
from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk

from ..controller import Controller
from .audio_settings import AudioSettingsPanel
from .dialogs import Dialog
from .source_box import SourceBox
from .theme import available_themes, theme_label, theme_named

if TYPE_CHECKING:
    from ...engine.video_model import VideoDeviceList

__all__ = ["SettingsDialog"]

CAMERA_SIZES = ("320x240", "640x480", "1280x720")
CAMERA_RATES = ("15", "30")


class SettingsDialog(Dialog):
    """Shows ``settings`` (the home's config, with the downloads folder in
    effect); ``on_save(changes)`` applies and stores them; ``on_preview(theme)``
    shows a theme while it is chosen."""

    def __init__(
        self,
        master: tk.Misc,
        settings: dict[str, Any],
        *,
        current_theme: str,
        data_folder: str,
        on_save: Callable[[dict[str, Any]], None],
        on_preview: Callable[[str], None],
        controller: Controller | None = None,
    ) -> None:
        super().__init__(master, "Settings")
        self._on_save = on_save
        self._on_preview = on_preview
        self.original_theme = current_theme
        self.theme_var = tk.StringVar(self, theme_label(current_theme))
        self.server_var = tk.StringVar(self, settings.get("server", ""))
        self.auto_var = tk.BooleanVar(self, settings.get("auto_sign_in", True))
        self.downloads_var = tk.StringVar(self, settings.get("downloads", ""))
        self.camera_spec: str = settings.get("camera") or "camera:0"
        self.size_var = tk.StringVar(self, settings.get("camera_size") or "640x480")
        self.fps_var = tk.StringVar(self, str(settings.get("camera_fps") or 30))
        self.screen_spec: str = settings.get("screen") or "screen:1"
        self.create_appearance()
        self.create_account(data_folder)
        self.create_files()
        self.create_devices()
        self.audio: AudioSettingsPanel | None = None
        """The sound devices (when the dialog can ask the engine for them)."""
        if controller is not None:
            self.audio = AudioSettingsPanel(self.body, controller, settings)
            self.audio.pack(fill="x")
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
            values=[theme_label(name) for name in available_themes()],
            state="readonly",
            width=24,
        )
        self.theme_box.pack(side="left", padx=(10, 0))
        self.theme_box.bind(
            "<<ComboboxSelected>>", lambda _e: self._on_preview(self.theme)
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

    def create_files(self) -> None:
        ttk.Label(self.body, text="Files", font="-weight bold").pack(
            anchor="w", pady=(16, 0)
        )
        ttk.Label(self.body, text="Save received files in").pack(
            anchor="w", pady=(6, 0)
        )
        row = ttk.Frame(self.body)
        row.pack(fill="x", pady=(2, 0))
        self.downloads_entry = ttk.Entry(row, textvariable=self.downloads_var)
        self.downloads_entry.pack(side="left", fill="x", expand=True)
        ttk.Button(
            row,
            text="Choose…",
            command=self.on_choose_downloads,
            bootstyle="secondary-outline",
        ).pack(side="left", padx=(6, 0))

    def create_devices(self) -> None:
        """The camera and screen (the devices found on this machine, the test
        pattern, a file, or a spec typed in), and the camera's size and rate."""
        ttk.Label(self.body, text="Video", font="-weight bold").pack(
            anchor="w", pady=(16, 0)
        )
        grid = ttk.Frame(self.body)
        grid.pack(fill="x", pady=(6, 0))
        self.camera_box = SourceBox(grid, "camera", self.camera_spec, 18, editable=True)
        self.screen_box = SourceBox(grid, "screen", self.screen_spec, 18, editable=True)
        rows: tuple[tuple[str, ttk.Combobox], ...] = (
            ("Camera", self.camera_box),
            ("Camera size", ttk.Combobox(
                grid, textvariable=self.size_var, values=CAMERA_SIZES, width=14
            )),
            ("Frames per second", ttk.Combobox(
                grid, textvariable=self.fps_var, values=CAMERA_RATES, width=14
            )),
            ("Screen", self.screen_box),
        )  # fmt: skip
        for row, (label, box) in enumerate(rows):
            ttk.Label(grid, text=label).grid(row=row, column=0, sticky="w", pady=2)
            box.grid(row=row, column=1, sticky="w", padx=(10, 0), pady=2)

    def set_devices(self, devices: VideoDeviceList) -> None:
        """List the cameras and screens the engine found."""
        if self.winfo_exists():
            self.camera_box.set_devices(devices.cameras)
            self.screen_box.set_devices(devices.screens)

    @property
    def theme(self) -> str:
        """The name of the theme chosen (the box shows its friendly label)."""
        return theme_named(self.theme_var.get())

    def on_choose_downloads(self) -> None:
        folder = filedialog.askdirectory(
            parent=self, initialdir=self.downloads_var.get(), mustexist=False
        )
        if folder:
            self.downloads_var.set(folder)

    def on_save(self) -> None:
        changes: dict[str, Any] = {
            "theme": self.theme,
            "auto_sign_in": self.auto_var.get(),
            "downloads": self.downloads_var.get().strip(),
            "camera": self.camera_box.typed(),
            "camera_size": self.size_var.get().strip(),
            "camera_fps": self.fps_var.get().strip(),
            "screen": self.screen_box.typed(),
        }
        server = self.server_var.get().strip()
        if server:
            changes["server"] = server
        if self.audio is not None:
            changes.update(self.audio.changes())
        self.destroy()
        self._on_save(changes)

    def on_cancel(self) -> None:
        if self.theme != self.original_theme:
            self._on_preview(self.original_theme)
        self.destroy()

    def destroy(self) -> None:
        """Close, and stop the engine metering the microphone."""
        if self.audio is not None:
            self.audio.close()
        super().destroy()
