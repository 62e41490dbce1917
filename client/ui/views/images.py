"""Pictures on the Tk thread: one ``PhotoImage`` per key, filled in place.

A view asks for an image by key and gets a ``PhotoImage`` at once; when the
picture is not there yet it is blank, the backend is asked to draw it, and the
``ImageReady`` that follows is pasted into that same ``PhotoImage`` so every
widget showing it updates without being touched.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable

from PIL import Image, ImageTk

from ...engine.model import AvatarSpec, Person, Presence

__all__ = ["ImageStore"]


class ImageStore:
    """``PhotoImage`` objects by key; ``request(key)`` asks for a missing one."""

    def __init__(self, master: tk.Misc, request: Callable[[str], object]) -> None:
        self._master = master
        self._request = request
        self._images: dict[str, ImageTk.PhotoImage] = {}

    def get(self, key: str, size: tuple[int, int]) -> ImageTk.PhotoImage:
        image = self._images.get(key)
        if image is None:
            image = ImageTk.PhotoImage("RGBA", size, master=self._master)
            self._images[key] = image
            self._request(key)
        return image

    def put(self, key: str, picture: Image.Image) -> None:
        """Show ``picture`` wherever ``key`` is shown (the Tk thread only)."""
        image = self._images.get(key)
        if image is None or (image.width(), image.height()) != picture.size:
            self._images[key] = ImageTk.PhotoImage(picture, master=self._master)
        else:
            image.paste(picture)

    def avatar(
        self, person: Person, size: int, presence: Presence | None = None
    ) -> ImageTk.PhotoImage:
        """``person``'s avatar, ``size`` pixels square, with a presence dot."""
        return self.get(AvatarSpec.of(person, size, presence).key, (size, size))
