"""Pictures for the meeting's video tiles, handed from the threads that make
them to the Tk thread that shows them.

Decoded remote pictures arrive on each track's render thread, self-view
pictures on the capture thread. There they are scaled (letterboxed) to the
size of their tile, so the Tk thread only pastes a ready image into the tile's
one ``PhotoImage``. Each tile keeps just its newest picture: a picture not yet
shown is replaced, never queued, so a busy Tk loop skips frames instead of
falling behind.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

__all__ = ["TileFrames", "TilePicture"]


@dataclass(frozen=True, slots=True)
class TilePicture:
    """A picture ready for a tile: ``image`` is RGB at the tile's size."""

    image: Image.Image
    frame_number: int
    source_width: int
    source_height: int


def fit(frame: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """``frame`` (RGB array) scaled to fit ``size``, centred on black.

    OpenCV scales (about ten times faster than Pillow here, and without the
    GIL): bilinear, or by pixel area when shrinking by more than half.
    """
    height, width = frame.shape[:2]
    tile_w, tile_h = size
    scale = min(tile_w / width, tile_h / height)
    fitted = (max(1, round(width * scale)), max(1, round(height * scale)))
    if fitted != (width, height):
        interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
        frame = cv2.resize(frame, fitted, interpolation=interpolation)
    picture = Image.fromarray(frame, "RGB")
    if fitted == size:
        return picture
    tile = Image.new("RGB", size)
    tile.paste(picture, ((tile_w - fitted[0]) // 2, (tile_h - fitted[1]) // 2))
    return tile


class TileFrames:
    """The newest picture of every tile, by tile key (thread-safe).

    The Tk side says how big each tile is (:meth:`set_size`) and takes new
    pictures (:meth:`take`); producers :meth:`put` frames, which are dropped
    for tiles nobody shows.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sizes: dict[str, tuple[int, int]] = {}
        self._pictures: dict[str, TilePicture] = {}
        self._fresh: set[str] = set()
        self.replaced = 0
        """Pictures replaced before they were shown (frames the Tk side skipped)."""

    def set_size(self, key: str, size: tuple[int, int]) -> None:
        with self._lock:
            self._sizes[key] = size
            self._pictures.pop(key, None)
            self._fresh.discard(key)

    def drop(self, key: str) -> None:
        """Stop keeping pictures for ``key`` (its tile is gone)."""
        with self._lock:
            self._sizes.pop(key, None)
            self._pictures.pop(key, None)
            self._fresh.discard(key)

    def put(self, key: str, frame: np.ndarray, frame_number: int) -> None:
        """Scale ``frame`` for the tile ``key`` and keep it as its newest
        picture (on the producing thread)."""
        with self._lock:
            size = self._sizes.get(key)
        if size is None:
            return
        picture = TilePicture(
            fit(frame, size), frame_number, frame.shape[1], frame.shape[0]
        )
        with self._lock:
            if self._sizes.get(key) != size:
                return
            if key in self._fresh:
                self.replaced += 1
            self._pictures[key] = picture
            self._fresh.add(key)

    def take(self, key: str) -> TilePicture | None:
        """The newest picture of ``key`` not taken yet, or None."""
        with self._lock:
            if key not in self._fresh:
                return None
            self._fresh.discard(key)
            return self._pictures[key]
