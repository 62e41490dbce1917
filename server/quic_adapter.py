"""The one place the server reaches into aioquic's private attributes.

aioquic offers no public way to read a connection's peer address, its queue of
datagrams waiting to be sent, or the socket of a listening server. Each such
access is a function here, so that an aioquic upgrade breaks one module (and
the test that checks these attributes still exist) instead of the services.
``pyproject.toml`` pins aioquic below the next minor version for the same reason.
"""

from __future__ import annotations

import socket
from collections import deque

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic.connection import QuicConnection

__all__ = [
    "PRIVATE_ATTRIBUTES",
    "pending_datagrams",
    "peer_host",
    "quic_of",
    "server_socket",
    "transmit_soon",
]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnectionProtocol: ("_quic", "_transmit_soon"),
    QuicConnection: ("_network_paths", "_datagrams_pending"),
    QuicServer: ("_transport",),
}
"""Which private attribute of which aioquic class this module reads."""


def quic_of(protocol: QuicConnectionProtocol) -> QuicConnection:
    """The sans-I/O connection behind an asyncio protocol."""
    return protocol._quic


def transmit_soon(protocol: QuicConnectionProtocol) -> None:
    """Have the protocol send what is queued at the end of this loop iteration
    (one ``transmit`` for many queued frames)."""
    protocol._transmit_soon()


def peer_host(quic: QuicConnection) -> str:
    """The IP address the connection's first network path came from, or "?"."""
    paths = quic._network_paths
    return str(paths[0].addr[0]) if paths else "?"


def pending_datagrams(quic: QuicConnection) -> deque[bytes]:
    """The connection's queue of DATAGRAM payloads not yet sent (unbounded in
    aioquic: the SFU reads its length and drops what would be late)."""
    return quic._datagrams_pending


def server_socket(server: QuicServer) -> socket.socket:
    """The UDP socket a listening server reads and writes."""
    sock: socket.socket = server._transport.get_extra_info("socket")
    return sock
