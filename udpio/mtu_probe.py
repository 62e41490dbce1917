"""Path MTU search on an aioquic connection, for the server and the client.

:class:`PathMtuProber` drives the pure search of :mod:`codec.pmtu` on one
connection: it sends its probes, takes their verdicts and sets the size the
connection builds its packets to. It is the one place that reaches aioquic's
private attributes for probes (aioquic has no public way to change the packet
size after the configuration, or to learn whether one packet arrived), so that
an aioquic upgrade breaks this module and ``tests/test_quic_adapters.py``,
which checks that :data:`PRIVATE_ATTRIBUTES` still exist.
"""

from __future__ import annotations

from collections.abc import Callable

from aioquic import tls
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet_builder import QuicDeliveryState
from aioquic.quic.recovery import QuicPacketRecovery

from codec.pmtu import BASE_SIZE, CANDIDATE_SIZES, PADDING_MARK, PathMtuSearch

__all__ = [
    "PRIVATE_ATTRIBUTES",
    "PathMtuProber",
    "accepts_padding_datagrams",
    "datagram_payload_limit",
    "max_datagram_size",
    "send_mtu_probe",
    "set_max_datagram_size",
]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnection: (
        "_datagrams_pending",
        "_max_datagram_size",
        "_packet_number",
        "_peer_cid",
        "_remote_max_datagram_frame_size",
        "_spaces",
        "_loss",
    ),
    QuicPacketRecovery: ("_time_of_last_sent_ack_eliciting_packet",),
}
"""Which private attribute of which aioquic class this module reads."""

_PACKET_OVERHEAD = 1 + 2 + 16
"""Bytes of a 1-RTT packet besides its frames and its destination connection
id: first byte, 2-byte packet number (aioquic always sends two), AEAD tag."""
_DATAGRAM_FRAME_OVERHEAD = 1 + 2
"""A DATAGRAM frame's type byte and 2-byte length."""


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


def datagram_payload_limit(quic: QuicConnection) -> int:
    """The largest DATAGRAM payload (bytes) that fits one packet of the size
    the connection builds now and that the peer accepts; 0 when the peer
    takes no DATAGRAM frames. A larger one would wait in aioquic's queue for
    good, holding every datagram behind it."""
    peer_limit = quic._remote_max_datagram_frame_size
    if peer_limit is None:
        return 0
    around = _PACKET_OVERHEAD + len(quic._peer_cid.cid) + _DATAGRAM_FRAME_OVERHEAD
    return max(
        0, min(quic._max_datagram_size - around, peer_limit - _DATAGRAM_FRAME_OVERHEAD)
    )


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

    What is queued already is sent first, with a transmit of its own: the
    padding then fills the first packet of the probe's transmit alone, which
    tells it from the packets of the same size that follow (a confirmation
    probes the size in use, so stream packets are as large).
    """
    overhead = _PACKET_OVERHEAD + len(quic._peer_cid.cid) + _DATAGRAM_FRAME_OVERHEAD
    padding = bytes([padding_mark]) + bytes(size - overhead - 1)
    transmit()
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
    probe = next(
        (p for n, p in sent.items() if n >= first and p.sent_bytes == size), None
    )
    if probe is None:
        return False

    def delivered(state: QuicDeliveryState) -> None:
        done(state == QuicDeliveryState.ACKED)

    probe.delivery_handlers.append((delivered, ()))
    return True


class PathMtuProber:
    """One connection's path MTU search, from the end of its handshake.

    Call :meth:`probe` before each transmit of the connection (it sends a
    probe when one is due, through ``transmit``); read :attr:`packet_size`
    and :attr:`datagram_payload` for the sizes in use. ``clock`` gives the
    time in seconds (the loop's); ``on_change`` is called when the packet
    size changes, from inside aioquic's ACK or loss processing (so it must not
    send). Without a peer that takes DATAGRAM frames big enough for a probe,
    nothing is ever probed and the size stays at 1,200 bytes.
    """

    __slots__ = ("_clock", "_on_change", "_quic", "_search")

    def __init__(
        self,
        quic: QuicConnection,
        clock: Callable[[], float],
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._quic = quic
        self._clock = clock
        self._on_change = on_change
        self._search = (
            PathMtuSearch()
            if accepts_padding_datagrams(quic, max(CANDIDATE_SIZES))
            else None
        )

    @property
    def packet_size(self) -> int:
        """The UDP payload size packets are built to now (bytes)."""
        return self._search.current if self._search is not None else BASE_SIZE

    @property
    def datagram_payload(self) -> int:
        """The largest DATAGRAM payload one packet carries now (bytes)."""
        return datagram_payload_limit(self._quic)

    def probe(self, transmit: Callable[[], None]) -> None:
        """Send a probe with ``transmit`` if one is due."""
        search = self._search
        if search is None:
            return
        # An idle connection (a server answering keepalives with ACK-only
        # packets) sends nothing ack-eliciting: its confirmation waits.
        size = search.next_probe(
            self._clock(), self._quic._loss._time_of_last_sent_ack_eliciting_packet
        )
        if size is not None and not send_mtu_probe(
            self._quic, size, PADDING_MARK, transmit, self._probed
        ):
            search.probe_not_sent()

    def _probed(self, acked: bool) -> None:
        # Called from inside aioquic's ACK or loss processing: no sending here.
        search = self._search
        assert search is not None
        size = search.in_flight
        if size is None:
            return
        before = search.current
        if acked:
            search.probe_acked(size, self._clock())
        else:
            search.probe_lost(size, self._clock())
        if search.current != before:
            set_max_datagram_size(self._quic, search.current)
            if self._on_change is not None:
                self._on_change()
