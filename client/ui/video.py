"""Meeting pictures on the Tk side: one shared buffer per tile, written by the
engine (see :mod:`client.engine.shared` for the layout and the sequence lock).

The Tk side says how big each tile is (:meth:`TileBuffers.set_size`: a new
buffer of that size, named to the engine) and takes new pictures
(:meth:`TileBuffers.take`) every UI tick. Only a picture newer than the last
one taken is copied, straight from the buffer into the image the tile pastes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import shared_memory

from PIL import Image

from ..engine.messages import DropTile, ShowTile
from ..engine.shared import HEADER, buffer_size, pixels, read_header

__all__ = ["TileBuffers", "TilePicture"]


@dataclass(frozen=True, slots=True)
class TilePicture:
    """A picture ready for a tile: ``image`` is RGB at the tile's size."""

    image: Image.Image
    frame_number: int
    source_width: int
    source_height: int


@dataclass
class _Buffer:
    memory: shared_memory.SharedMemory
    size: tuple[int, int]
    seq: int = 0


class TileBuffers:
    """The tiles' buffers, by tile key (Tk thread only); ``send(command)``
    tells the engine about them."""

    def __init__(self, send: Callable[[ShowTile | DropTile], object]) -> None:
        self._send = send
        self._buffers: dict[str, _Buffer] = {}
        self.replaced = 0
        """Pictures the engine wrote over before they were taken (frames the
        Tk side skipped)."""

    def set_size(self, key: str, size: tuple[int, int]) -> None:
        """Show the pictures of ``key`` at ``size`` (pixels) from now on."""
        self._release(key)
        memory = shared_memory.SharedMemory(create=True, size=buffer_size(*size))
        self._buffers[key] = _Buffer(memory, size)
        self._send(ShowTile(key, memory.name, *size))

    def drop(self, key: str) -> None:
        """Stop keeping pictures for ``key`` (its tile is gone)."""
        if self._release(key):
            self._send(DropTile(key))

    def reattach(self) -> None:
        """Name every buffer to the engine again (a new engine started)."""
        for key, buffer in self._buffers.items():
            self._send(ShowTile(key, buffer.memory.name, *buffer.size))

    def take(self, key: str) -> TilePicture | None:
        """The newest picture of ``key`` not taken yet, or None (none new, or
        the engine is writing it right now: try at the next tick)."""
        buffer = self._buffers.get(key)
        if buffer is None:
            return None
        header = read_header(buffer.memory)
        if header.seq == buffer.seq or header.seq % 2:
            return None
        width, height = buffer.size
        image = Image.frombytes(
            "RGB",
            buffer.size,
            pixels(buffer.memory)[HEADER : HEADER + width * height * 3],
        )
        if read_header(buffer.memory).seq != header.seq:
            return None
        self.replaced += max(0, (header.seq - buffer.seq) // 2 - 1)
        buffer.seq = header.seq
        return TilePicture(
            image, header.frame_number, header.source_width, header.source_height
        )

    def close(self) -> None:
        """Free every buffer (the window is closing)."""
        for key in list(self._buffers):
            self._release(key)

    def _release(self, key: str) -> bool:
        buffer = self._buffers.pop(key, None)
        if buffer is None:
            return False
        buffer.memory.close()
        buffer.memory.unlink()
        return True
