"""The peer's ACK delay, told to the congestion controller with each RTT
sample; for the server and the client.

aioquic gives its controller every RTT sample as measured
(``on_rtt_measurement(rtt=latest_rtt)``): from a packet's sending to the ACK's
arrival, including the time the peer held the ACK on purpose, which the ACK
frame reports (its ``ack_delay``). aioquic takes that delay out for its own
smoothed RTT (RFC 9002 section 5.3) but not for the controller. Our peers
hold ACKs on purpose (:mod:`udpio.ack_delay`: a lone packet's ACK waits up
to 20 ms for something to carry it), so a flow that sends little, a packet
at a time, reads up to 20 ms of "queue" that is no queue at all. A
controller that backs off for queueing delay (the file scavenger,
``codec/media/cc/scavenger.py``) then shrinks to its floor, where every
packet is a lone one: measured beside a meeting, the file's lowest RTT per
round stood 4-22 ms above its base (p10-p90) for as long as the call lasted,
and 1.6-8.6 ms with the delay taken out (docs/adaptation.md).

:class:`ReportsAckDelay` (given to each connection's loss recovery object by
:func:`install`) sets ``peer_ack_delay`` on the controller, before aioquic
processes each ACK: the ACK's delay, capped at the peer's ``max_ack_delay``
as aioquic caps it. A controller that wants RTT samples without it reads the
attribute in ``on_rtt_measurement``; one that does not is unaffected.
"""

from __future__ import annotations

from typing import Any

from aioquic.quic.connection import QuicConnection
from aioquic.quic.recovery import QuicPacketRecovery

from .short_path import mix_in

__all__ = ["PRIVATE_ATTRIBUTES", "ReportsAckDelay", "install"]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnection: ("_loss",),
    QuicPacketRecovery: ("_cc",),
}
"""Which private attribute of which aioquic class this module reads."""


class ReportsAckDelay(QuicPacketRecovery):
    """aioquic's loss recovery, telling its controller each ACK's delay."""

    def on_ack_received(self, *, ack_delay: float, **kwargs: Any) -> None:
        self._cc.peer_ack_delay = min(ack_delay, self.max_ack_delay)
        super().on_ack_received(ack_delay=ack_delay, **kwargs)


_classes: dict[type, type[ReportsAckDelay]] = {}


def install(quic: QuicConnection) -> ReportsAckDelay | None:
    """Give ``quic``'s loss recovery object the class :class:`ReportsAckDelay`
    (one subclass per class it has); idempotent. Returns it, or None (left
    alone) for an aioquic without the attributes this module reads."""
    loss = getattr(quic, "_loss", None)
    if isinstance(loss, ReportsAckDelay):
        return loss
    if not isinstance(loss, QuicPacketRecovery) or not hasattr(loss, "_cc"):
        return None
    return mix_in(loss, ReportsAckDelay, _classes)
