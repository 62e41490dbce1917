"""A short path for sending 1-RTT packets that carry only DATAGRAM frames
(and perhaps an ACK).

aioquic builds every packet with its general builder: for each packet it
walks every kind of control frame (ACK, PATH_CHALLENGE, HANDSHAKE_DONE,
NEW_CONNECTION_ID, connection and stream limits, PING, CRYPTO), then the
DATAGRAM queue, then the streams, and starts one more packet to find there is
nothing left. A forwarding server's connection to a subscriber mostly has
only DATAGRAM frames queued; for it, :func:`install` replaces the
connection's ``datagrams_to_send`` with one that builds those packets
directly, with aioquic's own crypto pair (AEAD, then header protection) and
sent-packet record, registered with loss detection and congestion control
as aioquic's ``_flush_builder`` registers them and counted by the
connection's pacer as ``_write_application`` counts them, and falls back to
aioquic's method whenever anything else could be due. The SFU keeps the
connection's DATAGRAM queue short and tops it up before each round of
packets (``FastDatagramSender.refill``).

Anything else could be due unless, since the last call of aioquic's own
method, the connection has received nothing and handled no timer and no
stream was written (each of these marks it *dirty*; :func:`install` wraps
``receive_datagram``, ``handle_timer`` and the stream calls), and that call
left nothing but DATAGRAM frames behind: no pacing hold, room in the
congestion window for a full packet, every stream's send buffer empty. Then
the only frames aioquic could write are DATAGRAMs, plus an ACK, a PING or a
probe, a close or a retired connection id, each of which is checked here and
sends the call to aioquic's method. The packets are the bytes aioquic's
builder makes (tests/server/test_quic_fastpath.py compares them), with its
2-byte packet number, spin bit and key phase.

A member of a meeting acknowledges each burst of media it is sent, and
sends its own media, which the node owes ACKs for: nearly every round
followed a receipt, so three packets in four still came from aioquic's
builder. So a dirty connection is not sent to aioquic's method at once: the
state checks of the short ACK path (:mod:`udpio.short_acks`,
:func:`udpio.short_path.control_frames_due`) tell whether anything but the
DATAGRAM frames and an ACK could be written, and when nothing could, the
short path writes the packets, the first one led by the ACK when one is due
(not paced when overdue, as in aioquic's loop).

Like :mod:`server.quic_adapter`, this module reads aioquic's private
attributes (listed in :data:`PRIVATE_ATTRIBUTES`), checked against aioquic
1.7 (``pyproject.toml`` pins 1.7; see docs/performance.md for 1.2-1.6): a
connection that lacks any of them keeps aioquic's own method, and the tests
compare the packets with those of whichever aioquic is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aioquic import tls
from aioquic.buffer import size_uint_var
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.packet import (
    PACKET_FIXED_BIT,
    QuicFrameType,
)
from aioquic.quic.packet_builder import QuicSentPacket

from udpio import short_path
from udpio.short_path import (
    AEAD_TAG_SIZE,
    ack_frame,
    control_frames_due,
    sendable_streams,
    sent_record,
)

__all__ = [
    "PRIVATE_ATTRIBUTES",
    "FastDatagramSender",
    "install",
]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = short_path.PRIVATE_ATTRIBUTES
"""Which private attribute of which aioquic class this module reads: those of
:mod:`udpio.short_path`, whose checks and packet parts it uses."""

_DATAGRAM = int(QuicFrameType.DATAGRAM_WITH_LENGTH)
_ONE_RTT = tls.Epoch.ONE_RTT
_CONNECTED = QuicConnectionState.CONNECTED

_WRAPPED = (
    "receive_datagram",
    "handle_timer",
    "send_stream_data",
    "reset_stream",
    "stop_stream",
)
"""Public calls after which aioquic's own method decides what to send."""


