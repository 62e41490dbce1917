"""A short path for the packets of a bulk stream, for the server and the client.

aioquic builds every packet with its general builder: for each packet it walks
every kind of control frame (ACK, PATH_CHALLENGE, HANDSHAKE_DONE, connection
ids, connection and stream limits for every open stream, PING, CRYPTO), the
DATAGRAM queue, then the stream queue (rebuilt after every packet), writes
each frame through a buffer, and starts one more packet to find there is
nothing left. An upload or a download is one stream with data queued and,
once in a while, an ACK owed: about 25 µs of Python per 1,450-byte packet on
this machine's virtual clock, half of a sender's CPU per packet.

:class:`ShortStreams` builds those packets directly when one stream has data
to send and nothing could be written beside it but an ACK, with aioquic's own
crypto pair, stream sender (``get_frame``: what is sent, resent and
acknowledged stays aioquic's), flow-control counters, pacer calls and
sent-packet records, in the order aioquic makes them: the same plaintext,
header and state afterwards (tests/udpio/test_short_path.py runs the same
transfers through aioquic's method and this one and compares every packet).
What else could be due is checked on the connection's state at each call
(:func:`sendable_streams`, also the short ACK path's check in
:mod:`server.quic_fastpath`); anything else, or two streams with data at once
(aioquic's service order among them is a set's), goes through aioquic's
method. :func:`send_ping` builds a keepalive PING's packet the same way
(the load generator's idle connections send little else).

It reads aioquic's private attributes (listed in :data:`PRIVATE_ATTRIBUTES`,
checked against aioquic 1.7; ``tests/test_quic_adapters.py`` checks they
exist): a connection that lacks any of them keeps aioquic's own method.
"""

from __future__ import annotations

from typing import Any

from aioquic import tls
from aioquic.buffer import Buffer, encode_uint_var, size_uint_var
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.packet import (
    PACKET_FIXED_BIT,
    QuicFrameType,
    QuicPacketType,
    push_ack_frame,
)
from aioquic.quic.packet_builder import QuicSentPacket
from aioquic.quic.recovery import QuicPacketRecovery
from aioquic.quic.stream import QuicStream

__all__ = [
    "AEAD_TAG_SIZE",
    "PRIVATE_ATTRIBUTES",
    "ShortStreams",
    "ack_frame",
    "control_frames_due",
    "give_class",
    "mix_in",
    "install",
    "nothing_to_send",
    "send_ping",
    "sendable_streams",
    "sent_record",
    "short_header",
]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnection: (
        "_state",
        "_close_pending",
        "_handshake_confirmed",
        "_network_paths",
        "_quic_logger",
        "_datagrams_pending",
        "_cryptos",
        "_spaces",
        "_loss",
        "_pacing_at",
        "_probe_pending",
        "_ping_pending",
        "_retire_connection_ids",
        "_streams_queue",
        "_packet_number",
        "_peer_cid",
        "_spin_bit",
        "_max_datagram_size",
        "_ack_eliciting_sent_since_receipt",
        "_close_at",
        "_idle_timeout",
        "_handshake_done_pending",
        "_host_cids",
        "_streams_blocked_pending",
        "_local_max_data",
        "_local_max_streams_bidi",
        "_local_max_streams_uni",
        "_streams",
        "_crypto_streams",
        "_local_ack_delay_exponent",
        "_on_ack_delivery",
        "_on_ping_delivery",
        "_remote_max_data",
        "_remote_max_data_used",
        "_remote_preferred_address",
    ),
    QuicPacketRecovery: ("_pacer",),
}
"""Which private attribute of which aioquic class this module reads."""

AEAD_TAG_SIZE = 16
_ACK = int(QuicFrameType.ACK)
_STREAM_WITH_LENGTH = int(QuicFrameType.STREAM_BASE) | 2
_SAMPLE_PADDING = 2
"""The payload a packet needs at least, its 2-byte packet number included, so
that header protection finds its sample (aioquic's PACKET_NUMBER_MAX_SIZE
less PACKET_NUMBER_SEND_SIZE)."""
_ONE_RTT = tls.Epoch.ONE_RTT
_CONNECTED = QuicConnectionState.CONNECTED
_ONE_RTT_PACKET = QuicPacketType.ONE_RTT


