"""Turning control messages into frames and frames into messages.

The two directions are decoded against different unions: a server only ever
accepts requests (:func:`decode_request`, :func:`decode_stream_request`), a client
only replies and events (:func:`decode_server_message`). Every failure is a
:class:`~codec.errors.RemoteProtocolError` whose ``code`` is the wire error code
and whose ``rid`` is the request id when it could still be read, so the caller can
answer with one ``Error`` reply.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from .errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .framing import MAX_FRAME_SIZE, encode_frame
from .messages import (
    EVENTS,
    REPLIES,
    REQUESTS,
    STREAM_FRAMES,
    STREAM_REQUESTS,
    Message,
    TransferProgress,
)
from .messages.base import Event, Reply, Request, StreamRequest

__all__ = [
    "MessageError",
    "decode_progress",
    "decode_stream_reply",
    "decode_request",
    "decode_server_message",
    "decode_stream_request",
    "encode_message",
    "message_tag",
]

ALPN = "quicmeet/1"
"""The one ALPN this protocol version speaks."""


class MessageError(RemoteProtocolError):
    """A frame that is not an acceptable message; ``rid`` is set when readable."""

    def __init__(self, message: str, code: ErrorCode, rid: int | None) -> None:
        super().__init__(message, code)
        self.rid = rid


_encoder = msgspec.msgpack.Encoder()
_raw_decoder = msgspec.msgpack.Decoder()


def _decoder(types: tuple[type, ...]) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(Union[types])  # type: ignore[arg-type]  # noqa: UP007


_request_decoder = _decoder(REQUESTS)
_stream_request_decoder = _decoder(STREAM_REQUESTS)
_server_decoder = _decoder(REPLIES + EVENTS)
_progress_decoder = _decoder(STREAM_FRAMES)
_stream_reply_decoder = _decoder(REPLIES + STREAM_FRAMES)


def message_tag(cls: type[Message]) -> str:
    """The ``type`` value that names ``cls`` on the wire."""
    return cls.__struct_config__.tag  # type: ignore[return-value]


_ALL_TAGS = frozenset(
    message_tag(c)
    for c in REQUESTS + STREAM_REQUESTS + REPLIES + EVENTS + STREAM_FRAMES
)


def encode_message(message: Message, max_size: int = MAX_FRAME_SIZE) -> bytes:
    """Encode ``message`` as one length-prefixed frame, ready for a stream."""
    body = _encoder.encode(message)
    if len(body) > max_size:
        raise LocalProtocolError(
            f"{type(message).__name__} encodes to {len(body)} bytes, over the "
            f"{max_size}-byte frame limit",
            ErrorCode.FRAME_TOO_LARGE,
        )
    return encode_frame(body, max_size)


MAX_RID = 2**53
"""The largest request id a reply may echo (what :data:`RequestId` accepts)."""


def _diagnose(body: bytes, decoder: msgspec.msgpack.Decoder[Any], accepted: str):
    try:
        return _decode(body, decoder, accepted)
    except RecursionError:
        # msgspec gives up past its nesting limit with a RecursionError, which
        # is not a DecodeError: a 1 KB frame of nested arrays is enough.
        raise MessageError(
            "frame is nested too deeply", ErrorCode.BAD_FRAME, None
        ) from None


def _decode(body: bytes, decoder: msgspec.msgpack.Decoder[Any], accepted: str):
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        try:
            raw = _raw_decoder.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError) as inner:
            raise MessageError(
                f"frame is not valid msgpack: {inner}", ErrorCode.BAD_FRAME, None
            ) from None
        rid = raw.get("rid") if isinstance(raw, dict) else None
        if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid <= MAX_RID:
            rid = None
        if not isinstance(raw, dict):
            raise MessageError(
                "a message must be a msgpack map", ErrorCode.INVALID_MESSAGE, None
            ) from None
        tag = raw.get("type")
        if not isinstance(tag, str):
            raise MessageError(
                "a message needs a string field `type`", ErrorCode.INVALID_MESSAGE, rid
            ) from None
        if tag not in _ALL_TAGS:
            raise MessageError(
                f"unknown message type {tag[:40]!r}", ErrorCode.UNKNOWN_TYPE, rid
            ) from None
        if "Invalid value" in str(exc) and "`$.type`" in str(exc):
            raise MessageError(
                f"{tag} is not accepted here; expected {accepted}",
                ErrorCode.UNEXPECTED_MESSAGE,
                rid,
            ) from None
        raise MessageError(f"{tag}: {exc}", ErrorCode.INVALID_MESSAGE, rid) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MessageError(
            f"frame is not valid msgpack: {exc}", ErrorCode.BAD_FRAME, None
        ) from None


def decode_request(body: bytes) -> Request:
    """Decode a frame from the control stream; only requests are accepted."""
    return _diagnose(body, _request_decoder, "a request")  # type: ignore[no-any-return]


def decode_stream_request(body: bytes) -> StreamRequest:
    """Decode the first frame of a client-opened stream (an upload or download)."""
    return _diagnose(body, _stream_request_decoder, "a stream request")  # type: ignore[no-any-return]


def decode_server_message(body: bytes) -> Reply | Event:
    """Decode a frame sent by the server: a reply or an event."""
    return _diagnose(body, _server_decoder, "a reply or an event")  # type: ignore[no-any-return]


def decode_progress(body: bytes) -> TransferProgress:
    """Decode a frame a downloader sends on its transfer stream."""
    return _diagnose(body, _progress_decoder, "TransferProgress")  # type: ignore[no-any-return]


def decode_stream_reply(body: bytes) -> Reply | TransferProgress:
    """Decode a frame the server sends on a transfer stream."""
    return _diagnose(body, _stream_reply_decoder, "a reply or TransferProgress")  # type: ignore[no-any-return]
