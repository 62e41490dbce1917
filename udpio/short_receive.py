"""A short path for receiving the packets of an established connection
(either end's; the server installs it, the client does not: see
docs/performance.md, "Receiving on a short path").

aioquic's ``receive_datagram`` is written for every packet a connection can
meet: it parses a general header into an object, looks the destination
connection id up among the host's, weighs version negotiation, Retry, the
server's first flight, the epochs' keys and spaces, builds a receive context,
and hands every frame to ``_payload_received``, which finds the frame's
handler in a table and checks its epoch; then it looks at migration and path
validation for the packet. For a 1-RTT packet of an established connection on
its one path nearly all of that decides nothing: a download's receiving end
spent about half of its loop in ``receive_datagram``, of which the
decryption (3 µs of a 1,450-byte packet's 17 on this machine's virtual clock,
the AES-GCM itself 0.8 in the ``cryptography`` package) was a quarter.

:class:`ShortReceive` takes a datagram that holds one 1-RTT packet, sent to
the connection's current connection id from the address of its one validated
path, once the handshake is confirmed, and does what aioquic's method does for
it, in its order: aioquic's own crypto pair decrypts it (key updates
included), duplicates are dropped, the spin bit and the expected packet number
move, STREAM, DATAGRAM, PING and PADDING frames are handled in place (each with
aioquic's checks: stream direction, flow control, final size, DATAGRAM size)
and every other frame (and a STREAM frame that opens a stream or finds it
discarded) goes to aioquic's handler for it; then the idle timer, the ACK
ranges and the ACK's due time. Any other datagram (a long header, another
connection id or address, a qlog kept, a handshake not yet confirmed) goes
to aioquic's method, before decryption. ``tests/udpio/test_short_receive.py``
runs the same transfers, losses, key updates and malformed packets through
both and compares the state after every datagram.

A packet of ACK frames (and padding) that acknowledges nothing new, from the
connection's path, is *quiet*: the ACK between an idle client's keepalive
PINGs (``client.transport.keepalive_plan``) is one. aioquic's ACK handler
then only notes the largest number acknowledged (and the controller the
peer's ACK delay); no event, no ACK owed, no loss timer or congestion window
moved. Only the idle timer moved, later, so the connection's armed deadline
comes early at worst, where aioquic's ``handle_timer`` finds nothing due.
:attr:`ShortReceive.quiet` counts them, and :class:`udpio.held_events.HoldsEvents`
skips the events and the transmit after one (``tests/udpio/test_quiet_receipt.py``;
a real node in ``tests/test_bench_load.py``).

It reads aioquic's private attributes (listed in :data:`PRIVATE_ATTRIBUTES`,
checked against aioquic 1.7; ``tests/test_quic_adapters.py`` checks they
exist): a connection that lacks any of them keeps aioquic's own method.
"""

from __future__ import annotations

from typing import Any

from aioquic import tls
from aioquic.buffer import UINT_VAR_MAX, Buffer, BufferReadError
from aioquic.quic.connection import (
    QuicConnection,
    QuicConnectionError,
    QuicConnectionState,
    QuicReceiveContext,
)
from aioquic.quic.crypto import CryptoError, KeyUnavailableError
from aioquic.quic.events import DatagramFrameReceived
from aioquic.quic.packet import (
    NON_ACK_ELICITING_FRAME_TYPES,
    PROBING_FRAME_TYPES,
    QuicErrorCode,
    QuicFrameType,
    QuicStreamFrame,
)
from aioquic.quic.recovery import MAX_ACK_RANGES
from aioquic.quic.stream import FinalSizeError, StreamFinishedError

from .short_path import mix_in

__all__ = ["PRIVATE_ATTRIBUTES", "ShortReceive", "install"]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnection: (
        "_state",
        "_is_client",
        "_handshake_confirmed",
        "_quic_logger",
        "_network_paths",
        "_close_at",
        "_peer_cid",
        "_cryptos",
        "_spaces",
        "_spin_bit",
        "_spin_highest_pn",
        "_streams",
        "_local_max_data",
        "_events",
        "_configuration",
        "_close_pending",
        "_idle_timeout",
        "_ack_eliciting_sent_since_receipt",
        "_ack_delay",
        "_loss",
        "_logger",
        "_QuicConnection__frame_handlers",
    ),
}
"""Which private attribute of which aioquic class this module reads."""

