"""A short path for 1-RTT packets that carry only an ACK, and for a call that
sends nothing, for the server and the client.

An idle connection's keepalive PING is answered by a packet holding one ACK
frame, and so is a lone request, a reply or a pushed event once its ACK falls
due: aioquic builds that packet with its general builder (a builder of its
own, the walk over every kind of frame, a second packet started to find
nothing left). Most other calls after a receipt find nothing at all to send
(an ACK read, or a packet whose own ACK is not due yet), and aioquic's
builder walks every kind of frame to find that too.

:class:`ShortAcks` builds the ACK-only packet directly when an ACK is due
and nothing else could be written, and answers a call with nothing due at
once (:func:`udpio.short_path.nothing_to_send`). What else could be due is
checked on the connection's state each time (the checks of
:mod:`udpio.short_path`), so nothing has to wrap the calls that change it.
The packet is the one aioquic's builder makes, with the pacer calls,
sent-packet record and delivery handler aioquic's method makes
(tests/server/test_quic_fastpath.py runs aioquic's method and this one on a
server's connection from the same state and compares packets and state;
tests/udpio/test_short_acks.py does so on a client's).

The server installs it on every connection (``server.quic_adapter``), the
client on its connection (``client.transport``). Like
:mod:`udpio.short_path`, it reads aioquic's private attributes (listed
there); a connection that lacks any of them keeps aioquic's own method.
"""

from __future__ import annotations

from typing import Any

from aioquic import tls
from aioquic.quic.connection import QuicConnection

from .short_path import (
    ack_frame,
    control_frames_due,
    give_class,
    nothing_to_send,
    sendable_streams,
    sent_record,
    short_header,
)

__all__ = ["ShortAcks", "install", "only_an_ack_due", "owe_keepalive_ack"]

_ONE_RTT = tls.Epoch.ONE_RTT


class ShortAcks(QuicConnection):
    """A connection that builds a packet holding only an ACK frame itself
    (see the module); :func:`install` makes an aioquic connection one by
    changing its class, so no attribute is added to it."""

    sent = 0
    """How many ACK-only packets the short path built, in this process (the
    server's stats and the tests read it)."""

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        space = self._spaces[_ONE_RTT]
        ack_at = space.ack_at
        if ack_at is not None and ack_at <= now:
            if only_an_ack_due(self, space):
                return _send_ack(self, space, now)
        elif nothing_to_send(self, now):
            # What most receipts leave: an ACK, or a packet whose own ACK is
            # not due yet. aioquic's builder would walk every frame to find it.
            return []
        return super().datagrams_to_send(now)


def only_an_ack_due(quic: QuicConnection, space: Any) -> bool:
    """Whether aioquic's ``_write_application`` would write nothing but the
    ACK frame (the checks are :mod:`udpio.short_path`'s, shared with the
    short path for stream packets)."""
    return not control_frames_due(quic, space) and sendable_streams(quic) == []


def _send_ack(quic: QuicConnection, space: Any, now: float) -> list[tuple[bytes, Any]]:
    # What datagrams_to_send, _write_application, _write_ack_frame and
    # _flush_builder do when the ACK is all there is, in the same order.
    quic._pacing_at = None
    pacer = quic._loss._pacer
    if space.ack_at >= now:  # due this very moment: pacing applies first
        pacing_at = pacer.next_send_time(now=now)
        if pacing_at is not None:
            quic._pacing_at = pacing_at
            return []
    crypto = quic._cryptos[_ONE_RTT]
    number = quic._packet_number
    frame, handler = ack_frame(quic, space, now, 3 + len(quic._peer_cid.cid))
    packet = crypto.encrypt_packet(short_header(quic, crypto, number), frame, number)
    pacer.update_after_send(now=now)
    # aioquic starts another packet, which finds nothing to carry.
    quic._pacing_at = pacer.next_send_time(now=now)
    quic._packet_number = number + 1
    record = sent_record(number, now, len(packet), in_flight=False)
    record.delivery_handlers.append(handler)
    quic._loss.on_packet_sent(packet=record, space=space)
    ShortAcks.sent += 1
    return [(packet, quic._network_paths[0].addr)]


def owe_keepalive_ack(quic: QuicConnection, now: float) -> bool:
    """Have ``quic`` owe an ACK of what it has received, due ``now``, so that
    its next ``datagrams_to_send`` writes one (alone in its packet when
    nothing else is due: on the short path, once :func:`install` ran).

    That packet is a keepalive the peer does not answer. Any packet the peer
    processes restarts its idle timer (RFC 9000 10.1); an ACK frame is not
    ack-eliciting, so the peer owes nothing back for it (a PING costs the
    peer an ACK-only packet of its own); and it is not a probing frame
    (RFC 9000 9.1), so a peer that sees it come from a new address, a NAT
    having rebound the port, moves the connection there as it would for a
    PING. Acknowledging packets already acknowledged is allowed; the ACK
    delay it reports counts from the newest packet received, which the peer
    uses for an RTT sample only when the ACK acknowledges that packet for
    the first time (then it is the ACK the peer was waiting for anyway).

    Returns False, changing nothing, when there is nothing to acknowledge
    (no 1-RTT packet received, or all of them acknowledged and the ACK's own
    receipt confirmed): the caller sends a PING instead.
    """
    space = quic._spaces.get(_ONE_RTT)
    if space is None or not len(space.ack_queue) or space.largest_received_time is None:
        return False
    if space.ack_at is None or space.ack_at > now:
        space.ack_at = now
    return True


_classes: dict[type, type[ShortAcks]] = {}
"""The class :func:`install` gives a connection, by its own class."""


def install(quic: QuicConnection) -> ShortAcks | None:
    """Have ``quic`` build its ACK-only packets on the short path from now on;
    idempotent. Call after :func:`udpio.short_path.install` (this path runs
    that one when it does not apply) and before ``server.quic_fastpath``'s
    ``install`` (whose sender keeps the method the connection has then).
    Returns the connection, or None (left alone) for what is not an aioquic
    connection or an aioquic without the attributes this module reads."""
    return give_class(quic, ShortAcks, _classes)
