"""Client-opened transfer streams: one request frame, then the stream's payload.

The first frame names what the stream is for (a :class:`StreamRequest`); the
service that owns that request returns a :class:`StreamSink` that takes every
byte which follows (raw upload data, or frames such as progress reports) and
may answer with one reply frame when the client ends its side. A stream never
delays the control stream: QUIC gives each its own flow.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import TYPE_CHECKING, Protocol

from codec import ErrorCode, MessageError, decode_stream_request
from codec.framing import FRAME_HEADER_SIZE, MAX_FRAME_SIZE
from codec.messages import Error, Message, Reply

from .errors import ServiceError

if TYPE_CHECKING:
    from .connection import ClientConnection

__all__ = ["StreamHandler", "StreamSink"]

log = logging.getLogger("quicmeet.streams")


class StreamSink(Protocol):
    """Takes the bytes of one client-opened stream, then produces the reply."""

    def received(self, data: bytes) -> None:
        """More bytes arrived; raise :class:`ServiceError` to refuse them."""

    async def finish(self) -> Reply | None:
        """The client ended its side; return the last frame to send (and end
        ours), or None when the sink ends the stream itself."""

    def abort(self) -> None:
        """The stream or connection broke; drop what was received."""


class StreamHandler:
    """Drives one transfer stream of a connection."""

    def __init__(self, conn: ClientConnection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self._head = bytearray()
        self._sink: StreamSink | None = None
        self._rid: int | None = None
        self._done = False
        self._task: asyncio.Task[None] | None = None

    def feed(self, data: bytes, end_stream: bool) -> None:
        if self._done:
            return
        if self._sink is None:
            self._head += data
            if not self._read_request():
                if end_stream and not self._done:
                    self._fail(
                        None, ErrorCode.BAD_FRAME, "stream ended before its request"
                    )
                return
            data, self._head = bytes(self._head), bytearray()
        sink = self._sink
        assert sink is not None
        if data:
            try:
                sink.received(data)
            except ServiceError as exc:
                sink.abort()
                self._fail(self._rid, exc.code, exc.message, exc.retry_after_ms)
                return
        if end_stream:
            self._task = asyncio.get_running_loop().create_task(self._finish(sink))

    def _read_request(self) -> bool:
        """Parse the request frame once it is complete; say whether it was."""
        if len(self._head) < FRAME_HEADER_SIZE:
            return False
        (length,) = struct.unpack_from(">I", self._head)
        if length > MAX_FRAME_SIZE:
            self._fail(None, ErrorCode.FRAME_TOO_LARGE, "request frame over 64 KiB")
            return False
        end = FRAME_HEADER_SIZE + length
        if len(self._head) < end:
            return False
        body = bytes(self._head[FRAME_HEADER_SIZE:end])
        del self._head[:end]
        try:
            request = decode_stream_request(body)
        except MessageError as exc:
            self._fail(exc.rid, exc.code, exc.message)
            return False
        self._rid = request.rid
        try:
            self._sink = self.conn.app.open_stream(self.conn, request, self)
        except ServiceError as exc:
            self._fail(request.rid, exc.code, exc.message, exc.retry_after_ms)
            return False
        return True

    async def _finish(self, sink: StreamSink) -> None:
        try:
            reply = await sink.finish()
        except ServiceError as exc:
            reply = Error(
                rid=self._rid,
                code=int(exc.code),
                message=exc.message,
                retry_after_ms=exc.retry_after_ms,
            )
        except Exception:
            log.exception("upload stream failed")
            reply = Error(
                rid=self._rid, code=int(ErrorCode.INTERNAL), message="internal error"
            )
        self._done = True
        if reply is not None:
            self.conn.send_on_stream(self.stream_id, reply, end=True)
        self.conn.stream_done(self.stream_id)

    def _fail(
        self,
        rid: int | None,
        code: ErrorCode,
        message: str,
        retry_after_ms: int | None = None,
    ) -> None:
        """Answer with an error, end our side, and ask the peer to stop sending."""
        self._done = True
        error = Error(
            rid=rid, code=int(code), message=message, retry_after_ms=retry_after_ms
        )
        self.conn.send_on_stream(self.stream_id, error, end=True)
        if not self.conn.closing:
            self.conn._quic.stop_stream(self.stream_id, int(code))
        self.conn.stream_done(self.stream_id)

    # -- for sinks ------------------------------------------------------------

    @property
    def rid(self) -> int | None:
        """The ``rid`` of the stream's request frame."""
        return self._rid

    @property
    def finished(self) -> bool:
        return self._done

    def send(self, message: Message, end: bool = False) -> None:
        """Send one frame to the client on this stream (``end``: and end our
        side; the client may still send until it ends its own)."""
        self.conn.send_on_stream(self.stream_id, message, end)

    def send_raw(self, data: bytes, end: bool = False) -> None:
        """Send payload bytes (not a frame) to the client on this stream."""
        self.conn.send_stream_bytes(self.stream_id, data, end)

    def fail(
        self, code: ErrorCode, message: str, retry_after_ms: int | None = None
    ) -> None:
        """End the stream with an ``Error`` frame and ask the client to stop."""
        if not self._done:
            self._fail(self._rid, code, message, retry_after_ms)

    def abort(self) -> None:
        self._done = True
        if self._sink is not None:
            self._sink.abort()
        if self._task is not None:
            self._task.cancel()
