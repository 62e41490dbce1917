"""The server's side of upload and download streams, and the transfer rate."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from codec import FrameDecoder, MessageError, OversizedFrame
from codec.messages import Reply, TransferProgress
from codec.protocol import decode_stream_reply

from ..errors import ClientError, ConnectionLost

__all__ = ["DownloadListener", "Rate", "UploadListener"]


class Rate:
    """Bytes per second over the last few seconds."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, done: int) -> float:
        now = time.monotonic()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > 3.0:
            self._samples.popleft()
        first_t, first_done = self._samples[0]
        return (done - first_done) / (now - first_t) if now > first_t else 0.0


class UploadListener:
    """The server's side of an upload stream: progress frames, then one reply."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.written = 0
        self.final: asyncio.Future[Reply] = loop.create_future()
        self.moved = asyncio.Event()
        self._decoder = FrameDecoder()

    def data_received(self, data: bytes, end: bool) -> None:
        for frame in self._decoder.feed(data):
            if isinstance(frame, OversizedFrame):
                continue
            try:
                message = decode_stream_reply(frame)
            except MessageError as exc:
                self.broken(ConnectionLost(f"bad frame from the server: {exc}"))
                return
            if isinstance(message, TransferProgress):
                self.written = max(self.written, message.written)
            elif not self.final.done():
                self.final.set_result(message)
            self.moved.set()
        if end and not self.final.done():
            self.broken(ConnectionLost("the server ended the upload without a reply"))

    def broken(self, error: ClientError) -> None:
        if not self.final.done():
            self.final.set_exception(error)
        self.moved.set()


class DownloadListener:
    """The server's side of a download stream: a header frame, then raw bytes."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.header: asyncio.Future[Reply] = loop.create_future()
        self.chunks: asyncio.Queue[bytes | ClientError | None] = asyncio.Queue()
        self.arrived = asyncio.Event()
        self._head = bytearray()

    def data_received(self, data: bytes, end: bool) -> None:
        if not self.header.done():
            self._head += data
            if len(self._head) < 4:
                return
            length = int.from_bytes(self._head[:4], "big")
            if len(self._head) < 4 + length:
                return
            try:
                message = decode_stream_reply(bytes(self._head[4 : 4 + length]))
            except MessageError as exc:
                self.broken(ConnectionLost(f"bad header from the server: {exc}"))
                return
            data = bytes(self._head[4 + length :])
            self._head = bytearray()
            self.header.set_result(message)  # type: ignore[arg-type]
        if data:
            self.chunks.put_nowait(data)
        if end:
            self.chunks.put_nowait(None)
        self.arrived.set()

    def broken(self, error: ClientError) -> None:
        if not self.header.done():
            self.header.set_exception(error)
        self.chunks.put_nowait(error)
        self.arrived.set()

    async def wait_more(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for more to arrive."""
        self.arrived.clear()
        if self.chunks.empty():
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout)
            except TimeoutError:
                pass
