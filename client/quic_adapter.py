"""The one place the client reaches into aioquic's private attributes.

aioquic offers no public way to read the server's certificate after the
handshake, the smoothed round-trip time, the queue of datagrams waiting to be
sent, the connection's congestion controller, or why a handshake failed, nor
to release a protocol's timer and socket at once (path MTU probes reach
aioquic through :mod:`udpio.mtu_probe`, a change of controller through
:mod:`udpio.controller`). Each such access is a function here, so that an
aioquic upgrade breaks one module (and the test that checks these attributes
still exist); ``pyproject.toml`` pins aioquic below the next minor version
for the same reason.
"""

from __future__ import annotations

from collections import deque

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic.congestion.base import QuicCongestionControl
from aioquic.quic.connection import END_STATES, QuicConnection
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.recovery import QuicPacketRecovery
from aioquic.tls import Context
from cryptography.x509 import Certificate

__all__ = [
    "PRIVATE_ATTRIBUTES",
    "close_event",
    "congestion_control",
    "limit_peer_connection_ids",
    "peer_certificate",
    "peer_idle_timeout",
    "pending_datagrams",
    "quic_of",
    "release",
    "set_idle_timer",
    "smoothed_rtt",
    "transmit_soon",
    "unanswered_since",
]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnectionProtocol: ("_quic", "_transmit_soon", "_timer", "_transport"),
    QuicConnection: (
        "_datagrams_pending",
        "_loss",
        "_close_event",
        "_local_active_connection_id_limit",
        "_remote_max_idle_timeout",
        "_configuration",
        "_ack_eliciting_sent_since_receipt",
        "_close_at",
        "_idle_timeout",
        "_state",
    ),
    QuicPacketRecovery: ("_rtt_smoothed", "_rtt_initialized", "_cc"),
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


def congestion_control(quic: QuicConnection) -> QuicCongestionControl:
    """The connection's congestion controller (ours: ``codec.media.cc``)."""
    return quic._loss._cc


def close_event(quic: QuicConnection) -> ConnectionTerminated | None:
    """Why the connection ended (for a handshake that failed), if it has."""
    return quic._close_event


def peer_idle_timeout(quic: QuicConnection) -> float | None:
    """The idle timeout (seconds) the server announced in its transport
    parameters; None before the handshake or if it announced none."""
    return quic._remote_max_idle_timeout


def set_idle_timer(quic: QuicConnection, seconds: float) -> None:
    """Run aioquic's idle timer at ``seconds`` from now on, even past the
    server's announced one. Our transport parameters, which announced another
    value, are already sent: this changes only when this end gives a silent
    connection up. aioquic reads the value from the configuration, which is
    this connection's own, and takes the smaller of it and the server's, so
    the server's is dropped here (read :func:`peer_idle_timeout` before)."""
    before = quic._idle_timeout()
    quic._configuration.idle_timeout = seconds
    quic._remote_max_idle_timeout = None
    if quic._close_at is not None and quic._state not in END_STATES:
        quic._close_at += quic._idle_timeout() - before  # the running timer too


def unanswered_since(quic: QuicConnection) -> float | None:
    """When (loop time) the first ack-eliciting packet went out that nothing
    from the peer has followed yet; None if something came since the last
    such packet. aioquic starts its idle timer at that send (RFC 9000 10.1)."""
    if not quic._ack_eliciting_sent_since_receipt or quic._close_at is None:
        return None
    return quic._close_at - quic._idle_timeout()
