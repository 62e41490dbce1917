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

It also takes the ACK as aioquic's ``on_ack_received`` takes it (the same
steps in the same order, read from aioquic 1.7) but for one thing: the
stream data the ACK covers is handed to each stream's sender in runs.
aioquic calls a packet's delivery handler for each packet acknowledged, so
an ACK of 60 packets of one stream makes 60 calls of the sender's
``on_data_delivery``, each adding its range to the acknowledged set and
dropping what leads the buffer; runs of consecutive ranges of one stream
become one call each, which leaves the sender exactly as the 60 would
(adding ranges to a set and dropping its acknowledged head does not depend
on their order or grouping; ``tests/udpio/test_short_path.py`` runs twins
of aioquic's and this, lossy and not, and compares every state). One
``on_data_delivery`` call (1-1.5 µs) saved per stream packet acknowledged,
at the sending end of a transfer; not separable in a real run from the
stop's other changes (docs/performance.md, "The controller per packet,
ACKs in runs, a burst's events once").
"""

from __future__ import annotations

from bisect import bisect_left

from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet_builder import QuicDeliveryState
from aioquic.quic.rangeset import RangeSet
from aioquic.quic.recovery import QuicPacketRecovery, QuicPacketSpace
from aioquic.quic.stream import QuicStreamSender

from .short_path import mix_in

__all__ = ["PRIVATE_ATTRIBUTES", "ReportsAckDelay", "install"]

PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QuicConnection: ("_loss",),
    QuicPacketRecovery: (
        "_cc",
        "_pacer",
        "_rtt_latest",
        "_rtt_min",
        "_rtt_initialized",
        "_rtt_first_sample_time",
        "_rtt_variance",
        "_rtt_smoothed",
        "_detect_loss",
        "_pto_count",
        "_quic_logger",
        "_log_metrics_updated",
    ),
}
"""Which private attribute of which aioquic class this module reads."""


_ACKED = QuicDeliveryState.ACKED
_ON_DATA_DELIVERY = QuicStreamSender.on_data_delivery


class ReportsAckDelay(QuicPacketRecovery):
    """aioquic's loss recovery, telling its controller each ACK's delay and
    handing acknowledged stream data to its senders in runs."""

    runs = 0
    """How many runs of acknowledged stream data were handed to senders, in
    this process."""

    def on_ack_received(
        self,
        *,
        ack_rangeset: RangeSet,
        ack_delay: float,
        now: float,
        space: QuicPacketSpace,
    ) -> None:
        cc = self._cc
        cc.peer_ack_delay = min(ack_delay, self.max_ack_delay)
        is_ack_eliciting = False
        largest_acked = ack_rangeset.bounds().stop - 1
        largest_newly_acked = None
        largest_sent_time = None
        if largest_acked > space.largest_acked_packet:
            space.largest_acked_packet = largest_acked

        # The run of stream data acknowledged but not yet handed to its
        # sender: the sender, the range's start and stop, and its FIN.
        run: QuicStreamSender | None = None
        run_start = run_stop = 0
        run_fin = False
        sent_packets = space.sent_packets
        packet_numbers = list(sent_packets)
        on_packet_acked = cc.on_packet_acked
        for r in ack_rangeset:
            first = bisect_left(packet_numbers, r.start)
            last = bisect_left(packet_numbers, r.stop)
            for packet_number in packet_numbers[first:last]:
                packet = sent_packets.pop(packet_number)
                if packet.is_ack_eliciting:
                    is_ack_eliciting = True
                    space.ack_eliciting_in_flight -= 1
                if packet.in_flight:
                    on_packet_acked(packet=packet, now=now)
                largest_newly_acked = packet_number
                largest_sent_time = packet.sent_time
                for handler, args in packet.delivery_handlers:
                    if getattr(handler, "__func__", None) is not _ON_DATA_DELIVERY:
                        handler(_ACKED, *args)
                        continue
                    sender = handler.__self__
                    start, stop, fin = args
                    if sender is run and start == run_stop and not run_fin:
                        run_stop = stop
                        run_fin = fin
                        continue
                    if run is not None:
                        run.on_data_delivery(_ACKED, run_start, run_stop, run_fin)
                        ReportsAckDelay.runs += 1
                    run, run_start, run_stop, run_fin = sender, start, stop, fin
        if run is not None:
            run.on_data_delivery(_ACKED, run_start, run_stop, run_fin)
            ReportsAckDelay.runs += 1

        # From here on aioquic's steps as they are.
        if largest_newly_acked is None:
            return
        if largest_acked == largest_newly_acked and is_ack_eliciting:
            assert largest_sent_time is not None
            latest_rtt = now - largest_sent_time
            log_rtt = True
            ack_delay = min(ack_delay, self.max_ack_delay)
            self._rtt_latest = max(latest_rtt, 0.001)
            if self._rtt_latest < self._rtt_min:
                self._rtt_min = self._rtt_latest
            if self._rtt_latest > self._rtt_min + ack_delay:
                self._rtt_latest -= ack_delay
            if not self._rtt_initialized:
                self._rtt_first_sample_time = now
                self._rtt_initialized = True
                self._rtt_variance = latest_rtt / 2
                self._rtt_smoothed = latest_rtt
            else:
                self._rtt_variance = 3 / 4 * self._rtt_variance + 1 / 4 * abs(
                    self._rtt_min - self._rtt_latest
                )
                self._rtt_smoothed = (
                    7 / 8 * self._rtt_smoothed + 1 / 8 * self._rtt_latest
                )
            cc.on_rtt_measurement(now=now, rtt=latest_rtt)
            self._pacer.update_rate(
                congestion_window=cc.congestion_window,
                smoothed_rtt=self._rtt_smoothed,
            )
        else:
            log_rtt = False
        self._detect_loss(now=now, space=space)
        if self.peer_completed_address_validation:
            self._pto_count = 0
        if self._quic_logger is not None:
            self._log_metrics_updated(log_rtt=log_rtt)


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
