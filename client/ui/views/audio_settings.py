"""The settings' sound section: microphone and speaker pickers filled from
the engine's real device list, a live level meter of the chosen microphone,
and a test tone on the chosen speaker.

The engine opens the devices; this panel only sends commands (the list, which
input to watch, the tone) and shows the :class:`InputLevel` events it posts.
"""

from __future__ import annotations

import tkinter as tk
from typing import Any

import ttkbootstrap as ttk

from ...engine.audio_model import TEST_TONE, AudioDeviceList, InputLevel
from ..controller import Controller
from ..errors import describe

__all__ = ["DEFAULT_DEVICE", "AudioSettingsPanel", "meter_percent"]

DEFAULT_DEVICE = "Default"
"""What the pickers show for the system's default device (stored as "")."""
METER_FLOOR_DBOV = -60.0
"""The level the meter shows as empty; 0 dBov is full."""


def meter_percent(level_dbov: float) -> float:
    """Where ``level_dbov`` puts the meter, 0-100."""
    share = (level_dbov - METER_FLOOR_DBOV) / -METER_FLOOR_DBOV
    return 100.0 * min(1.0, max(0.0, share))


class AudioSettingsPanel(ttk.Frame):
    """Pickers, meter and test tone; ``settings`` gives the stored choices
    (``microphone``, ``speaker``). Call :meth:`close` when the dialog goes
    (the engine stops watching the microphone)."""

    def __init__(
        self, master: tk.Misc, controller: Controller, settings: dict[str, Any]
    ) -> None:
        super().__init__(master)
        self.controller = controller
        self.microphone_var = tk.StringVar(
            self, _shown(str(settings.get("microphone") or ""))
        )
        self.speaker_var = tk.StringVar(
            self, _shown(str(settings.get("speaker") or ""))
        )
        self.level_var = tk.DoubleVar(self, 0.0)
        self.level_dbov = -127.0
        """The last level the engine posted for the chosen microphone."""
        self.levels_shown = 0
        """Levels shown since the microphone was chosen (it is metered)."""
        self.status_var = tk.StringVar(self, "Looking for sound devices…")
        self.devices = AudioDeviceList()
        self._closed = False
        self.create_widgets()
        controller.audio_devices(on_done=self.set_devices)
        self.watch()

    def create_widgets(self) -> None:
        ttk.Label(self, text="Sound", font="-weight bold").pack(
            anchor="w", pady=(16, 0)
        )
        grid = ttk.Frame(self)
        grid.pack(fill="x", pady=(6, 0))
        ttk.Label(grid, text="Microphone").grid(row=0, column=0, sticky="w", pady=2)
        self.microphone_box = ttk.Combobox(
            grid, textvariable=self.microphone_var, width=24, state="readonly"
        )
        self.microphone_box.grid(row=0, column=1, sticky="w", padx=(10, 0), pady=2)
        self.microphone_box.bind("<<ComboboxSelected>>", lambda _e: self.watch())
        self.meter = ttk.Progressbar(
            grid, variable=self.level_var, maximum=100, bootstyle="success"
        )
        self.meter.grid(row=1, column=1, sticky="ew", padx=(10, 0), pady=(0, 6))
        ttk.Label(grid, text="Speaker").grid(row=2, column=0, sticky="w", pady=2)
        self.speaker_box = ttk.Combobox(
            grid, textvariable=self.speaker_var, width=24, state="readonly"
        )
        self.speaker_box.grid(row=2, column=1, sticky="w", padx=(10, 0), pady=2)
        self.tone_button = ttk.Button(
            grid,
            text="Test tone",
            command=self.on_test_tone,
            bootstyle="secondary-outline",
        )
        self.tone_button.grid(row=2, column=2, sticky="w", padx=(6, 0))
        ttk.Label(
            self, textvariable=self.status_var, bootstyle="secondary", wraplength=360
        ).pack(anchor="w", pady=(4, 0))

    # -- from the engine -------------------------------------------------------------

    def set_devices(self, devices: AudioDeviceList) -> None:
        """Fill the pickers with the devices the engine found."""
        if self._closed or not self.winfo_exists():
            return
        self.devices = devices
        self.microphone_box.configure(
            values=[DEFAULT_DEVICE, *devices.inputs, TEST_TONE]
        )
        self.speaker_box.configure(values=[DEFAULT_DEVICE, *devices.outputs])
        self.status_var.set(devices.problem)

    def set_level(self, event: InputLevel) -> None:
        """Show the microphone's level (events for another device are late)."""
        if event.device != self.microphone:
            return
        self.level_dbov = event.level_dbov
        self.levels_shown += 1
        self.level_var.set(meter_percent(event.level_dbov))
        if event.problem:
            self.status_var.set(event.problem)

    # -- handlers -------------------------------------------------------------------

    @property
    def microphone(self) -> str:
        """The chosen microphone as stored (``""``: the default)."""
        return _stored(self.microphone_var.get())

    @property
    def speaker(self) -> str:
        return _stored(self.speaker_var.get())

    def watch(self) -> None:
        """Meter the chosen microphone (the test tone has no level to show)."""
        self.level_var.set(0.0)
        self.level_dbov = -127.0
        self.levels_shown = 0
        device = self.microphone
        self.controller.watch_input(None if device == TEST_TONE else device)

    def on_test_tone(self) -> None:
        self.status_var.set("")
        self.controller.play_test_tone(
            self.speaker,
            on_error=lambda e: self.status_var.set(f"No test tone: {describe(e)}"),
        )

    def changes(self) -> dict[str, str]:
        """The settings to store."""
        return {"microphone": self.microphone, "speaker": self.speaker}

    def close(self) -> None:
        """Stop the meter (the dialog is closing)."""
        if not self._closed:
            self._closed = True
            self.controller.watch_input(None)


def _shown(device: str) -> str:
    return device or DEFAULT_DEVICE


def _stored(shown: str) -> str:
    return "" if shown == DEFAULT_DEVICE else shown