def control_frames_due(
    quic: QuicConnection, space: Any, *, datagrams: bool = True
) -> bool:
    """Whether aioquic's ``_write_application`` could write anything besides
    an ACK and STREAM frames (or ``datagrams_to_send`` do anything else around
    it): each test is one of its frames or conditions, in its order. The
    ACK-of-ACK PING counts when an ACK is owed. Queued DATAGRAM frames count
    unless ``datagrams`` is False (for a short path that sends them)."""
    if (
        quic._state is not _CONNECTED
        or quic._close_pending
        or not quic._handshake_confirmed
        or quic._quic_logger is not None
        or len(quic._network_paths) != 1
        or quic._remote_preferred_address is not None
    ):
        return True
    path = quic._network_paths[0]
    if (
        not path.is_validated  # PATH_CHALLENGE, and the amplification limit
        or quic._handshake_done_pending
        or path.remote_challenges  # PATH_RESPONSE
        or quic._retire_connection_ids
        or quic._streams_blocked_pending
        or quic._ping_pending
        or quic._probe_pending
        or (datagrams and quic._datagrams_pending)
        or not quic._cryptos[_ONE_RTT].send.is_valid()
        or not quic._crypto_streams[_ONE_RTT].sender.buffer_is_empty
    ):
        return True
    if space.ack_at is not None and len(space.ack_queue) > 1:
        if quic._packet_number % 8 == 0:
            return True  # aioquic adds a PING to this ACK (its ACK-of-ACK trigger)
    for cid in quic._host_cids:  # NEW_CONNECTION_ID
        if not cid.was_sent:
            return True
    max_data = quic._local_max_data  # MAX_DATA, MAX_STREAMS
    if max_data.used * 2 > max_data.value or max_data.value != max_data.sent:
        return True
    for limit in (quic._local_max_streams_bidi, quic._local_max_streams_uni):
        if limit.value != limit.sent and (
            limit.sent - limit.used < limit.value - limit.sent
        ):
            return True
    for stream in quic._streams.values():  # MAX_STREAM_DATA
        local = stream.max_stream_data_local
        if stream.max_stream_data_local_sent != local or (
            local and stream.receiver.highest_offset * 2 > local
        ):
            return True
    return False


def sendable_streams(quic: QuicConnection) -> list[QuicStream] | None:
    """The streams aioquic would write STREAM frames for, in its order; None
    when one needs something else (discarding, STOP_SENDING, RESET_STREAM)."""
    sendable = []
    for stream in quic._streams_queue:
        if (
            stream.is_finished
            or stream.receiver.stop_pending
            or stream.sender.reset_pending
        ):
            return None
        if not (stream.is_blocked or stream.sender.buffer_is_empty):
            sendable.append(stream)
    return sendable


def sent_record(
    number: int, now: float, size: int, *, in_flight: bool
) -> QuicSentPacket:
    """aioquic's record of a sent 1-RTT packet: ack-eliciting and in flight,
    or (an ACK alone) neither."""
    return QuicSentPacket(
        epoch=_ONE_RTT,
        in_flight=in_flight,
        is_ack_eliciting=in_flight,
        is_crypto_packet=False,
        packet_number=number,
        packet_type=_ONE_RTT_PACKET,
        sent_time=now,
        sent_bytes=size,
    )


def short_header(quic: QuicConnection, crypto: Any, number: int) -> bytes:
    """A 1-RTT packet's header as aioquic's builder writes it: spin bit, key
    phase, the peer's connection id, a 2-byte packet number."""
    return (
        bytes((PACKET_FIXED_BIT | (quic._spin_bit << 5) | (crypto.key_phase << 2) | 1,))
        + quic._peer_cid.cid
        + (number & 0xFFFF).to_bytes(2, "big")
    )


def ack_frame(
    quic: QuicConnection, space: Any, now: float, header_size: int
) -> tuple[bytes, tuple[Any, Any]]:
    """The ACK frame aioquic's ``_write_ack_frame`` writes as a packet's first
    frame, with its delivery handler; the ACK is no longer owed after it."""
    handler = (quic._on_ack_delivery, (space, space.largest_received_packet))
    size = quic._max_datagram_size
    buf = Buffer(capacity=size)
    buf.push_uint_var(_ACK)
    delay = int((now - space.largest_received_time) * 1000000)
    push_ack_frame(
        buf,
        space.ack_queue,
        delay >> quic._local_ack_delay_exponent,
        size - header_size - 1 - AEAD_TAG_SIZE,
    )
    space.ack_at = None
    return buf.data, handler


_PING_PAYLOAD = bytes((int(QuicFrameType.PING), int(QuicFrameType.PADDING)))
"""A PING frame and the one byte of padding aioquic's builder adds after it,
so that header protection finds its sample (:data:`_SAMPLE_PADDING`)."""


def _nothing_due(quic: QuicConnection, now: float | None = None) -> bool:
    """No ACK owed (given ``now``: none due by then), and no control frame or
    stream data for aioquic's ``_write_application`` to write."""
    space = quic._spaces[_ONE_RTT]
    ack_at = space.ack_at
    return (
        (ack_at is None or (now is not None and ack_at > now))
        # Streams first: a connection sending a download asks at every
        # transmit, and its stream answers sooner than the control frames.
        and sendable_streams(quic) == []
        and not control_frames_due(quic, space)
    )


