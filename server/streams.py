"""Client-opened transfer streams: one request frame, then the stream's payload.

The first frame names what the stream is for (a :class:`StreamRequest`); the
service that owns that request returns a :class:`StreamSink` that takes every
byte which follows (raw upload data, or frames such as progress reports) and
may answer with one reply frame when the client ends its side. A stream never
delays the control stream: QUIC gives each its own flow.
"""

from __future__ import annotations

import asyncio
import struct
from typing import TYPE_CHECKING, Protocol

from codec import ErrorCode, MessageError, decode_stream_request
from codec.framing import FRAME_HEADER_SIZE
from codec.messages import Error, Message, Reply

from .errors import ServiceError

if TYPE_CHECKING:
    from .connection import ClientConnection

__all__ = ["STREAM_ABANDONED", "StreamHandler", "StreamSink"]

MAX_STREAM_REQUEST = 4096
"""Largest request frame that opens a transfer stream, in bytes. The requests
are tiny; a larger announced length is refused at once rather than buffered
(a connection may hold a hundred streams)."""
STREAM_ABANDONED = 0
"""Application error code of a reset or STOP_SENDING that only says this side
gave up on the stream (the client's own resets use it too)."""


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
    """Owns one client-opened transfer stream from its first byte until both
    sides have ended.

    The client's side ends with its FIN or a reset; ours with our last frame,
    a reset, or the client's STOP_SENDING. Only when both have ended does the
    handler leave its connection (:meth:`ClientConnection.stream_done`), so a
    sink that is still sending or waiting for progress always has an owner to
    abort it, and bytes that arrive after we answered are dropped here.
    """

    def __init__(self, conn: ClientConnection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self._head = bytearray()
        self._sink: StreamSink | None = None
        self._rid: int | None = None
        self._local_ended = False
        self._peer_ended = False
        self._raw_started = False
        self._accepting = True
        """False once the stream failed or was stopped: later bytes are dropped."""
        self._task: asyncio.Task[None] | None = None

    def feed(self, data: bytes, end_stream: bool) -> None:
        """Bytes the client sent on the stream (``end_stream``: its FIN)."""
        if self._peer_ended:
            return
        self._peer_ended = end_stream
        if not self._accepting:
            self._settle()
            return
        if self._sink is None:
            self._head += data
            if not self._read_request():
                if end_stream and not self._local_ended:
                    self._fail(
                        None, ErrorCode.BAD_FRAME, "stream ended before its request"
                    )
                self._settle()
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
        if length > MAX_STREAM_REQUEST:
            self._fail(
                None,
                ErrorCode.FRAME_TOO_LARGE,
                f"a stream's request frame is at most {MAX_STREAM_REQUEST} bytes",
            )
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
            self._sink = self.conn.app.router.open_stream(self.conn, request, self)
        except ServiceError as exc:
            self._fail(request.rid, exc.code, exc.message, exc.retry_after_ms)
            return False
        return True

    async def _finish(self, sink: StreamSink) -> None:
        reply = await self.conn.app.router.settle(
            self._rid, type(sink).__name__, sink.finish()
        )
        if reply is not None and not self._local_ended:
            self.send(reply, end=True)
        self._settle()

    def _fail(
        self,
        rid: int | None,
        code: ErrorCode | int,
        message: str,
        retry_after_ms: int | None = None,
    ) -> None:
        """Answer with an error (or a reset, inside raw payload bytes), end our
        side, and ask the client to stop sending."""
        self._accepting = False
        self._head = bytearray()
        if not self._local_ended:
            if self._raw_started:
                self.conn.reset_stream(self.stream_id, code)
            else:
                error = Error(
                    rid=rid,
                    code=int(code),
                    message=message,
                    retry_after_ms=retry_after_ms,
                )
                self.conn.send_on_stream(self.stream_id, error, end=True)
            self._local_ended = True
        if not self._peer_ended:
            self.conn.stop_receiving(self.stream_id, code)
        self._settle()

    def _settle(self) -> None:
        if self._local_ended and self._peer_ended:
            self.conn.stream_done(self.stream_id)
            # The sink refers to this handler: kept, the pair would be a
            # cycle holding the connection after it ends (server.heap).
            self._sink = None

    # -- events of the connection ---------------------------------------------

    def peer_reset(self) -> None:
        """The client reset its side: drop everything and end ours too."""
        self._peer_ended = True
        self._stop_sink()
        if not self._local_ended:
            self._local_ended = True
            self.conn.reset_stream(self.stream_id, STREAM_ABANDONED)
        self._settle()

    def peer_stopped(self) -> None:
        """The client sent STOP_SENDING (aioquic has reset our side already)."""
        self._local_ended = True
        self._stop_sink()
        if not self._peer_ended:
            self.conn.stop_receiving(self.stream_id, STREAM_ABANDONED)
        self._settle()

    def close(self) -> None:
        """The connection is gone: drop the sink and its work."""
        self._local_ended = self._peer_ended = True
        self._stop_sink()

    def _stop_sink(self) -> None:
        self._accepting = False
        self._head = bytearray()
        if self._sink is not None:
            self._sink.abort()
            self._sink = None
        if self._task is not None:
            # Cancelled, it keeps an error whose traceback holds this handler.
            self._task.cancel()
            self._task = None

    # -- for sinks ------------------------------------------------------------

    @property
    def rid(self) -> int | None:
        """The ``rid`` of the stream's request frame."""
        return self._rid

    @property
    def finished(self) -> bool:
        """Whether our side of the stream has ended."""
        return self._local_ended

    @property
    def peer_ended(self) -> bool:
        """Whether the client has ended its side (FIN or reset)."""
        return self._peer_ended

    def send(self, message: Message, end: bool = False) -> None:
        """Send one frame to the client on this stream (``end``: and end our
        side; the client may still send until it ends its own)."""
        if self._local_ended:
            return
        self.conn.send_on_stream(self.stream_id, message, end)
        if end:
            self._local_ended = True
            self._settle()

    def send_raw(self, data: bytes, end: bool = False) -> None:
        """Send payload bytes (not a frame) to the client on this stream."""
        if self._local_ended:
            return
        self._raw_started = True
        self.conn.send_stream_bytes(self.stream_id, data, end)
        if end:
            self._local_ended = True
            self._settle()

    def fail(
        self, code: ErrorCode | int, message: str, retry_after_ms: int | None = None
    ) -> None:
        """End the stream with an ``Error`` frame (a reset once payload bytes
        went out) and ask the client to stop sending."""
        self._fail(self._rid, code, message, retry_after_ms)