class FastDatagramSender:
    """Stands in for one connection's ``datagrams_to_send`` (see the module)."""

    __slots__ = ("_quic", "_full", "_clean", "fast_packets", "refill")

    sent = 0
    """How many packets the short path built, in this process (the server's
    stats read it)."""

    def __init__(self, quic: QuicConnection) -> None:
        self._quic = quic
        self._full = type(quic).datagrams_to_send.__get__(quic)
        self._clean = False
        self.fast_packets = 0
        """How many packets this short path built (tests and benchmarks)."""
        self.refill: Callable[[float], int] | None = None
        """Called with ``now`` before each round of packets: the owner of the
        connection's DATAGRAM queue (the SFU's pacer, :mod:`server.sfu_hop`)
        tops it up and returns how many datagrams it queued. While it queues
        some and packets leave, another round follows, so a queue kept to a
        few datagrams still lets a whole burst leave in one call."""

    def dirty(self) -> None:
        """Let aioquic's own method decide on the next call."""
        self._clean = False

    def __call__(self, now: float) -> list[tuple[bytes, Any]]:
        refill = self.refill
        if refill is None:
            return self._round(now)
        refill(now)
        datagrams = self._round(now)
        while datagrams and refill(now):
            more = self._round(now)
            if not more:
                break
            datagrams += more
        return datagrams

    def _round(self, now: float) -> list[tuple[bytes, Any]]:
        quic = self._quic
        if quic._datagrams_pending:
            space = quic._spaces[_ONE_RTT]
            ack_at = space.ack_at
            if self._clean and (ack_at is None or ack_at > now):
                if (
                    quic._state is _CONNECTED
                    and not quic._close_pending
                    and not quic._probe_pending
                    and not quic._ping_pending
                    and not quic._retire_connection_ids
                    and quic._quic_logger is None
                    and len(quic._network_paths) == 1
                ):
                    return self._send(quic, space, now)
            elif _only_datagrams_due(quic, space):
                # A member acknowledges each burst of media it is sent and
                # sends its own, which this end owes ACKs for: asking aioquic
                # after every packet received built most packets with its
                # general builder.
                self._clean = True
                return self._send(quic, space, now)
        datagrams = self._full(now)
        self._clean = self._left_only_datagrams(quic)
        return datagrams

    def _left_only_datagrams(self, quic: QuicConnection) -> bool:
        if (
            quic._state is not _CONNECTED
            or not quic._handshake_confirmed
            or quic._pacing_at is not None
            or quic._quic_logger is not None
            or len(quic._network_paths) != 1
            or not quic._network_paths[0].is_validated
            or quic._network_paths[0].remote_challenges
        ):
            return False
        loss = quic._loss
        if loss.congestion_window - loss.bytes_in_flight < quic._max_datagram_size:
            return False
        return all(stream.sender.buffer_is_empty for stream in quic._streams_queue)

    def _send(
        self, quic: QuicConnection, space: Any, now: float
    ) -> list[tuple[bytes, Any]]:
        # What aioquic's _write_application, _write_ack_frame and
        # _flush_builder do for packets of DATAGRAM frames alone, the first
        # one led by the ACK when one is due, in the same order.
        quic._pacing_at = None
        loss = quic._loss
        pacer = loss._pacer
        crypto = quic._cryptos[_ONE_RTT]
        pending = quic._datagrams_pending
        peer_cid = quic._peer_cid.cid
        header_size = 3 + len(peer_cid)
        size = quic._max_datagram_size
        flight_left = loss.congestion_window - loss.bytes_in_flight
        addr = quic._network_paths[0].addr
        first_byte_base = PACKET_FIXED_BIT | (quic._spin_bit << 5) | 1
        number = quic._packet_number
        datagrams: list[tuple[bytes, Any]] = []
        packets: list[QuicSentPacket] = []
        eliciting = False
        while True:
            # Like aioquic's loop this asks the pacer once more after the
            # queue is empty (the packet it starts then finds nothing), and
            # not before a packet that carries an overdue ACK.
            ack_at = space.ack_at
            if ack_at is None or ack_at >= now:
                pacing_at = pacer.next_send_time(now=now)
                if pacing_at is not None:
                    quic._pacing_at = pacing_at
                    break
            room = min(size, flight_left) - header_size - AEAD_TAG_SIZE
            frames: list[bytes] = []
            handler = None
            if ack_at is not None and ack_at <= now:
                frame, handler = ack_frame(quic, space, now, header_size)
                frames.append(frame)
                room -= len(frame)
            carries = False
            while pending:
                data = pending[0]
                length = len(data)
                frame_size = 1 + size_uint_var(length) + length
                if frame_size > room:
                    break
                frames.append(_frame_header(length))
                frames.append(data)
                room -= frame_size
                pending.popleft()
                carries = True
            if not frames:
                break
            header = (
                bytes((first_byte_base | (crypto.key_phase << 2),))
                + peer_cid
                + (number & 0xFFFF).to_bytes(2, "big")
            )
            packet = crypto.encrypt_packet(header, b"".join(frames), number)
            pacer.update_after_send(now=now)
            record = sent_record(number, now, len(packet), in_flight=carries)
            if handler is not None:
                record.delivery_handlers.append(handler)
            packets.append(record)
            datagrams.append((packet, addr))
            if carries:
                flight_left -= len(packet)
                eliciting = True
            number += 1
        if packets:
            quic._packet_number = number
            for sent in packets:
                loss.on_packet_sent(packet=sent, space=space)
            if eliciting and not quic._ack_eliciting_sent_since_receipt:
                quic._close_at = now + quic._idle_timeout()
                quic._ack_eliciting_sent_since_receipt = True
            self.fast_packets += len(packets)
            FastDatagramSender.sent += len(packets)
        return datagrams


def _frame_header(length: int) -> bytes:
    if length < 0x40:
        return bytes((_DATAGRAM, length))
    if length < 0x4000:
        return bytes((_DATAGRAM, 0x40 | length >> 8, length & 0xFF))
    return bytes((_DATAGRAM,)) + (0x80000000 | length).to_bytes(4, "big")


def install(quic: QuicConnection) -> FastDatagramSender | None:
    """Give ``quic`` the short path; idempotent. Returns its sender, or None
    for what is not an aioquic connection (a test's stand-in), left alone."""
    if not isinstance(quic, QuicConnection):
        return None
    if not all(hasattr(quic, name) for name in PRIVATE_ATTRIBUTES[QuicConnection]):
        return None  # another aioquic than the one this was checked against
    if not hasattr(quic._loss, "_pacer"):
        return None
    sender = quic.__dict__.get("datagrams_to_send")
    if isinstance(sender, FastDatagramSender):
        return sender
    sender = FastDatagramSender(quic)
    for name in _WRAPPED:
        # What the connection has now: aioquic's method, or another module's
        # wrapper of it (udpio.ack_delay), which then runs inside this one.
        quic.__dict__[name] = _dirtying(sender, getattr(quic, name))
    quic.__dict__["datagrams_to_send"] = sender
    return sender


def _dirtying(sender: FastDatagramSender, method: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        sender._clean = False
        return method(*args, **kwargs)

    return call


def _only_datagrams_due(quic: QuicConnection, space: Any) -> bool:
    """Whether, from the connection's state alone, aioquic's method would
    write nothing but the queued DATAGRAM frames and perhaps an ACK (no
    ACK-of-ACK PING: :func:`udpio.short_path.control_frames_due` counts it),
    with room in the congestion window for a full packet."""
    loss = quic._loss
    return (
        loss.congestion_window - loss.bytes_in_flight >= quic._max_datagram_size
        and not control_frames_due(quic, space, datagrams=False)
        and sendable_streams(quic) == []
    )
