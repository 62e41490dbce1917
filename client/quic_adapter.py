"""The one place the client reaches into aioquic's private attributes.

aioquic offers no public way to read the server's certificate after the
handshake, the smoothed round-trip time, the queue of datagrams waiting to be
sent, or why a handshake failed, nor to release a protocol's timer and socket
at once, nor to change the packet size or learn whether one packet arrived
(path MTU probes). Each such access is a function here, so that an aioquic upgrade
breaks one module (and the test that checks these attributes still exist);
``pyproject.toml`` pins aioquic below the next minor version for the same reason.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from aioquic import tls
from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.packet_builder import QuicDeliveryState
from aioquic.quic.recovery import QuicPacketRecovery
from aioquic.tls import Context
from cryptography.x509 import Certificate

__all__ = [
    "accepts_padding_datagrams",
    "PRIVATE_ATTRIBUTES",
    "close_event",
    "limit_peer_connection_ids",
    "max_datagram_size",
    "peer_certificate",
    "pending_datagrams",
    "quic_of",
    "release",
    "send_mtu_probe",
    "set_max_datagram_size",
    "smoothed_rtt",
    "transmit_soon",
]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnectionProtocol: ("_quic", "_transmit_soon", "_timer", "_transport"),
    QuicConnection: (
        "_datagrams_pending",
        "_loss",
        "_close_event",
        "_local_active_connection_id_limit",
        "_max_datagram_size",
        "_packet_number",
        "_remote_max_datagram_frame_size",
        "_peer_cid",
        "_spaces",
    ),
    QuicPacketRecovery: ("_rtt_smoothed", "_rtt_initialized"),
    Context: ("_peer_certificate",),
}
"""Which private attribute of which aioquic class this module reads."""


PEER_CONNECTION_IDS = 2
"""Connection ids the client asks the server for (the active one and a spare,
the least RFC 9000 allows; aioquic asks for 8). The server keeps each id it
issues for the connection's life, about 120 bytes each in every connection."""


def limit_peer_connection_ids(quic: QuicConnection) -> None:
    """Ask the server for :data:`PEER_CONNECTION_IDS` connection ids; call
    before connecting (the limit travels in the client's transport parameters)."""
    quic._local_active_connection_id_limit = PEER_CONNECTION_IDS


def quic_of(protocol: QuicConnectionProtocol) -> QuicConnection:
    """The sans-I/O connection behind an asyncio protocol."""
    return protocol._quic


def transmit_soon(protocol: QuicConnectionProtocol) -> None:
    """Have the protocol send what is queued at the end of this loop iteration
    (one ``transmit`` for many queued frames)."""
    protocol._transmit_soon()


def release(protocol: QuicConnectionProtocol) -> None:
    """Cancel the protocol's timer and close its socket, without waiting for
    aioquic's own teardown (the connection is already given up)."""
    if protocol._timer is not None:
        protocol._timer.cancel()
        protocol._timer = None
    if protocol._transport is not None:
        protocol._transport.close()


def peer_certificate(quic: QuicConnection) -> Certificate | None:
    """The certificate the server presented in the handshake."""
    return quic.tls._peer_certificate


def pending_datagrams(quic: QuicConnection) -> deque[bytes]:
    """The queue of DATAGRAM payloads not yet sent (it never expires)."""
    return quic._datagrams_pending


def smoothed_rtt(quic: QuicConnection) -> float | None:
    """The smoothed round-trip time in seconds, None before the first sample."""
    loss = quic._loss
    return loss._rtt_smoothed if loss._rtt_initialized else None


def close_event(quic: QuicConnection) -> ConnectionTerminated | None:
    """Why the connection ended (for a handshake that failed), if it has."""
    return quic._close_event


# -- path MTU probes --------------------------------------------------------------

_PROBE_FIXED_OVERHEAD = 1 + 2 + 16 + 1 + 2
"""Bytes of a 1-RTT packet around a DATAGRAM frame's payload besides the
destination connection id: first byte, 2-byte packet number (aioquic always
sends two), AEAD tag, frame type, 2-byte length."""


def max_datagram_size(quic: QuicConnection) -> int:
    """The UDP payload size the connection builds its packets up to."""
    return quic._max_datagram_size


def set_max_datagram_size(quic: QuicConnection, size: int) -> None:
    """Build packets up to ``size`` bytes from now on (aioquic has no public
    way to change it after the configuration)."""
    quic._max_datagram_size = size


def accepts_padding_datagrams(quic: QuicConnection, size: int) -> bool:
    """Whether the peer announced DATAGRAM frames big enough for a probe of
    ``size`` bytes (sending one to a peer that did not is a protocol error)."""
    limit = quic._remote_max_datagram_frame_size
    return limit is not None and limit >= size


def send_mtu_probe(
    quic: QuicConnection,
    size: int,
    padding_mark: int,
    transmit: Callable[[], None],
    done: Callable[[bool], None],
) -> bool:
    """Send one packet of exactly ``size`` bytes with ``transmit``: a DATAGRAM
    frame of padding starting with ``padding_mark`` (the peer drops it), the
    connection's size raised for that one transmit. ``done(acked)`` is called
    once, when the packet is acknowledged or declared lost. Returns False,
    and leaves nothing queued, when the probe could not leave now (the
    congestion window was full).
    """
    overhead = _PROBE_FIXED_OVERHEAD + len(quic._peer_cid.cid)
    padding = bytes([padding_mark]) + bytes(size - overhead - 1)
    first = quic._packet_number
    previous = quic._max_datagram_size
    quic._max_datagram_size = size
    quic.send_datagram_frame(padding)
    try:
        transmit()
    finally:
        quic._max_datagram_size = previous
    pending = quic._datagrams_pending
    for index, data in enumerate(pending):
        if data is padding:
            del pending[index]
            return False
    sent = quic._spaces[tls.Epoch.ONE_RTT].sent_packets
    probes = [p for n, p in sent.items() if n >= first and p.sent_bytes > previous]
    if not probes:
        return False
    reported = False

    def delivered(state: QuicDeliveryState) -> None:
        nonlocal reported
        if not reported:
            reported = True
            done(state == QuicDeliveryState.ACKED)

    for packet in probes:
        packet.delivery_handlers.append((delivered, ()))
    return True
