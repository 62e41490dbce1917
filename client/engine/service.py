"""The engine's end of the channel: reads commands, runs them on the loop,
and sends replies and UI events up, in order, never blocking the loop.

:func:`serve` runs until the UI's end of the channel closes (the window was
closed, or the UI process died): then it signs off from the server and
returns, and the engine process exits.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from pathlib import Path

from ..errors import ClientError
from ..home import Home
from .backend import Backend
from .channel import (
    FrameReader,
    decode_request,
    encode_event,
    encode_failure,
    encode_failure_message,
    encode_reply,
)
from .frames import TileFrames
from .handlers import HANDLERS
from .messages import Failure, Request
from .model import UiEvent, coalescing_key

__all__ = ["Outbox", "serve"]

log = logging.getLogger("quicmeet.engine")

HIGH_WATER = 1 << 20
"""Bytes waiting in the socket's send buffer above which events wait in the
outbox, where a newer snapshot replaces an older one (the UI is behind)."""
CLOSE_S = 0.8
"""How long the engine may take to sign off when the channel closes: a
closed window takes both processes down within a second, and the engine of
a UI that died is gone well within 2 s."""
READ_SIZE = 256 * 1024


class Outbox:
    """Frames up to the UI, in the order they were made.

    While the socket takes them they go straight out; when the UI falls
    behind they wait here, and a waiting snapshot event (see
    :func:`~client.engine.model.coalescing_key`) is replaced by a newer one.
    Replies are never dropped, and a reply always follows the events its
    command posted.
    """

    def __init__(self, writer: asyncio.StreamWriter, high_water: int = HIGH_WATER):
        self._writer = writer
        self._high_water = high_water
        # drain() then waits exactly while more than high_water bytes wait.
        writer.transport.set_write_buffer_limits(high=high_water)
        self._backlog: deque[tuple[object | None, bytes]] = deque()
        self._flushing: asyncio.Task[None] | None = None
        self.overflowed = 0
        """Frames that had to wait in the outbox (for tests and benches)."""

    def event(self, event: UiEvent) -> None:
        """Send a UI event (the backend's ``post``; loop thread only)."""
        self.send(encode_event(event), coalescing_key(event))

    def send(self, data: bytes, key: object | None = None) -> None:
        """Send one frame; ``key`` names a snapshot a newer one may replace."""
        if self._writer.is_closing():
            return
        transport = self._writer.transport
        if not self._backlog and transport.get_write_buffer_size() <= self._high_water:
            self._writer.write(data)
            return
        self.overflowed += 1
        if key is not None:
            for index, (waiting, _) in enumerate(self._backlog):
                if waiting == key:
                    del self._backlog[index]
                    break
        self._backlog.append((key, data))
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._backlog and not self._writer.is_closing():
                await self._writer.drain()
                transport = self._writer.transport
                while (
                    self._backlog
                    and transport.get_write_buffer_size() <= self._high_water
                ):
                    self._writer.write(self._backlog.popleft()[1])
        except ConnectionError:
            self._backlog.clear()
        finally:
            self._flushing = None


async def _run(
    request: Request, backend: Backend, frames: TileFrames, outbox: Outbox
) -> None:
    command = request.command
    try:
        value = await HANDLERS[type(command)](backend, frames, command)
        reply = encode_reply(request.rid, value)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if not isinstance(exc, ClientError):
            log.exception("the command %s failed", type(command).__name__)
        outbox.send(encode_failure(request.rid, exc))
        return
    outbox.send(reply)


async def serve(
    sock: socket.socket,
    home: Home,
    *,
    ca_file: Path | None = None,
    idle_timeout: float = 5.0,
) -> None:
    """Run the engine on the channel ``sock`` until the UI closes its end."""
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=READ_SIZE)
    outbox = Outbox(writer)
    frames = TileFrames()
    backend = Backend(
        home, outbox.event, frames=frames, ca_file=ca_file, idle_timeout=idle_timeout
    )
    frame_reader = FrameReader()
    running: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    try:
        while data := await reader.read(READ_SIZE):
            for payload in frame_reader.feed(data):
                request = decode_request(payload)
                if isinstance(request, Failure):
                    log.warning("refused a frame from the UI: %s", request.message)
                    outbox.send(encode_failure_message(request))
                    continue
                task = loop.create_task(_run(request, backend, frames, outbox))
                running.add(task)
                task.add_done_callback(running.discard)
    except ConnectionError:
        pass
    finally:
        for task in running:
            task.cancel()
        try:
            await asyncio.wait_for(backend.close(), CLOSE_S)
        except TimeoutError:
            log.warning("signing off took longer than %.1f s", CLOSE_S)
        except Exception:
            log.exception("closing the engine failed")
        frames.close()
        writer.close()
