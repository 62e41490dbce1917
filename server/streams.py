"""Client-opened transfer streams: one request frame, then raw bytes, then a reply.

The first frame names what the stream is for (a :class:`StreamRequest`); the
service that owns that request returns an :class:`UploadSink` that takes the raw
bytes which follow, and answers with one reply frame when the stream ends. A
stream never delays the control stream: QUIC gives each its own flow.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import TYPE_CHECKING, Protocol

from codec import ErrorCode, MessageError, decode_stream_request
from codec.framing import FRAME_HEADER_SIZE, MAX_FRAME_SIZE
from codec.messages import Error, Reply

from .errors import ServiceError

if TYPE_CHECKING:
    from .connection import ClientConnection

__all__ = ["StreamHandler", "UploadSink"]

log = logging.getLogger("quicmeet.streams")


class UploadSink(Protocol):
    """Takes the bytes of one upload stream, then produces the reply."""

    def received(self, data: bytes) -> None:
        """More bytes arrived; raise :class:`ServiceError` to refuse the upload."""

    async def finish(self) -> Reply:
        """The stream ended; check what arrived, store it, return the reply."""

    def abort(self) -> None:
        """The stream or connection broke; drop what was received."""


class StreamHandler:
    """Drives one transfer stream of a connection."""

    def __init__(self, conn: ClientConnection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self._head = bytearray()
        self._sink: UploadSink | None = None
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
            self._sink = self.conn.app.open_stream(self.conn, request)
        except ServiceError as exc:
            self._fail(request.rid, exc.code, exc.message, exc.retry_after_ms)
            return False
        return True

    async def _finish(self, sink: UploadSink) -> None:
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

    def abort(self) -> None:
        self._done = True
        if self._sink is not None:
            self._sink.abort()
        if self._task is not None:
            self._task.cancel()
