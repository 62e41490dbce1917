"""A bare aioquic server: the baseline the quicmeet server is measured against.

It speaks the same ALPN and certificate type, and answers each frame on a stream
with a small frame, like a request and its reply, with no accounts or storage.
Run: ``python bench/_bare_server.py CERT KEY``; prints ``listening on HOST:PORT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _bare import run, serve_until_terminated
from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic import events

REPLY = b"\x00\x00\x00\x10" + b"r" * 16


class Echo(QuicConnectionProtocol):
    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived) and event.data:
            self._quic.send_stream_data(event.stream_id, REPLY)
            self.transmit()
        elif isinstance(event, events.DatagramFrameReceived):
            self._quic.send_datagram_frame(event.data)
            self.transmit()


async def main() -> None:
    await serve_until_terminated(Echo, Path(sys.argv[1]), Path(sys.argv[2]))


if __name__ == "__main__":
    run(main())
