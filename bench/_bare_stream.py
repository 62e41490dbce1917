"""A bare aioquic server for stream throughput baselines.

On each client stream it reads until the end and answers ``ok <bytes>``; a
stream that starts with ``GET <size>\\n`` is answered with that many bytes
instead, keeping at most 8 MiB unacknowledged in aioquic's buffer. Run:
``python bench/_bare_stream.py CERT KEY``; prints ``listening on HOST:PORT``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from _bare import run, serve_until_terminated
from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic import events

WINDOW = 8 * 1024 * 1024
CHUNK = b"\x5a" * (256 * 1024)


def unacked(quic, stream_id: int) -> int:
    """Bytes of a stream aioquic holds until the peer acknowledges them."""
    stream = quic._streams.get(stream_id)
    return len(stream.sender._buffer) if stream is not None else 0


class Bare(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counts: dict[int, int] = {}

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if not isinstance(event, events.StreamDataReceived):
            return
        sid = event.stream_id
        if sid not in self.counts and event.data.startswith(b"GET "):
            size = int(event.data[4:].split(b"\n", 1)[0])
            self.counts[sid] = -1
            asyncio.get_running_loop().create_task(self.send_bytes(sid, size))
            return
        if self.counts.get(sid) == -1:
            return
        self.counts[sid] = self.counts.get(sid, 0) + len(event.data)
        if event.end_stream:
            self._quic.send_stream_data(sid, b"ok %d" % self.counts.pop(sid), True)
            self.transmit()

    async def send_bytes(self, sid: int, size: int) -> None:
        sent = 0
        while sent < size:
            while unacked(self._quic, sid) > WINDOW:
                await asyncio.sleep(0.001)
            piece = CHUNK[: min(len(CHUNK), size - sent)]
            sent += len(piece)
            self._quic.send_stream_data(sid, piece, sent >= size)
            self.transmit()


async def main() -> None:
    await serve_until_terminated(
        Bare, Path(sys.argv[1]), Path(sys.argv[2]), idle_timeout=30.0
    )


if __name__ == "__main__":
    run(main())
