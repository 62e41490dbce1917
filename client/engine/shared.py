"""The shared picture buffers of the meeting's tiles, one per tile.

The UI makes a buffer (``multiprocessing.shared_memory``) at its tile's
display size and names it to the engine (the ``show_tile`` command); the
engine scales each new picture of that tile and writes it over the last one,
so the newest picture wins and nothing queues. Layout, little-endian::

    seq u64 | frame_number u64 | source_width u32 | source_height u32 | RGB pixels

``seq`` is a sequence lock: the writer makes it odd before it writes and even
again after. A reader takes a picture only when ``seq`` is even, differs from
the last one it took, and is the same before and after it copied the pixels;
otherwise it tries again at its next tick. Neither side ever waits.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory

__all__ = [
    "HEADER",
    "SharedPicture",
    "attach",
    "buffer_size",
    "pixels",
    "read_header",
    "write_header",
]

_HEADER = struct.Struct("<QQII")
HEADER = _HEADER.size
"""Bytes in front of the pixels."""


def buffer_size(width: int, height: int) -> int:
    """Bytes of the buffer of a ``width`` x ``height`` tile."""
    return HEADER + width * height * 3


@dataclass(frozen=True, slots=True)
class SharedPicture:
    """What the header says: ``seq`` (even: complete), the picture's frame
    number and the size of the picture it was scaled from (pixels)."""

    seq: int
    frame_number: int
    source_width: int
    source_height: int


def pixels(memory: shared_memory.SharedMemory) -> memoryview:
    """The buffer of ``memory`` (open: its ``buf`` is None only once closed)."""
    assert memory.buf is not None, "the buffer is closed"
    return memory.buf


def read_header(memory: shared_memory.SharedMemory) -> SharedPicture:
    return SharedPicture(*_HEADER.unpack_from(pixels(memory)))


def write_header(
    memory: shared_memory.SharedMemory,
    seq: int,
    frame_number: int,
    source: tuple[int, int],
) -> None:
    _HEADER.pack_into(pixels(memory), 0, seq, frame_number, source[0], source[1])


def attach(name: str) -> shared_memory.SharedMemory:
    """Map the existing buffer ``name`` without owning it: the UI that made
    it unlinks it, and this process's end must not."""
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name, track=False)  # type: ignore[call-arg]
    memory = shared_memory.SharedMemory(name)
    # Before 3.13 attaching registers the segment with this process's
    # resource tracker, which would unlink it (under the UI's feet) when
    # this process ends; see CPython issue 82300.
    resource_tracker.unregister(f"/{memory.name}", "shared_memory")
    return memory
