"""Length-prefixed framing for streams: a 4-byte big-endian length, then the body.

Sans-I/O, in the manner of h11: feed the bytes a stream delivered to
:meth:`FrameDecoder.feed` and it returns whole frames. A frame whose announced
length is over the limit is not buffered: its body is skipped as it arrives and the
caller gets an :class:`OversizedFrame` marker in its place, so the stream (and the
connection) survives and the peer can be told with an error reply.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

from .errors import ErrorCode, LocalProtocolError, RemoteProtocolError

__all__ = [
    "FRAME_HEADER_SIZE",
    "MAX_FRAME_SIZE",
    "FrameDecoder",
    "OversizedFrame",
    "encode_frame",
]

MAX_FRAME_SIZE = 64 * 1024
"""Largest frame body accepted, in bytes."""

FRAME_HEADER_SIZE = 4
_HEADER = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class OversizedFrame:
    """Stands in for a frame whose body (``length`` bytes) was over the limit."""

    length: int


def encode_frame(body: bytes, max_size: int = MAX_FRAME_SIZE) -> bytes:
    """Return ``body`` with its length prefix; refuse bodies over ``max_size``."""
    if len(body) > max_size:
        raise LocalProtocolError(
            f"frame of {len(body)} bytes is over the {max_size}-byte limit",
            ErrorCode.FRAME_TOO_LARGE,
        )
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Reassembles frames from the bytes of one stream, in order."""

    def __init__(self, max_size: int = MAX_FRAME_SIZE) -> None:
        self._max_size = max_size
        self._buffer = bytearray()
        self._skip = 0
        self._skipped_length = 0

    @property
    def buffered(self) -> int:
        """Bytes held for a frame that is not complete yet."""
        return len(self._buffer)

    @property
    def held_bytes(self) -> int:
        """Memory the decoder holds for buffering, in bytes (its capacity,
        which a bytearray keeps after its content is consumed)."""
        return sys.getsizeof(self._buffer)

    def feed(self, data: bytes) -> list[bytes | OversizedFrame]:
        """Take the next bytes of the stream; return every frame they complete."""
        out: list[bytes | OversizedFrame] = []
        view = memoryview(data)
        if self._skip:
            taken = min(self._skip, len(view))
            self._skip -= taken
            view = view[taken:]
            if self._skip == 0:
                out.append(OversizedFrame(self._skipped_length))
        if not view:
            return out
        self._buffer += view
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= FRAME_HEADER_SIZE:
            (length,) = _HEADER.unpack_from(buf, pos)
            if length > self._max_size:
                pos += FRAME_HEADER_SIZE
                available = len(buf) - pos
                if available >= length:
                    pos += length
                    out.append(OversizedFrame(length))
                    continue
                self._skip = length - available
                self._skipped_length = length
                pos = len(buf)
                break
            end = pos + FRAME_HEADER_SIZE + length
            if end > len(buf):
                break
            out.append(bytes(buf[pos + FRAME_HEADER_SIZE : end]))
            pos = end
        if pos == len(buf):
            # Give the memory back: a consumed bytearray keeps its capacity,
            # which a connection would otherwise hold for its whole life.
            self._buffer = bytearray()
        elif pos:
            del buf[:pos]
        return out

    def end_of_stream(self) -> None:
        """Call when the stream ends; raises if it ended inside a frame."""
        if self._buffer or self._skip:
            raise RemoteProtocolError(
                "stream ended inside a frame", ErrorCode.BAD_FRAME
            )