_ONE_RTT = tls.Epoch.ONE_RTT
_ZERO_RTT = tls.Epoch.ZERO_RTT
_CONNECTED = QuicConnectionState.CONNECTED
_SHORT_HEADER = 0x40
"""A short header's first two bits: long-header bit clear, fixed bit set."""
_RESERVED_BITS = 0x18
_SPIN_BIT = 0x20
_PADDING = int(QuicFrameType.PADDING)
_PING = int(QuicFrameType.PING)
_DATAGRAM = int(QuicFrameType.DATAGRAM)
_DATAGRAM_WITH_LENGTH = int(QuicFrameType.DATAGRAM_WITH_LENGTH)
_STREAM_FIRST = int(QuicFrameType.STREAM_BASE)
_STREAM_LAST = _STREAM_FIRST | 7
_NON_ACK_ELICITING = frozenset(int(t) for t in NON_ACK_ELICITING_FRAME_TYPES)
_PROBING = frozenset(int(t) for t in PROBING_FRAME_TYPES)
_FRAME_HANDLERS = "_QuicConnection__frame_handlers"


class ShortReceive(QuicConnection):
    """A connection that receives the 1-RTT packets of its steady state itself
    (see the module); :func:`install` makes an aioquic connection one by
    changing its class, so no attribute is added to it."""

    received = 0
    """How many packets the short path decrypted, in this process."""

    quiet = 0
    """How many of them were *quiet*, in this process (see the module): a
    caller that compares it before and after ``receive_datagram`` knows the
    connection owes no transmit for the datagram."""

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None:
        paths = self._network_paths
        if (
            self._state is not _CONNECTED
            or type(data) is not bytes
            or not data
            or data[0] & 0xC0 != _SHORT_HEADER
            or not self._handshake_confirmed
            or self._quic_logger is not None
            or self._close_at is None
            or len(paths) != 1
            or paths[0].addr != addr
            or not paths[0].is_validated
            or self._peer_cid.sequence_number is None
        ):
            return super().receive_datagram(data, addr, now)
        cid = self.host_cid
        cid_end = 1 + len(cid)
        if data[1:cid_end] != cid or (
            not self._is_client and self._cryptos[_ZERO_RTT].recv.is_valid()
        ):
            return super().receive_datagram(data, addr, now)
        _receive_packet(self, data, cid, cid_end, paths[0], now)


def _receive_packet(
    quic: QuicConnection, data: bytes, cid: bytes, cid_end: int, path: Any, now: float
) -> None:
    # What receive_datagram does for one 1-RTT packet of a connection in this
    # state, in its order (the header's checks were made by the caller).
    space = quic._spaces[_ONE_RTT]
    try:
        plain_header, payload, number = quic._cryptos[_ONE_RTT].decrypt_packet(
            data, cid_end, space.expected_packet_number
        )
    except (KeyUnavailableError, CryptoError) as exc:
        quic._logger.debug(exc)
        return
    ShortReceive.received += 1
    if number in space.received_packets:
        return  # a duplicate
    first = plain_header[0]
    if first & _RESERVED_BITS:
        quic.close(
            error_code=QuicErrorCode.PROTOCOL_VIOLATION,
            frame_type=QuicFrameType.PADDING,
            reason_phrase="Reserved bits must be zero",
        )
        return
    if number > space.expected_packet_number:
        space.expected_packet_number = number + 1
    if number > quic._spin_highest_pn:
        spin = bool(first & _SPIN_BIT)
        quic._spin_bit = not spin if quic._is_client else spin
        quic._spin_highest_pn = number
    records, events = len(space.sent_packets), len(quic._events)
    validated = quic._loss.peer_completed_address_validation
    try:
        eliciting, probing = _frames(quic, payload, cid, path, now)
    except QuicConnectionError as exc:
        quic._logger.warning(exc)
        quic.close(
            error_code=exc.error_code,
            frame_type=exc.frame_type,
            reason_phrase=exc.reason_phrase,
        )
    if quic._state is not _CONNECTED or quic._close_pending:
        return  # closed by a frame (an END_STATE: it was CONNECTED)
    quic._close_at = now + quic._idle_timeout()
    quic._ack_eliciting_sent_since_receipt = False
    paths = quic._network_paths
    moved = (
        len(paths) != 1
        or paths[0] is not path
        or (not quic._is_client and not probing and quic.host_cid != cid)
    )
    if moved:
        _moved(quic, space, path, cid, number, probing)
    if not space.discarded:
        if number > space.largest_received_packet:
            space.largest_received_packet = number
            space.largest_received_time = now
        ack_queue = space.ack_queue
        ack_queue.add(number)
        space.received_packets.add(number)
        if len(ack_queue) > MAX_ACK_RANGES:
            ack_queue.shift()
        if eliciting and space.ack_at is None:
            space.ack_at = now + quic._ack_delay
    if (
        not eliciting
        and not moved
        and validated
        and len(space.sent_packets) == records
        and len(quic._events) == events
    ):
        # ACK frames (and padding) that acknowledged nothing new: the idle
        # timer moved later, nothing else a transmit would look at moved.
        ShortReceive.quiet += 1