def nothing_to_send(quic: QuicConnection, now: float) -> bool:
    """Whether aioquic's ``datagrams_to_send(now)`` would build nothing: no
    ACK due by ``now``, no control frame or stream data due, and the pacer not
    holding.
    When true it has done what that call would (the pacer's bucket brought up
    to ``now``, no pacing time), so the call can be left out; when false it
    has changed nothing but the bucket, as the call does first. A connection
    that only PINGs reads an ACK-only packet for each, after which aioquic's
    builder starts a packet only to find nothing for it."""
    if (
        not _nothing_due(quic, now)
        or quic._loss._pacer.next_send_time(now=now) is not None
    ):
        return False
    quic._pacing_at = None
    return True


def send_ping(
    quic: QuicConnection, now: float, uid: int = 0
) -> list[tuple[bytes, Any]] | None:
    """A keepalive: the packet aioquic makes for ``send_ping(uid)`` followed
    by ``datagrams_to_send(now)`` when nothing else is due (a PING frame
    alone, its delivery handler, the pacer calls, the sent-packet record and
    the idle timer's restart, in aioquic's order), built directly. Returns
    the datagrams to send, or None when anything else could be written, an
    ACK is owed, the pacer holds or the congestion window is short: then
    ask aioquic (``send_ping`` and ``datagrams_to_send``). None changes
    nothing but the pacer's bucket, brought up to ``now`` as aioquic's call
    does first. A connection whose only traffic is keepalives
    spends most of its sending in aioquic's general builder otherwise."""
    if not _nothing_due(quic):
        return None
    space = quic._spaces[_ONE_RTT]
    loss = quic._loss
    if loss.congestion_window - loss.bytes_in_flight < quic._max_datagram_size:
        return None
    pacer = loss._pacer
    if pacer.next_send_time(now=now) is not None:
        return None  # aioquic's method would hold it until then
    quic._pacing_at = None
    crypto = quic._cryptos[_ONE_RTT]
    number = quic._packet_number
    packet = crypto.encrypt_packet(
        short_header(quic, crypto, number), _PING_PAYLOAD, number
    )
    pacer.update_after_send(now=now)
    # aioquic starts another packet, which finds nothing to carry.
    quic._pacing_at = pacer.next_send_time(now=now)
    quic._packet_number = number + 1
    record = sent_record(number, now, len(packet), in_flight=True)
    record.delivery_handlers.append((quic._on_ping_delivery, ((uid,),)))
    loss.on_packet_sent(packet=record, space=space)
    if not quic._ack_eliciting_sent_since_receipt:
        quic._close_at = now + quic._idle_timeout()
        quic._ack_eliciting_sent_since_receipt = True
    return [(packet, quic._network_paths[0].addr)]


class ShortStreams(QuicConnection):
    """A connection that builds the packets of one sending stream itself (see
    the module); :func:`install` makes an aioquic connection one by changing
    its class, so no attribute is added to it."""

    sent = 0
    """How many packets the short path built, in this process."""

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        if self._streams_queue:
            space = self._spaces[_ONE_RTT]
            if not control_frames_due(self, space):
                streams = sendable_streams(self)
                if streams is not None and len(streams) == 1:
                    return _send_stream(self, space, streams[0], now)
        return super().datagrams_to_send(now)


