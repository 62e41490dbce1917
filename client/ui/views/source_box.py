"""A picker of video sources: the devices the engine found on this machine,
by name, plus fixed choices (the test pattern) and, for the camera, "File…"
(a video file chosen in a dialog). It shows names and answers with source
specs (``camera:0``, ``screen:1``, ``synthetic``, ``file:PATH``); an editable
one also takes a spec typed in (a screen region, a stream's URL)."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import filedialog

import ttkbootstrap as ttk

from ...engine.video_model import VideoDevice

__all__ = ["FILE_CHOICE", "SourceBox", "source_label"]

FILE_CHOICE = "File…"
"""The choice that opens a file dialog: a video file as the camera."""
TEST_PATTERN = VideoDevice("synthetic", "Test pattern")
MAX_WIDTH = 18
"""The widest the box grows for a long name, in characters."""


def source_label(spec: str) -> str:
    """A name for ``spec`` before (or without) the engine's device list."""
    kind, _, argument = spec.partition(":")
    if kind == "synthetic":
        return TEST_PATTERN.label
    if kind == "file" and argument:
        return f"File: {Path(argument).name}"
    if kind == "camera":
        return f"Camera {argument or 0}"
    if kind == "screen" and "," in argument:
        parts = argument.split(",")
        if len(parts) != 4:
            return spec
        left, top, width, height = parts
        return f"Screen area {width}×{height} at {left},{top}"
    if kind == "screen":
        return f"Screen {argument or 1}"
    return spec


class SourceBox(ttk.Combobox):
    """A combobox of sources; ``spec`` is the one chosen, ``on_choose(spec)``
    is called when the user picks another (a file once the dialog gave one).

    ``kind`` is ``camera`` (listing the test pattern and "File…" after the
    cameras) or ``screen``."""

    def __init__(
        self,
        master: tk.Misc,
        kind: str,
        spec: str,
        width: int,
        on_choose: Callable[[str], None] = lambda _spec: None,
        *,
        editable: bool = False,
    ) -> None:
        self.min_width = width
        self.var = tk.StringVar(master)
        super().__init__(
            master,
            textvariable=self.var,
            width=width,
            state="normal" if editable else "readonly",
        )
        self._on_choose = on_choose
        self.bind("<<ComboboxSelected>>", lambda _e: self.on_selected(), add="+")
        self.kind = kind
        self.spec = spec
        self.devices: tuple[VideoDevice, ...] = ()
        self.found = False
        """Whether the engine's list arrived (else the names are guesses)."""
        self.choices: dict[str, str] = {}
        self._refresh()

    def _refresh(self) -> None:
        listed = list(self.devices)
        if self.kind == "camera":
            listed.append(TEST_PATTERN)
        if not any(device.spec == self.spec for device in listed):
            missing = " (not found)" if self.found and self._is_device() else ""
            listed.insert(0, VideoDevice(self.spec, source_label(self.spec) + missing))
        self.choices = {device.label: device.spec for device in listed}
        labels = list(self.choices)
        self.configure(
            values=[*labels, FILE_CHOICE] if self.kind == "camera" else labels,
            width=min(MAX_WIDTH, max([self.min_width, *map(len, labels)]) + 1),
        )
        self.var.set(next(label for label, s in self.choices.items() if s == self.spec))

    def set_devices(self, devices: tuple[VideoDevice, ...]) -> bool:
        """Show the devices found; a saved camera or screen that is not among
        them gives way to the first that is. True if the choice changed."""
        self.devices = devices
        self.found = True
        specs = [device.spec for device in devices]
        before = self.spec
        if self._is_device() and self.spec not in specs and specs:
            self.spec = specs[0]
        self._refresh()
        return self.spec != before

    def _is_device(self) -> bool:
        """Whether the choice names a device by number (``camera:0``,
        ``screen:2``), not a region, a file or the test pattern."""
        kind, _, number = self.spec.partition(":")
        return kind == self.kind and number.isdigit()

    def select(self, spec: str) -> None:
        """Make ``spec`` the choice (listing it if it is new: a file)."""
        self.spec = spec
        self._refresh()

    def on_selected(self) -> None:
        """A choice was picked: "File…" asks for a video file first."""
        label = self.var.get()
        if label == FILE_CHOICE:
            path = filedialog.askopenfilename(parent=self, title="Play a video file")
            if not path:
                self._refresh()
                return
            spec = f"file:{path}"
        else:
            spec = self.choices.get(label, self.spec)
        self.select(spec)
        self._on_choose(spec)

    def typed(self) -> str:
        """The spec shown: a choice's, or the text typed in (editable box)."""
        text = self.var.get().strip()
        if text == FILE_CHOICE or not text:
            return self.spec
        return self.choices.get(text, text)

    def labels(self) -> list[str]:
        """The choices as listed, top to bottom."""
        return [str(value) for value in self.cget("values")]