def _frames(
    quic: QuicConnection, payload: bytes, cid: bytes, path: Any, now: float
) -> tuple[bool, bool]:
    """``_payload_received`` for a 1-RTT packet: STREAM, DATAGRAM, PING and
    PADDING frames in place, the others by aioquic's handlers. Returns whether the
    packet is ack-eliciting and whether it is a probing packet."""
    buf = Buffer(data=payload)
    eliciting = False
    probing: bool | None = None
    found = False
    context: QuicReceiveContext | None = None
    while not buf.eof():
        try:
            frame_type = buf.pull_uint_var()
        except BufferReadError:
            raise QuicConnectionError(
                error_code=QuicErrorCode.FRAME_ENCODING_ERROR,
                frame_type=None,
                reason_phrase="Malformed frame type",
            ) from None
        try:
            if _STREAM_FIRST <= frame_type <= _STREAM_LAST:
                handled = _stream_frame(quic, frame_type, buf)
            elif frame_type == _DATAGRAM_WITH_LENGTH or frame_type == _DATAGRAM:
                handled = _datagram_frame(quic, frame_type, buf)
            elif frame_type == _PING:
                handled = True  # aioquic's handler only logs it
            elif frame_type == _PADDING:
                rest = payload[buf.tell() :]
                buf.seek(buf.capacity - len(rest.lstrip(b"\x00")))
                handled = True
            else:
                handled = False
            if not handled:
                try:
                    handler, epochs = getattr(quic, _FRAME_HANDLERS)[frame_type]
                except KeyError:
                    raise QuicConnectionError(
                        error_code=QuicErrorCode.FRAME_ENCODING_ERROR,
                        frame_type=frame_type,
                        reason_phrase="Unknown frame type",
                    ) from None
                if _ONE_RTT not in epochs:
                    raise QuicConnectionError(
                        error_code=QuicErrorCode.PROTOCOL_VIOLATION,
                        frame_type=frame_type,
                        reason_phrase="Unexpected frame type",
                    )
                if context is None:
                    context = QuicReceiveContext(
                        epoch=_ONE_RTT,
                        host_cid=cid,
                        network_path=path,
                        quic_logger_frames=None,
                        time=now,
                        version=None,
                    )
                handler(context, frame_type, buf)
        except BufferReadError:
            raise QuicConnectionError(
                error_code=QuicErrorCode.FRAME_ENCODING_ERROR,
                frame_type=frame_type,
                reason_phrase="Failed to parse frame",
            ) from None
        except StreamFinishedError:
            pass  # aioquic lacks the stream's state and ignores the frame
        found = True
        if frame_type not in _NON_ACK_ELICITING:
            eliciting = True
        if frame_type not in _PROBING:
            probing = False
        elif probing is None:
            probing = True
    if not found:
        raise QuicConnectionError(
            error_code=QuicErrorCode.PROTOCOL_VIOLATION,
            frame_type=QuicFrameType.PADDING,
            reason_phrase="Packet contains no frames",
        )
    return eliciting, bool(probing)


