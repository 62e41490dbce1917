"""What every media datagram shares: byte 0 (version, kind, flags) and the rule
that a field out of range is the sender's bug."""

from __future__ import annotations

import struct
from enum import IntEnum

from ..errors import ErrorCode, LocalProtocolError

VERSION = 1
"""Header version carried in the top two bits of byte 0 (0 is never valid)."""

BASE_MEDIA_PAYLOAD = 1150
"""Media payload bytes a video datagram carries in a QUIC packet of 1,200 bytes,
the size every path carries: the fragment size until a connection's path MTU
search confirms a larger one (QUIC takes 30 bytes of a packet around a DATAGRAM
frame, the video header 20)."""
MAX_MEDIA_PAYLOAD = 1402
"""Most media payload bytes in one datagram (audio frame or video fragment):
what a QUIC packet of 1,452 bytes carries, the largest size the path MTU
search tries."""


class PacketKind(IntEnum):
    """The 3-bit kind in byte 0. Value 7 is reserved and rejected."""

    AUDIO = 0
    VIDEO = 1
    FEEDBACK = 2
    PROBE = 3
    KEYFRAME_REQUEST = 4
    NACK = 5
    RATE_LIMIT = 6


def first_byte(kind: PacketKind, flags: int = 0) -> int:
    """Byte 0: version in bits 7-6, kind in bits 5-3, ``flags`` in bits 2-0."""
    return (VERSION << 6) | (kind << 3) | flags


def pack(layout: struct.Struct, what: str, *fields: int) -> bytes:
    """``layout.pack(*fields)``, a field out of range being a caller bug."""
    try:
        return layout.pack(*fields)
    except struct.error as exc:
        raise LocalProtocolError(
            f"{what} field out of range: {exc}", ErrorCode.INVALID_ARGUMENT
        ) from None
