"""When a connection acknowledges what it receives: later for a lone request,
on the packet that answers it, at once for media; for the server and the client.

aioquic acknowledges every ack-eliciting packet within 1 ms (its
``_ack_delay``, ``K_GRANULARITY``) while it announces 25 ms as its
``max_ack_delay``. A request's reply takes longer than 1 ms (a database
commit, a delivery to another node), so the ACK of the request leaves in a
packet of its own, and the reply follows in another one; the client then
acknowledges the reply alone again before its next request. Chat, presence
and every other request-and-reply exchange cost about twice the packets
their data needs, each one a turn of the event loop, a system call and an
encryption at both ends.

:class:`DelayedAcks` makes a connection acknowledge, in the 1-RTT space and
from the end of the handshake:

- a lone ack-eliciting packet (a request, a reply) within
  :data:`ACK_DELAY` (20 ms, inside the 25 ms announced, so the peer's
  probe timeout already allows for it), unless stream data leaves first:
  whatever this end writes on a stream carries the ACK it owes (the reply
  carries the request's ACK, the next request the reply's);
- from the second ack-eliciting packet on, within ``K_GRANULARITY`` (1 ms)
  of that packet, as RFC 9000 section 13.2.2 asks (after two packets); a
  bulk transfer's packets are acknowledged as often as before (about one
  ACK per millisecond of packets, aioquic's own behaviour for a burst);
- a packet that carries a DATAGRAM frame (media and its feedback) within
  ``K_GRANULARITY``, as before: media's congestion control and loss
  recovery see the same ACK timing as without this module;
- a packet that gives the application nothing (a keepalive PING, a path MTU
  probe, flow-control frames, data already received) at once, in the
  transmit that follows its receipt: nothing will answer it, and waiting
  would cost a timer's wakeup and another pass of aioquic's packet builder
  (a node holding 100,000 idle connections answers 5,000 PINGs a second).

It reads and writes aioquic's private attributes (listed in
:data:`PRIVATE_ATTRIBUTES`; ``tests/test_quic_adapters.py`` checks they
exist, so an aioquic upgrade that renames them fails there), and it overrides
the connection's ``receive_datagram`` and ``send_stream_data`` in a subclass
it gives the connection (:func:`install`); :mod:`server.quic_fastpath`, which
wraps whatever the connection has at the time it is installed, runs it
inside its own wrappers.
"""

from __future__ import annotations

from typing import Any

from aioquic import tls
from aioquic.quic.congestion.base import K_GRANULARITY
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import DatagramFrameReceived

from .short_path import mix_in

__all__ = ["ACK_DELAY", "PRIVATE_ATTRIBUTES", "DelayedAcks", "install"]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnection: ("_ack_delay", "_events", "_spaces"),
}
"""Which private attribute of which aioquic class this module reads."""

ACK_DELAY = 0.020
"""Seconds a lone ack-eliciting packet waits for something to carry its ACK:
inside the 25 ms aioquic announces as ``max_ack_delay`` (the peer counts
that much into its probe timeout), with 5 ms for the timer to be late."""

_ONE_RTT = tls.Epoch.ONE_RTT
_DUE = 0.0
"""An ``ack_at`` in the past of any clock: due at the next packet built."""


class DelayedAcks(QuicConnection):
    """A connection that acknowledges as the module says: :func:`install`
    makes an aioquic connection one by changing its class, so the
    connection's own attributes stay as they were (two more entries in its
    ``__dict__`` would grow it by 1.7 KiB, 6% of an idle connection)."""

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None:
        space = self._spaces[_ONE_RTT]
        owed = space.ack_at is not None
        events = self._events  # read each time: the server swaps it
        before = len(events)
        super().receive_datagram(data, addr, now)
        ack_at = space.ack_at
        if ack_at is None or ack_at <= now:
            return
        if not owed and len(events) == before:
            # A lone packet with nothing for the application (a PING, a control
            # frame, a repeat): nothing will answer it, so its ACK leaves with
            # this turn's transmit. (Owed, any packet is a second one, below.)
            space.ack_at = now
        elif ack_at > now + K_GRANULARITY and (
            owed
            or any(
                type(events[i]) is DatagramFrameReceived
                for i in range(before, len(events))
            )
        ):
            space.ack_at = now + K_GRANULARITY

    def send_stream_data(self, *args: Any, **kwargs: Any) -> None:
        super().send_stream_data(*args, **kwargs)
        space = self._spaces[_ONE_RTT]
        if space.ack_at is not None:
            # Due at once: the next packet built, the one carrying these
            # bytes, carries the ACK (aioquic writes it when ack_at <= now).
            space.ack_at = _DUE


_classes: dict[type, type[DelayedAcks]] = {}
"""The class :func:`install` gives a connection, by its own class."""


def install(quic: QuicConnection) -> DelayedAcks | None:
    """Have ``quic`` acknowledge as the module says from now on. Idempotent;
    call it before anything wraps the connection's ``receive_datagram`` or
    ``send_stream_data`` as instance attributes (``server.quic_fastpath``
    does, later, and so runs this policy inside its wrappers). Returns the
    connection, or None (left alone) for what is not an aioquic connection or
    an aioquic without the attributes this module reads."""
    if isinstance(quic, DelayedAcks):
        return quic
    if not isinstance(quic, QuicConnection):
        return None
    if not all(hasattr(quic, name) for name in PRIVATE_ATTRIBUTES[QuicConnection]):
        return None
    wrapped = {"receive_datagram", "send_stream_data"} & quic.__dict__.keys()
    if wrapped:
        raise ValueError(f"install delayed ACKs before wrapping {sorted(wrapped)}")
    quic._ack_delay = ACK_DELAY
    return mix_in(quic, DelayedAcks, _classes)
