"""Delivery-rate samples and packet-timed round trips, from sends and ACKs.

What the bottleneck delivers is measured, not guessed: each packet remembers how
many bytes had been delivered when it left, and when it is acknowledged the bytes
delivered since, over the time they took, give one rate sample (the method of
draft-cheng-iccrg-delivery-rate-estimation). The interval is the longer of the
send interval and the ACK interval, so neither a burst of sends nor a burst of
ACKs inflates the rate. The same bookkeeping counts round trips: a round ends when
a packet sent after the previous round ended is acknowledged.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["DeliverySampler", "RateSample"]


@dataclass(frozen=True, slots=True)
class RateSample:
    """One measurement of the delivery rate, taken when a packet was acknowledged."""

    rate_bytes_per_s: float
    """Bytes delivered per second over the sample's interval."""
    interval_s: float
    """The interval the rate was measured over, in seconds."""
    app_limited: bool
    """The packet left while the sender had less to send than its window allowed:
    the rate says what the application offered, not what the path can carry."""


class DeliverySampler:
    """Tracks the packets in flight and turns their ACKs into ``RateSample``\\ s.

    Call ``on_sent`` for every packet that counts in flight, then exactly one of
    ``on_acked`` or ``on_removed`` (lost, or its packet space dropped). Times are
    seconds on the caller's clock; sizes are bytes.
    """

    def __init__(self) -> None:
        self.delivered = 0
        """Bytes acknowledged so far."""
        self.round_count = 0
        """Round trips completed so far."""
        self._delivered_time = 0.0
        self._first_sent_time = 0.0
        self._next_round_delivered = 0
        self._app_limited_until = 0
        self._in_flight: dict[Hashable, tuple[int, float, float, bool]] = {}
        """Per packet in flight: bytes delivered, the time of the last delivery
        and the first send of the interval when it left, and whether it left
        app-limited (a tuple: one is made for every packet sent)."""

    def mark_app_limited(self, bytes_in_flight: int) -> None:
        """Say that the sender has run out of data: every packet sent until what is
        in flight now has been delivered gives an app-limited sample."""
        until = self.delivered + bytes_in_flight
        self._app_limited_until = until if until > 1 else 1

    def on_sent(self, key: Hashable, sent_time: float, bytes_in_flight: int) -> None:
        """Record a packet sent at ``sent_time`` while ``bytes_in_flight`` bytes
        (not counting it) were unacknowledged."""
        if bytes_in_flight == 0:
            # After an idle period the next samples measure from this send, not
            # from the last ACK before the pause.
            self._first_sent_time = sent_time
            self._delivered_time = sent_time
        delivered = self.delivered
        until = self._app_limited_until
        if until and delivered >= until:
            self._app_limited_until = until = 0
        self._in_flight[key] = (
            delivered,
            self._delivered_time,
            self._first_sent_time,
            until > 0,
        )

    def on_acked(
        self, key: Hashable, sent_bytes: int, sent_time: float, now: float
    ) -> RateSample | None:
        """Account for an acknowledged packet; return the rate it measures, or None
        for a packet that was not recorded or an interval too short to measure.

        ``round_count`` goes up when this ACK ends a round trip."""
        measured = self.acked(key, sent_bytes, sent_time, now)
        if measured is None:
            return None
        return RateSample(*measured)

    def acked(
        self, key: Hashable, sent_bytes: int, sent_time: float, now: float
    ) -> tuple[float, float, bool] | None:
        """:meth:`on_acked` without the :class:`RateSample`: the sample's rate,
        interval and ``app_limited`` as a tuple (the controller's path, once per
        packet acknowledged)."""
        state = self._in_flight.pop(key, None)
        if state is None:
            return None
        sent_delivered, delivered_time, first_sent_time, app_limited = state
        delivered = self.delivered = self.delivered + sent_bytes
        self._delivered_time = now
        self._first_sent_time = sent_time
        if sent_delivered >= self._next_round_delivered:
            self._next_round_delivered = delivered
            self.round_count += 1
        send_interval = sent_time - first_sent_time
        ack_interval = now - delivered_time
        interval = send_interval if send_interval > ack_interval else ack_interval
        if interval <= 0:
            return None
        return (delivered - sent_delivered) / interval, interval, app_limited

    def on_removed(self, key: Hashable) -> None:
        """Forget a packet that was lost or whose packet space was dropped."""
        self._in_flight.pop(key, None)
