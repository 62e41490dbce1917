"""What the bare aioquic baseline servers share: listen with quicmeet's ALPN and
certificate type, announce the port, run until SIGTERM, on uvloop when there."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aioquic.asyncio import serve
from aioquic.quic.configuration import QuicConfiguration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.certs import ensure_certificate  # noqa: E402

__all__ = ["run", "serve_until_terminated"]


async def serve_until_terminated(
    create_protocol: Callable[..., Any],
    cert: Path,
    key: Path,
    *,
    idle_timeout: float = 5.0,
    socket_buffer: int | None = None,
) -> None:
    """Serve on a free loopback port, print ``listening on HOST:PORT``, stop on
    SIGTERM. ``socket_buffer`` sets the UDP socket's buffers (bytes)."""
    ensure_certificate(cert, key, [])
    configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=["quicmeet/1"],
        idle_timeout=idle_timeout,
        max_datagram_frame_size=65536,
    )
    configuration.load_cert_chain(cert, key)
    server = await serve(
        "127.0.0.1", 0, configuration=configuration, create_protocol=create_protocol
    )
    if socket_buffer is not None:
        sock = server._transport.get_extra_info("socket")
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, socket_buffer)
    host, port = server._transport.get_extra_info("sockname")[:2]
    print(f"listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when installed, as the quicmeet server does, or
    on asyncio's own loop when ``BENCH_BARE_LOOP=asyncio`` (aioquic's pacer
    spins on uvloop's millisecond clock at high rates: ``udpio/pacing.py``;
    a baseline is measured on both loops)."""
    try:
        import uvloop
    except ImportError:
        uvloop = None
    if uvloop is None or os.environ.get("BENCH_BARE_LOOP") == "asyncio":
        asyncio.run(main)
    else:
        uvloop.run(main)