def _send_stream(
    quic: QuicConnection, space: Any, stream: QuicStream, now: float
) -> list[tuple[bytes, Any]]:
    # What datagrams_to_send, _write_application, _write_ack_frame,
    # _write_stream_frame, the packet builder and _flush_builder do when one
    # stream (and perhaps an ACK) is all there is, in the same order.
    quic._pacing_at = None
    loss = quic._loss
    pacer = loss._pacer
    crypto = quic._cryptos[_ONE_RTT]
    size = quic._max_datagram_size
    header_size = 3 + len(quic._peer_cid.cid)
    flight_left = loss.congestion_window - loss.bytes_in_flight
    sender = stream.sender
    stream_id = encode_uint_var(stream.stream_id)
    overhead_base = 3 + len(stream_id)
    addr = quic._network_paths[0].addr
    number = quic._packet_number
    datagrams: list[tuple[bytes, Any]] = []
    packets: list[QuicSentPacket] = []
    moved = False
    while True:
        ack_at = space.ack_at
        if ack_at is None or ack_at >= now:  # pacing, unless an ACK is overdue
            pacing_at = pacer.next_send_time(now=now)
            if pacing_at is not None:
                quic._pacing_at = pacing_at
                break
        capacity = size if flight_left >= size else flight_left
        parts: list[bytes] = []
        used = header_size
        handlers: list[tuple[Any, Any]] = []
        if ack_at is not None and ack_at <= now:
            frame, handler = ack_frame(quic, space, now, header_size)
            parts.append(frame)
            handlers.append(handler)
            used += len(frame)
        eliciting = False
        if not (stream.is_blocked or sender.buffer_is_empty):
            next_offset = sender.next_offset
            overhead = overhead_base + (
                size_uint_var(next_offset) if next_offset else 0
            )
            highest = sender.highest_offset
            frame = sender.get_frame(
                capacity - used - AEAD_TAG_SIZE - overhead,
                min(
                    highest + quic._remote_max_data - quic._remote_max_data_used,
                    stream.max_stream_data_remote,
                ),
            )
            if frame is not None:
                data = frame.data
                offset = frame.offset
                length = len(data)
                if offset:
                    head = (
                        bytes((_STREAM_WITH_LENGTH | 4 | frame.fin,))
                        + stream_id
                        + encode_uint_var(offset)
                        + (length | 0x4000).to_bytes(2, "big")
                    )
                else:
                    head = (
                        bytes((_STREAM_WITH_LENGTH | frame.fin,))
                        + stream_id
                        + (length | 0x4000).to_bytes(2, "big")
                    )
                parts.append(head)
                parts.append(data)
                used += len(head) + length
                handlers.append(
                    (sender.on_data_delivery, (offset, offset + length, frame.fin))
                )
                grown = sender.highest_offset - highest
                quic._remote_max_data_used += grown
                moved = moved or grown > 0
                eliciting = True
        if used == header_size:
            break  # aioquic's empty packet, which ends the call
        padding = _SAMPLE_PADDING + header_size - used
        if padding > 0:
            parts.append(bytes(padding))
        in_flight = eliciting or padding > 0
        packet = crypto.encrypt_packet(
            short_header(quic, crypto, number), b"".join(parts), number
        )
        record = sent_record(number, now, len(packet), in_flight=in_flight)
        record.is_ack_eliciting = eliciting
        record.delivery_handlers.extend(handlers)
        packets.append(record)
        datagrams.append((packet, addr))
        if in_flight:
            flight_left -= len(packet)
        number += 1
        pacer.update_after_send(now=now)
    if moved:
        # aioquic puts a stream that sent new data at the end of its queue
        queue = quic._streams_queue
        quic._streams_queue = [other for other in queue if other is not stream]
        quic._streams_queue.append(stream)
    if packets:
        quic._packet_number = number
        for sent in packets:
            loss.on_packet_sent(packet=sent, space=space)
            if sent.is_ack_eliciting and not quic._ack_eliciting_sent_since_receipt:
                quic._close_at = now + quic._idle_timeout()
                quic._ack_eliciting_sent_since_receipt = True
        ShortStreams.sent += len(packets)
    return datagrams


_classes: dict[type, type[ShortStreams]] = {}
"""The class :func:`install` gives a connection, by its own class."""


def install(quic: QuicConnection) -> ShortStreams | None:
    """Have ``quic`` build its packets of one stream on the short path from
    now on; idempotent. Call after :func:`udpio.ack_delay.install` and before
    ``server.quic_fastpath``'s short paths (which then run this one when
    theirs does not apply). Returns the connection, or None (left alone) for
    what is not an aioquic connection or an aioquic without the attributes
    this module reads."""
    return give_class(quic, ShortStreams, _classes)


def give_class(quic: QuicConnection, mixin: type, classes: dict) -> Any:
    """Make ``quic`` an instance of ``mixin`` over its own class (one class per
    base, kept in ``classes``), so no attribute is added to it; idempotent.
    Returns the connection, or None (left alone) for what is not an aioquic
    connection or an aioquic without the attributes this module reads."""
    if isinstance(quic, mixin):
        return quic
    if not isinstance(quic, QuicConnection):
        return None
    if not all(hasattr(quic, name) for name in PRIVATE_ATTRIBUTES[QuicConnection]):
        return None
    if not hasattr(quic._loss, "_pacer"):
        return None
    return mix_in(quic, mixin, classes)


def mix_in(obj: Any, mixin: type, classes: dict) -> Any:
    """Make ``obj`` an instance of ``mixin`` over its own class: one class per
    base, made once and kept in ``classes`` under the base's name, so no
    attribute is added to the object. Returns ``obj``."""
    base = type(obj)
    cls = classes.get(base)
    if cls is None:
        cls = classes[base] = type(base.__name__, (mixin, base), {})
    obj.__class__ = cls
    return obj
