"""Errors of the media plane.

Media datagrams come from peers (through the SFU), so a datagram that breaks the
format is a :class:`PacketError`, a kind of
:class:`~codec.errors.RemoteProtocolError`: the receiver drops it and counts it,
the connection survives. Failures of the video codec library are translated into
:class:`VideoCodecError` at the boundary so callers never see PyAV's exceptions.
"""

from __future__ import annotations

from ..errors import CodecError, ErrorCode, RemoteProtocolError

__all__ = ["PacketError", "VideoCodecError"]


class PacketError(RemoteProtocolError):
    """A media datagram that cannot be parsed (truncated, bad version or kind,
    fields out of range). The only exception :func:`parse_packet` raises."""

    code = ErrorCode.BAD_FRAME


class VideoCodecError(CodecError):
    """The video encoder could not be opened or refused a frame."""

    code = ErrorCode.INTERNAL
