"""Meeting pictures from the engine's decode and capture threads into the
tiles' shared buffers (:mod:`client.engine.shared`).

Decoded remote pictures arrive on each track's render thread, self-view
pictures on the capture thread. There they are scaled (letterboxed) to the
size of their tile and written into the tile's buffer, so the UI only pastes
a ready picture. A tile nobody shows (no buffer named yet) drops its frames.
"""

from __future__ import annotations

import threading
from multiprocessing import shared_memory
from typing import TYPE_CHECKING

from .shared import HEADER, attach, buffer_size, pixels, read_header, write_header

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TileFrames", "fit"]


def fit(frame: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """``frame`` (RGB array) scaled to fit ``size`` keeping its aspect, and
    where it goes in the tile (left, top); the rest of the tile is black.

    OpenCV scales (without the GIL): bilinear, or by pixel area when
    shrinking by more than half.
    """
    import cv2  # with the first picture: an engine that only chats needs none

    height, width = frame.shape[:2]
    tile_w, tile_h = size
    scale = min(tile_w / width, tile_h / height)
    fitted = (max(1, round(width * scale)), max(1, round(height * scale)))
    if fitted != (width, height):
        interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
        frame = cv2.resize(frame, fitted, interpolation=interpolation)
    return frame, (tile_w - fitted[0]) // 2, (tile_h - fitted[1]) // 2


class _Tile:
    """One attached buffer; ``lock`` keeps a write and the unmapping apart."""

    def __init__(self, name: str, size: tuple[int, int]) -> None:
        self.size = size
        self.memory: shared_memory.SharedMemory | None = attach(name)
        if self.memory.size < buffer_size(*size):
            self.memory.close()
            raise ValueError(f"the buffer {name} is smaller than a {size} tile")
        self.lock = threading.Lock()
        seq = read_header(self.memory).seq
        # Go on from where an earlier engine stopped (even: complete), so the
        # UI never takes a new picture for one it has shown.
        self.seq = seq + seq % 2
        self.placed: tuple[int, int, int, int] | None = None

    def write(self, picture: np.ndarray, left: int, top: int, number: int,
              source: tuple[int, int]) -> None:  # fmt: skip
        import numpy as np  # with the first picture, as OpenCV

        with self.lock:
            memory = self.memory
            if memory is None:
                return
            width, height = self.size
            tile = np.ndarray((height, width, 3), np.uint8, pixels(memory), HEADER)
            self.seq += 1
            write_header(memory, self.seq, number, source)
            placed = (left, top, picture.shape[1], picture.shape[0])
            if placed != self.placed:
                tile[:] = 0
                self.placed = placed
            tile[top : top + picture.shape[0], left : left + picture.shape[1]] = picture
            self.seq += 1
            write_header(memory, self.seq, number, source)
            # The view must go before the buffer can be closed.
            del tile

    def close(self) -> None:
        with self.lock:
            if self.memory is not None:
                self.memory.close()
                self.memory = None


class TileFrames:
    """The tiles the UI shows, by tile key (thread-safe): :meth:`attach` and
    :meth:`drop` from the loop thread, :meth:`put` from producer threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tiles: dict[str, _Tile] = {}

    def attach(self, key: str, name: str, size: tuple[int, int]) -> bool:
        """Write the pictures of ``key`` into the buffer ``name`` from now on;
        ``False`` when the buffer is gone: the UI replaced or dropped the tile
        before this command was read (a resize in quick succession), and a
        newer command for ``key`` follows."""
        try:
            tile = _Tile(name, size)
        except FileNotFoundError:
            return False
        with self._lock:
            old = self._tiles.get(key)
            self._tiles[key] = tile
        if old is not None:
            old.close()
        return True

    def drop(self, key: str) -> None:
        """Stop writing pictures of ``key`` (its tile is gone)."""
        with self._lock:
            tile = self._tiles.pop(key, None)
        if tile is not None:
            tile.close()

    def put(self, key: str, frame: np.ndarray, frame_number: int) -> None:
        """Scale ``frame`` for the tile ``key`` and write it as its newest
        picture (on the producing thread)."""
        with self._lock:
            tile = self._tiles.get(key)
        if tile is None:
            return
        picture, left, top = fit(frame, tile.size)
        tile.write(picture, left, top, frame_number, (frame.shape[1], frame.shape[0]))

    def close(self) -> None:
        with self._lock:
            tiles, self._tiles = list(self._tiles.values()), {}
        for tile in tiles:
            tile.close()