def _stream_frame(quic: QuicConnection, frame_type: int, buf: Buffer) -> bool:
    """aioquic's ``_handle_stream_frame`` for a stream that exists and can
    receive; False (nothing read) for another, which aioquic's handler then
    opens or refuses."""
    start = buf.tell()
    stream_id = buf.pull_uint_var()
    stream = quic._streams.get(stream_id)
    if stream is None or (
        bool(stream_id & 1) != quic._is_client and stream_id & 2  # send-only
    ):
        buf.seek(start)
        return False
    offset = buf.pull_uint_var() if frame_type & 4 else 0
    length = buf.pull_uint_var() if frame_type & 2 else buf.capacity - buf.tell()
    end = offset + length
    if end > UINT_VAR_MAX:
        raise QuicConnectionError(
            error_code=QuicErrorCode.FRAME_ENCODING_ERROR,
            frame_type=frame_type,
            reason_phrase="offset + length cannot exceed 2^62 - 1",
        )
    frame = QuicStreamFrame(
        offset=offset, data=buf.pull_bytes(length), fin=bool(frame_type & 1)
    )
    if end > stream.max_stream_data_local:
        raise QuicConnectionError(
            error_code=QuicErrorCode.FLOW_CONTROL_ERROR,
            frame_type=frame_type,
            reason_phrase="Over stream data limit",
        )
    receiver = stream.receiver
    newly_received = end - receiver.highest_offset
    if newly_received < 0:
        newly_received = 0
    limit = quic._local_max_data
    if limit.used + newly_received > limit.value:
        raise QuicConnectionError(
            error_code=QuicErrorCode.FLOW_CONTROL_ERROR,
            frame_type=frame_type,
            reason_phrase="Over connection data limit",
        )
    try:
        event = receiver.handle_frame(frame)
    except FinalSizeError as exc:
        raise QuicConnectionError(
            error_code=QuicErrorCode.FINAL_SIZE_ERROR,
            frame_type=frame_type,
            reason_phrase=str(exc),
        ) from None
    if event is not None:
        quic._events.append(event)
    limit.used += newly_received
    return True


def _datagram_frame(quic: QuicConnection, frame_type: int, buf: Buffer) -> bool:
    """aioquic's ``_handle_datagram_frame``."""
    start = buf.tell()
    if frame_type == _DATAGRAM_WITH_LENGTH:
        length = buf.pull_uint_var()
    else:
        length = buf.capacity - start
    data = buf.pull_bytes(length)
    largest = quic._configuration.max_datagram_frame_size
    if largest is None or buf.tell() - start >= largest:
        raise QuicConnectionError(
            error_code=QuicErrorCode.PROTOCOL_VIOLATION,
            frame_type=frame_type,
            reason_phrase="Unexpected DATAGRAM frame",
        )
    quic._events.append(DatagramFrameReceived(data=data))
    return True


def _moved(
    quic: QuicConnection, space: Any, path: Any, cid: bytes, number: int, probing: bool
) -> None:
    """What ``receive_datagram`` does after a packet whose frames changed the
    connection's paths or retired the connection id it came to."""
    if not quic._is_client and not probing and cid != quic.host_cid:
        quic.host_cid = cid
        if path.peer_cid is None:
            quic.change_connection_id()
    if path not in quic._network_paths:
        quic._add_network_path(path)
    index = quic._network_paths.index(path)
    if (
        not quic._is_client
        and index
        and not probing
        and number > space.largest_received_packet
    ):
        quic._network_paths.pop(index)
        quic._network_paths.insert(0, path)
        if path.peer_cid is not None:
            quic._use_reserved_peer_cid(path)


_classes: dict[type, type[ShortReceive]] = {}
"""The class :func:`install` gives a connection, by its own class."""


def install(quic: QuicConnection) -> ShortReceive | None:
    """Have ``quic`` receive its steady state's packets on the short path from
    now on; idempotent. Call before :func:`udpio.ack_delay.install` (whose
    policy then runs around this path) and before anything wraps the
    connection's ``receive_datagram`` as an instance attribute. Returns the
    connection, or None (left alone) for what is not an aioquic connection or
    an aioquic without the attributes this module reads."""
    if isinstance(quic, ShortReceive):
        return quic
    if not isinstance(quic, QuicConnection):
        return None
    if not all(hasattr(quic, name) for name in PRIVATE_ATTRIBUTES[QuicConnection]):
        return None
    if "receive_datagram" in quic.__dict__:
        raise ValueError("install the short receive path before wrapping it")
    return mix_in(quic, ShortReceive, _classes)
