"""A lock-free single-producer, single-consumer ring of byte records.

Two processes share one buffer (the audio process and the engine, through
:mod:`multiprocessing.shared_memory`): one only writes, the other only
reads, and neither ever waits for the other. The first 16 bytes hold two
64-bit counters, ``head`` (bytes ever written, advanced by the writer only)
and ``tail`` (bytes ever read, advanced by the reader only); the rest is the
data area. A record is a 4-byte little-endian length and its bytes; one that
would not fit the free space is refused (:meth:`ByteRing.write` returns
``False``) rather than overwrite what the reader has not taken; one that
would run past the end of the data area starts again at its beginning after
a length of ``0xFFFFFFFF`` that says "wrap".

The writer publishes a record by storing ``head`` after its bytes, the
reader frees space by storing ``tail`` after copying them out. Each counter
is one aligned 8-byte store (numpy), which x86-64 and ARMv8 make atomic and
x86-64 keeps in program order; that is all the synchronisation there is.
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["HEADER_BYTES", "ByteRing"]

HEADER_BYTES = 16
"""The two counters in front of the data area."""
_LENGTH = struct.Struct("<I")
_WRAP = 0xFFFFFFFF


class ByteRing:
    """Records in, records out, over ``buffer`` (a writable buffer of at
    least :data:`HEADER_BYTES` + 64 bytes, whose first bytes are the
    counters). ``reset`` zeroes the counters: only the buffer's creator,
    before the other side uses it."""

    def __init__(self, buffer: memoryview, *, reset: bool = False) -> None:
        if len(buffer) < HEADER_BYTES + 64:
            raise ValueError(f"a ring needs at least {HEADER_BYTES + 64} bytes")
        self._counters = np.frombuffer(buffer, dtype=np.int64, count=2)
        self._data = buffer[HEADER_BYTES:]
        self.capacity = len(self._data)
        """Bytes in the data area."""
        if reset:
            self._counters[:] = 0

    def release(self) -> None:
        """Drop the views of the buffer (so its owner can close it)."""
        del self._counters
        self._data.release()

    @property
    def used(self) -> int:
        """Bytes written and not yet read (lengths and wraps included)."""
        return int(self._counters[0] - self._counters[1])

    def write(self, record: bytes) -> bool:
        """Append ``record`` (writer side); ``False`` when it does not fit
        now (the reader is behind) or ever (longer than the data area)."""
        head = int(self._counters[0])
        free = self.capacity - (head - int(self._counters[1]))
        at = head % self.capacity
        needed = _LENGTH.size + len(record)
        skip = 0
        if self.capacity - at < needed:
            skip = self.capacity - at
        if needed + skip > free or len(record) >= _WRAP:
            return False
        if skip:
            if skip >= _LENGTH.size:
                _LENGTH.pack_into(self._data, at, _WRAP)
            at = 0
        _LENGTH.pack_into(self._data, at, len(record))
        self._data[at + _LENGTH.size : at + needed] = record
        self._counters[0] = head + skip + needed
        return True

    def read(self) -> bytes | None:
        """The oldest record not yet read (reader side), ``None`` when
        there is none."""
        tail = int(self._counters[1])
        head = int(self._counters[0])
        if tail == head:
            return None
        at = tail % self.capacity
        room = self.capacity - at
        if room < _LENGTH.size or _LENGTH.unpack_from(self._data, at)[0] == _WRAP:
            tail += room
            at = 0
        (length,) = _LENGTH.unpack_from(self._data, at)
        record = bytes(self._data[at + _LENGTH.size : at + _LENGTH.size + length])
        self._counters[1] = tail + _LENGTH.size + length
        return record
