"""The channel between the window and the engine: length-prefixed frames.

A frame is a 4-byte big-endian length and that many bytes (one msgpack map of
:mod:`client.engine.messages`). :class:`FrameReader` is sans-I/O: feed it the
bytes that arrived, take the complete frames out. A frame longer than
:data:`MAX_FRAME` is skipped without being kept, and reported as
:class:`Oversized`, so a bad length costs nothing but that frame.
:func:`encode_up` and :func:`encode_down` make the frames of each side;
:func:`decode_request` turns a frame into a request or a clear failure.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import msgspec

from .errors import FAILED, MALFORMED, TOO_LARGE, UNKNOWN_COMMAND, to_failure_fields
from .messages import COMMANDS, EventMessage, Failure, Reply, Request, Up

__all__ = [
    "MAX_FRAME",
    "FrameReader",
    "Oversized",
    "decode_request",
    "decode_up",
    "encode_event",
    "encode_failure",
    "encode_failure_message",
    "encode_reply",
    "encode_request",
    "frame",
]

MAX_FRAME = 16 * 1024 * 1024
"""The longest frame either side accepts, in bytes (a transfers snapshot of a
few hundred rows or an avatar picture is far below it)."""

_LENGTH = struct.Struct(">I")
_COMMAND_NAMES = frozenset(c.__struct_config__.tag for c in COMMANDS)
_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(Request)
_up_decoder = msgspec.msgpack.Decoder(Up)
_loose_decoder = msgspec.msgpack.Decoder(dict[str, Any])


@dataclass(frozen=True, slots=True)
class Oversized:
    """A frame of ``length`` bytes was longer than the limit and skipped."""

    length: int


class FrameReader:
    """Splits a byte stream into frames (sans-I/O)."""

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._skipping = 0

    def feed(self, data: bytes) -> list[bytes | Oversized]:
        """Take ``data``; return the frames it completed, in order."""
        self._buffer += data
        frames: list[bytes | Oversized] = []
        while True:
            if self._skipping:
                dropped = min(self._skipping, len(self._buffer))
                del self._buffer[:dropped]
                self._skipping -= dropped
                if self._skipping:
                    return frames
            if len(self._buffer) < _LENGTH.size:
                return frames
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > self.limit:
                del self._buffer[: _LENGTH.size]
                self._skipping = length
                frames.append(Oversized(length))
                continue
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                return frames
            frames.append(bytes(self._buffer[_LENGTH.size : end]))
            del self._buffer[:end]


def frame(payload: bytes) -> bytes:
    """``payload`` with its length in front."""
    return _LENGTH.pack(len(payload)) + payload


def encode_request(rid: int, command: Any) -> bytes:
    return frame(_encoder.encode(Request(rid, command)))


def encode_reply(rid: int, value: Any) -> bytes:
    return frame(_encoder.encode(Reply(rid, msgspec.Raw(_encoder.encode(value)))))


def encode_failure(rid: int | None, error: BaseException, code: str = FAILED) -> bytes:
    kind, message, details = to_failure_fields(error)
    return frame(_encoder.encode(Failure(rid, code, kind, message, details)))


def encode_failure_message(failure: Failure) -> bytes:
    """A refusal made by :func:`decode_request`, as a frame."""
    return frame(_encoder.encode(failure))


def encode_event(event: Any) -> bytes:
    body = msgspec.Raw(_encoder.encode(event))
    return frame(_encoder.encode(EventMessage(type(event).__name__, body)))


def decode_up(payload: bytes) -> Reply | Failure | EventMessage:
    """A frame from the engine; raises ``msgspec.DecodeError`` (or its
    ``ValidationError``) for anything else."""
    return _up_decoder.decode(payload)


def decode_request(payload: bytes | Oversized) -> Request | Failure:
    """A frame from the UI as a request, or the failure to answer it with:
    ``too_large``, ``unknown_command`` (a request naming no command of
    ours) or ``malformed`` (anything else), with the request's ``rid`` when
    it has one."""
    if isinstance(payload, Oversized):
        message = f"a frame of {payload.length} bytes is over the {MAX_FRAME} limit"
        return Failure(None, TOO_LARGE, "ChannelError", message, {"code": TOO_LARGE})
    try:
        return _request_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        error = str(exc)
    try:
        loose = _loose_decoder.decode(payload)
    except msgspec.DecodeError:
        loose = {}
    rid = loose.get("rid")
    rid = rid if isinstance(rid, int) and not isinstance(rid, bool) else None
    command = loose.get("command")
    name = command.get("name") if isinstance(command, dict) else None
    if loose.get("type") == "request" and isinstance(name, str):
        if name not in _COMMAND_NAMES:
            message = f"unknown command {name!r}"
            return Failure(
                rid, UNKNOWN_COMMAND, "ChannelError", message, {"code": UNKNOWN_COMMAND}
            )
    message = f"malformed message: {error}"
    return Failure(rid, MALFORMED, "ChannelError", message, {"code": MALFORMED})
