"""What an idle server connection keeps, by allocation site (tracemalloc).

N client/server pairs of aioquic connections are wired together in memory on
a virtual clock (no sockets, no event loop): handshake, one request on the
control stream, the server's trim (``server/quic_adapter.py``) as the server
does it, ``--pings`` keepalives 1.5 s apart (what a connection idle for that
long has answered), and the clients dropped. Python's heap before and after
says what the N server connections hold; OpenSSL's contexts and the
allocator's overhead come on top in RSS (``bench/connections.py`` measures
that). Prints one JSON
object: KiB per connection and the largest allocation sites (bytes and
objects per connection).

    python bench/idle_trace.py --n 300
    python bench/idle_trace.py --n 300 --pings 400   # ten minutes idle
"""

from __future__ import annotations

import argparse
import gc
import json
import ssl
import tempfile
import tracemalloc
from pathlib import Path

from _common import ROOT  # noqa: F401,I001  (puts the checkout on sys.path)
from aioquic import tls
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from client import quic_adapter as client_adapter
from codec import ALPN
from codec.media.cc import register_media_congestion_control
from server import quic_adapter
from server.certs import ensure_certificate

NOW = 1.0
"""The clock every connection sees at its handshake (seconds): nothing here
waits."""
KEEPALIVE = 1.5
"""Seconds between a client's keepalive PINGs (the client core's interval)."""
CLIENT_ADDR = ("10.0.0.1", 50000)
SERVER_ADDR = ("10.0.0.2", 4433)


def configurations() -> tuple[QuicConfiguration, QuicConfiguration]:
    """(server, client) configurations as the server and client core use."""
    certs = Path(tempfile.mkdtemp(prefix="quicmeet-trace-"))
    ensure_certificate(certs / "cert.pem", certs / "key.pem", ["localhost"])
    server = QuicConfiguration(
        is_client=False,
        alpn_protocols=[ALPN],
        idle_timeout=30,
        max_datagram_frame_size=65536,
        congestion_control_algorithm=register_media_congestion_control(),
    )
    server.load_cert_chain(certs / "cert.pem", certs / "key.pem")
    client = QuicConfiguration(
        is_client=True,
        alpn_protocols=[ALPN],
        verify_mode=ssl.CERT_NONE,
        server_name="localhost",
        max_datagram_frame_size=65536,
    )
    return server, client


def _exchange(client: QuicConnection, server: QuicConnection, now: float = NOW) -> None:
    for data, _ in client.datagrams_to_send(now):
        server.receive_datagram(data, CLIENT_ADDR, now)
    while (event := server.next_event()) is not None:
        if isinstance(event, events.HandshakeCompleted):
            quic_adapter.release_handshake_state(server)
    for data, _ in server.datagrams_to_send(now):
        client.receive_datagram(data, SERVER_ADDR, now)
    if server.tls.state == tls.State.SERVER_POST_HANDSHAKE:
        # as the server does after each transmit
        quic_adapter.forget_unacknowledged_acks(server)


def idle_server_connection(
    server_config: QuicConfiguration,
    client_config: QuicConfiguration,
    pings: int = 0,
) -> QuicConnection:
    """A server connection after its handshake, one request and ``pings``
    keepalives, trimmed."""
    client = QuicConnection(configuration=client_config)
    # Our client asks for fewer connection ids than aioquic's (absent from
    # checkouts before that limit).
    client_limit = getattr(client_adapter, "limit_peer_connection_ids", None)
    if client_limit is not None:
        client_limit(client)
    client.connect(SERVER_ADDR, now=NOW)
    server = QuicConnection(
        configuration=server_config,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    # Absent from checkouts before the limit (run this file from one to compare).
    limit = getattr(quic_adapter, "limit_peer_connection_ids", None)
    if limit is not None:
        limit(server)
    for _ in range(4):
        _exchange(client, server)
    client.send_stream_data(0, b"a request of about a hundred bytes" * 3)
    for _ in range(3):
        _exchange(client, server)
    for i in range(pings):
        now = NOW + KEEPALIVE * (i + 1)
        client.send_ping(i)
        _exchange(client, server, now)
        _exchange(client, server, now + 0.03)  # the client's delayed ACK
    return server


def run(n: int, sites: int, pings: int) -> dict:
    server_config, client_config = configurations()
    idle_server_connection(server_config, client_config)  # caches and imports
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = [
        idle_server_connection(server_config, client_config, pings) for _ in range(n)
    ]
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    diff = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in diff)
    assert len(kept) == n
    return {
        "connections": n,
        "keepalives_answered": pings,
        "kib_per_connection": round(total / n / 1024, 2),
        "sites": [
            {
                "where": f"{s.traceback[0].filename.split('site-packages/')[-1]}"
                f":{s.traceback[0].lineno}",
                "bytes": round(s.size_diff / n),
                "objects": round(s.count_diff / n, 1),
            }
            for s in diff[:sites]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="server connections")
    parser.add_argument("--sites", type=int, default=25, help="sites to list")
    parser.add_argument(
        "--pings", type=int, default=0, help="keepalives each connection answers"
    )
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.sites, args.pings), indent=1))


if __name__ == "__main__":
    main()
