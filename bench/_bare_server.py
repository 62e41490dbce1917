"""A bare aioquic server: the baseline the quicmeet server is measured against.

It speaks the same ALPN and certificate type, and answers each frame on a stream
with a small frame, like a request and its reply, with no accounts or storage.
Run: ``python bench/_bare_server.py CERT KEY``; prints ``listening on HOST:PORT``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.certs import ensure_certificate  # noqa: E402

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
    cert, key = Path(sys.argv[1]), Path(sys.argv[2])
    ensure_certificate(cert, key, [])
    configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=["quicmeet/1"],
        idle_timeout=5.0,
        max_datagram_frame_size=65536,
    )
    configuration.load_cert_chain(cert, key)
    server = await serve(
        "127.0.0.1", 0, configuration=configuration, create_protocol=Echo
    )
    host, port = server._transport.get_extra_info("sockname")[:2]
    print(f"listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
