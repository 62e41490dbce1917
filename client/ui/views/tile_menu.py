"""The menu of a remote person's tile: how loud they play for us (0-200 %)
and muting them for us only. The choices are remembered per person for the
meeting window's life and sent to the engine, which mixes accordingly."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable

__all__ = ["VOLUME_STEPS", "PersonAudio"]

VOLUME_STEPS = (0, 25, 50, 75, 100, 125, 150, 175, 200)
"""The volumes the menu offers, in percent."""
SILENCE_LABEL = "Mute for me"


class PersonAudio:
    """Each person's volume and mute for us, and the menu that sets them.

    ``on_volume(username, percent)`` and ``on_silence(username, silenced)``
    tell the engine.
    """

    def __init__(
        self,
        master: tk.Misc,
        on_volume: Callable[[str, int], object],
        on_silence: Callable[[str, bool], object],
    ) -> None:
        self._master = master
        self._on_volume = on_volume
        self._on_silence = on_silence
        self.volumes: dict[str, tk.IntVar] = {}
        self.silenced: dict[str, tk.BooleanVar] = {}
        self.menu: tk.Menu | None = None
        """The menu last opened (tests invoke its entries)."""

    def _vars(self, username: str) -> tuple[tk.IntVar, tk.BooleanVar]:
        if username not in self.volumes:
            self.volumes[username] = tk.IntVar(self._master, 100)
            self.silenced[username] = tk.BooleanVar(self._master, False)
        return self.volumes[username], self.silenced[username]

    def build_menu(self, username: str, name: str) -> tk.Menu:
        """The menu for ``username``'s tile (not yet shown)."""
        volume, silenced = self._vars(username)
        menu = tk.Menu(self._master, tearoff=False)
        menu.add_checkbutton(
            label=SILENCE_LABEL,
            variable=silenced,
            command=lambda: self._on_silence(username, silenced.get()),
        )
        levels = tk.Menu(menu, tearoff=False)
        for percent in VOLUME_STEPS:
            levels.add_radiobutton(
                label=f"{percent} %",
                value=percent,
                variable=volume,
                command=lambda: self._on_volume(username, volume.get()),
            )
        menu.add_cascade(label=f"Volume of {name}", menu=levels)
        self.menu = menu
        return menu

    def resend(self) -> None:
        """Tell a new engine every choice made (it started with none)."""
        for username, volume in self.volumes.items():
            if volume.get() != 100:
                self._on_volume(username, volume.get())
            if self.silenced[username].get():
                self._on_silence(username, True)

    def show(self, username: str, name: str, x: int, y: int) -> None:
        """Open the menu at screen position ``x``, ``y``."""
        menu = self.build_menu(username, name)
        try:
            menu.tk_popup(x, y)
        finally:
            menu.grab_release()
