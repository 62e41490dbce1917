"""The bytes of an upload: one stream from an offset to the end of the file,
at most a window ahead of what the server reports written. The same loop runs
in the engine and in an upload pump process (:mod:`client.transfers.pump`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from codec import encode_message
from codec.messages import Reply, UploadFile

from ..errors import ClientError, ConnectionLost, NotConnected
from ..transport import ClientProtocol
from .job import CHUNK, WINDOW
from .records import TransferError
from .streams import UploadListener

__all__ = ["PROGRESS_EVERY", "Sent", "StreamLost", "send_from"]

PROGRESS_EVERY = 128 * 1024
"""Bytes the server confirms between two progress reports (at most one
report per chunk sent)."""


class StreamLost(Exception):
    """The connection went away during the stream: ``written`` bytes of the
    file are on the server, ``moved`` went over the network in this stream."""

    def __init__(self, written: int, moved: int) -> None:
        super().__init__(f"stream lost at {written} bytes")
        self.written = written
        self.moved = moved


class Sent:
    """How a stream ended: the server's reply, the bytes this stream moved and
    the bytes of the file the server last reported written."""

    def __init__(self, reply: Reply, moved: int, written: int) -> None:
        self.reply = reply
        self.moved = moved
        self.written = written


async def send_from(
    proto: ClientProtocol,
    file_id: str,
    path: str,
    offset: int,
    size: int,
    checkpoint: Callable[[int], Awaitable[bool]],
    report: Callable[[int], None],
    stopping: Callable[[], bool],
) -> Sent:
    """Send ``path`` from ``offset`` to ``size`` on a new upload stream.

    Every :data:`WINDOW` bytes ``checkpoint(written)`` saves the progress and
    says whether to stop (the stream then ends where it is and the server
    keeps what it has); ``report(written)`` is told each time the server has
    confirmed :data:`PROGRESS_EVERY` more bytes; ``stopping()``, asked before
    every chunk, ends the stream at once. Raises :class:`StreamLost`
    when the connection goes.
    """
    loop = asyncio.get_running_loop()
    try:
        listener = UploadListener()
        request = UploadFile(rid=proto.next_rid(), file_id=file_id, offset=offset)
        stream_id = proto.open_stream(listener, encode_message(request))
    except (ConnectionLost, NotConnected) as exc:
        raise StreamLost(offset, 0) from exc
    listener.written = offset
    reported = offset
    moved = 0
    handle = await loop.run_in_executor(None, open, path, "rb")
    try:
        await loop.run_in_executor(None, handle.seek, offset)
        position = offset
        next_check = position + WINDOW
        while position < size:
            if stopping():
                break
            if position >= next_check:
                next_check = position + WINDOW
                if await checkpoint(listener.written):
                    break
            while position - listener.written >= WINDOW and not listener.final.done():
                listener.moved.clear()
                await listener.moved.wait()
            # Report as the server confirms, not only while the window is
            # full: a path the server keeps up with never fills it.
            if listener.written - reported >= PROGRESS_EVERY:
                reported = listener.written
                report(reported)
            if listener.final.done():
                break
            chunk = await loop.run_in_executor(
                None, handle.read, min(CHUNK, size - position)
            )
            if not chunk:
                raise TransferError(f"{path} is shorter than before")
            proto.send_stream(stream_id, chunk)
            position += len(chunk)
            moved += len(chunk)
        if not listener.final.done():
            proto.send_stream(stream_id, b"", end=True)
        reply = await listener.final
    except ClientError as exc:
        if isinstance(exc, (ConnectionLost, NotConnected)):
            raise StreamLost(listener.written, moved) from exc
        raise
    finally:
        await loop.run_in_executor(None, handle.close)
        proto.close_stream(stream_id)
    return Sent(reply, moved, listener.written)
