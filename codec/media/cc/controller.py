"""The congestion controller of quicmeet's QUIC connections, for aioquic.

A model-based controller in the manner of BBR: it measures the bottleneck's
delivery rate (a windowed maximum) and the path's propagation delay (a windowed
minimum of the RTT) and keeps ``gain x rate x delay`` bytes in flight, so it fills
the pipe without filling the queue. It does not treat every loss as congestion,
as Reno and Cubic do; it backs off on:

- loss that comes with a queue (the recent RTTs stand above the propagation delay
  by more than the queue the controller itself allows);
- heavy loss, queue or not (more than ``HEAVY_LOSS_FRACTION`` of the packets of a
  measurement interval);
- a queue that stays for ``QUEUE_ROUNDS`` round trips: the capacity has dropped,
  so the bandwidth model is reset to what the path delivers now and the queue is
  drained;
- persistent congestion as RFC 9002 declares it: the window collapses and the
  model starts again.

aioquic paces at ``congestion_window / smoothed_rtt``, so the window is the one
control: the gain cycle of ``PROBE_BW`` moves the window, and the pacing rate
follows. Every callback takes its time from aioquic; nothing here reads a clock.
See docs/congestion.md for the state machine and the measurements.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable, Iterable
from typing import Any

from aioquic.quic.congestion.base import (
    QuicCongestionControl,
    register_congestion_control,
)
from aioquic.quic.packet_builder import QuicSentPacket
from aioquic.tls import Epoch

from .aggregation import AckAggregation
from .delivery import DeliverySampler
from .noise import RttNoise
from .tuning import (
    APP_LIMITED_FRACTION,
    BANDWIDTH_WINDOW_ROUNDS,
    BETA,
    CAP_RECOVERY,
    CRUISE_PHASE,
    DRAIN_GAIN,
    FULL_BANDWIDTH_GROWTH,
    FULL_BANDWIDTH_ROUNDS,
    HEADROOM_PACKETS,
    HEAVY_LOSS_FRACTION,
    JITTER_FACTOR,
    JITTER_GAIN,
    LOSS_INTERVAL_PACKETS,
    MAX_AGGREGATION_FRACTION,
    MEDIA_WINDOW_GAIN,
    MIN_RTT_WINDOW_S,
    MIN_WINDOW_DELAY_S,
    MIN_WINDOW_PACKETS,
    PROBE_GAINS,
    QUEUE_FLOOR_S,
    QUEUE_FRACTION,
    QUEUE_ROUNDS,
    QUEUE_SPREAD_FACTOR,
    RECENT_RTT_SAMPLES,
    SPREAD_FACTOR,
    SPREAD_GROUP_SAMPLES,
    SPREAD_WINDOW_GROUPS,
    STARTUP_GROWTH_FRACTION,
    STARTUP_QUEUE_FRACTION,
    STARTUP_QUEUE_MAX_S,
    STARTUP_QUEUE_MIN_S,
)
from .windowed import windowed_max, windowed_min

__all__ = [
    "CONGESTION_CONTROL_NAME",
    "MediaCongestionControl",
    "Mode",
    "register_media_congestion_control",
]

CONGESTION_CONTROL_NAME = "quicmeet"
"""The name the controller is registered under in aioquic."""


class Mode(enum.Enum):
    """The controller's state (see docs/congestion.md for the transitions)."""

    STARTUP = "startup"
    """Doubling the window each round trip until the pipe is full."""
    DRAIN = "drain"
    """Sending below the model until the queue startup or a capacity drop left
    behind is gone."""
    PROBE_BW = "probe_bw"
    """Cruising at the model's bandwidth-delay product, probing once a cycle."""


_ONE_RTT = Epoch.ONE_RTT


def _key(packet: QuicSentPacket) -> Hashable:
    # Packet numbers are per epoch. Almost every packet is a 1-RTT one: its
    # number alone keys it (an int never equals a tuple), which spares hashing
    # the Epoch enum, a Python-level call, twice per packet.
    if packet.epoch is _ONE_RTT:
        return packet.packet_number
    return (packet.epoch, packet.packet_number)


class MediaCongestionControl(QuicCongestionControl):
    """aioquic congestion control that random loss does not collapse.

    Sizes are bytes, rates bytes per second, times seconds on aioquic's clock.
    """

    def __init__(self, *, max_datagram_size: int) -> None:
        super().__init__(max_datagram_size=max_datagram_size)
        self._mss = max_datagram_size
        self._min_window = MIN_WINDOW_PACKETS * max_datagram_size
        self._sampler = DeliverySampler()
        self._aggregation = AckAggregation(BANDWIDTH_WINDOW_ROUNDS)
        self._bandwidth = windowed_max(BANDWIDTH_WINDOW_ROUNDS, BANDWIDTH_WINDOW_ROUNDS)
        self._min_rtt = windowed_min(MIN_RTT_WINDOW_S, 10)
        # The last RECENT_RTT_SAMPLES round trips (a short list: an empty deque
        # costs about 600 bytes in every idle connection).
        self._recent_rtts: list[float] = []
        self._noise = RttNoise(
            jitter_gain=JITTER_GAIN,
            group_samples=SPREAD_GROUP_SAMPLES,
            window_groups=SPREAD_WINDOW_GROUPS,
        )
        self._cap: float | None = None
        self.mode = Mode.STARTUP
        self._cycle_index = CRUISE_PHASE
        self._full_bandwidth = 0.0
        self._rounds_without_growth = 0
        self._queue_rounds = 0
        self._round_min_rtt = math.inf
        self._round_max_rate = 0.0
        self._round_app_limited = True
        self._app_limited = True
        self._recovery_start = -math.inf
        self._interval_acked = 0
        self._interval_lost = 0
        self._interval_start_round = 0
        self._interval_congested = False
        self.congestion_events = 0
        """Times the controller backed off (queue loss, heavy loss, capacity drop,
        persistent congestion)."""
        self.media_rate = 0.0
        """Bytes per second the media plane's estimate lets the media of this
        connection send (0: no media); the window never holds them below it.
        Set by :meth:`set_media_rate`."""
        self._media_floor = 0
        """:meth:`media_window` as of the last change of the media rate or the
        recent RTTs (the window is set once per packet acknowledged)."""

    @property
    def bandwidth(self) -> float | None:
        """The bandwidth the model allows, in bytes per second; None before the
        first rate sample."""
        measured = self._bandwidth.value
        if measured is None or self._cap is None:
            return measured
        return min(measured, self._cap)

    @property
    def min_rtt(self) -> float | None:
        """The propagation delay estimate, in seconds; None before an RTT sample."""
        return self._min_rtt.value

    @property
    def rounds(self) -> int:
        """Round trips completed since the connection started."""
        return self._sampler.round_count

    @property
    def gain(self) -> float:
        """The window gain in force."""
        if self.mode is Mode.DRAIN:
            return DRAIN_GAIN
        if self.mode is Mode.PROBE_BW:
            return PROBE_GAINS[self._cycle_index]
        return 1.0

    def bdp(self) -> float | None:
        """The bandwidth-delay product of the model, in bytes: the bandwidth times
        the propagation delay plus ``SPREAD_FACTOR`` times the RTT spread; None
        until both estimates exist."""
        # bandwidth, min_rtt and rtt_spread inlined: once per packet acked.
        measured = self._bandwidth.value
        min_rtt = self._min_rtt.value
        if measured is None or min_rtt is None:
            return None
        cap = self._cap
        bandwidth = measured if cap is None or measured <= cap else cap
        spread = self._noise.spread
        delay = min_rtt + SPREAD_FACTOR * spread
        if not delay > MIN_WINDOW_DELAY_S:
            delay = MIN_WINDOW_DELAY_S
        return bandwidth * delay

    def rtt_spread(self) -> float:
        """How far the RTTs of a cruising flow typically stand above their
        minimum, in seconds: the path's jitter (or a host's), not a queue."""
        return self._noise.spread

    def queue_threshold(self) -> float | None:
        """Queueing delay above which a queue counts as standing, in seconds:
        what the controller allows itself (the probe phase, the headroom) plus
        noise."""
        bandwidth, min_rtt = self.bandwidth, self.min_rtt
        if min_rtt is None:
            return None
        own = HEADROOM_PACKETS * self._mss / bandwidth if bandwidth else 0.0
        if self.mode is Mode.PROBE_BW and self._cycle_index < CRUISE_PHASE:
            # The probe queues what it sends above the model until its drain
            # round has taken it away again.
            own += (max(PROBE_GAINS) - 1) * min_rtt
        if self.mode is Mode.STARTUP:
            allowed = min(
                STARTUP_QUEUE_MAX_S,
                max(STARTUP_QUEUE_MIN_S, min_rtt * STARTUP_QUEUE_FRACTION),
            )
        else:
            allowed = max(QUEUE_FLOOR_S, min_rtt * QUEUE_FRACTION)
        noise = max(
            JITTER_FACTOR * self._noise.jitter, QUEUE_SPREAD_FACTOR * self.rtt_spread()
        )
        return max(allowed, noise) + own

    def _queue_delay(self, rtt: float) -> float | None:
        min_rtt = self.min_rtt
        return None if min_rtt is None else rtt - min_rtt

    def _queue_stands(self, rtt: float) -> bool:
        delay, threshold = self._queue_delay(rtt), self.queue_threshold()
        return delay is not None and threshold is not None and delay > threshold

    def set_media_rate(self, rate_bytes_per_s: float) -> None:
        """The media plane's estimate for this connection's media (bytes per
        second; 0 for none), from its hop after every feedback.

        The media's delay-based estimate already drains the queues the media
        build, from one-way delays per packet; a window cut further (each
        loss of the queue a capacity drop left backs off again, and a window
        of one propagation delay passes little while the queue stands) held
        the media at half the new capacity for seconds after RFC 8867's drop
        from 2.5 to 0.6 Mbit/s, its estimate following the window down. So
        the window covers the media's rate over the current round trip
        (:data:`MEDIA_WINDOW_GAIN`) once out of ``STARTUP``; above it, the
        model's window still bounds everything else the connection sends.
        In ``STARTUP`` (where the window only grows) the floor is not
        applied: there it kept the media estimate's first probes on a lossy
        path (2%, 20 ms of jitter) from being measured in four runs of four,
        for a cause not found.
        """
        self.media_rate = max(0.0, rate_bytes_per_s)
        floor = self._media_floor = self.media_window()
        if self.mode is not Mode.STARTUP and floor > self.congestion_window:
            self.congestion_window = floor

    def media_window(self) -> int:
        """The window the media's rate needs (bytes): ``MEDIA_WINDOW_GAIN``
        times the rate over the mean of the recent round trips, 0 without
        media or an RTT sample."""
        rtts = self._recent_rtts
        if not self.media_rate or not rtts:
            return 0
        return int(MEDIA_WINDOW_GAIN * self.media_rate * sum(rtts) / len(rtts))

    # aioquic's callbacks: on_packet_sent and on_packet_acked run for every
    # packet (about 700 per MB of a file), so they read attributes into locals
    # and inline what the properties above compute, in the same order and with
    # the same arithmetic (docs/performance.md, "The controller per packet,
    # ACKs in runs, a burst's events once").

    def on_packet_sent(self, *, packet: QuicSentPacket) -> None:
        before = self.bytes_in_flight
        sent_bytes = packet.sent_bytes
        sampler = self._sampler
        if before + sent_bytes < self.congestion_window * APP_LIMITED_FRACTION:
            sampler.mark_app_limited(before + sent_bytes)
        sampler.on_sent(
            packet.packet_number
            if packet.epoch is _ONE_RTT
            else (packet.epoch, packet.packet_number),
            packet.sent_time or 0.0,
            before,
        )
        self.bytes_in_flight = before + sent_bytes

    def on_packet_acked(self, *, now: float, packet: QuicSentPacket) -> None:
        sent_bytes = packet.sent_bytes
        sent_time = packet.sent_time or 0.0
        in_flight_before = self.bytes_in_flight
        self.bytes_in_flight = in_flight_before - sent_bytes
        sampler = self._sampler
        rounds = sampler.round_count
        sample = sampler.acked(
            packet.packet_number
            if packet.epoch is _ONE_RTT
            else (packet.epoch, packet.packet_number),
            sent_bytes,
            sent_time,
            now,
        )
        self._interval_acked += 1
        bandwidth_filter = self._bandwidth
        if sample is not None:
            rate, _, app_limited = sample
            if rate > self._round_max_rate:
                self._round_max_rate = rate
            self._app_limited = app_limited
            if not app_limited:
                self._round_app_limited = False
            measured = bandwidth_filter.value
            if not app_limited or measured is None or rate > measured:
                bandwidth_filter.update(rate, sampler.round_count)
        bdp = self.bdp()
        if bdp is not None:
            # Against what the path has delivered at best (not the allowance after
            # a back-off, which ACKs may exceed), and at most a part of the BDP.
            self._aggregation.on_acked(
                sent_bytes,
                now,
                bandwidth_filter.value,
                sampler.round_count,
                int(bdp * MAX_AGGREGATION_FRACTION),
            )
        round_ended = sampler.round_count != rounds
        if round_ended:
            self._on_round_end(now)
        mode = self.mode
        if mode is Mode.STARTUP:
            if (
                sent_time > self._recovery_start
                and in_flight_before >= self.congestion_window * STARTUP_GROWTH_FRACTION
            ):
                self.congestion_window += sent_bytes
            return
        if round_ended:
            # The round's end may have changed the model: compute it afresh.
            bdp = self.bdp()
        if mode is Mode.DRAIN and bdp is not None and self.bytes_in_flight <= bdp:
            self._enter_probe_bw()
        self._set_window(bdp)

    def on_packets_expired(self, *, packets: Iterable[QuicSentPacket]) -> None:
        for packet in packets:
            self.bytes_in_flight -= packet.sent_bytes
            self._sampler.on_removed(_key(packet))

    def on_packets_lost(self, *, now: float, packets: Iterable[QuicSentPacket]) -> None:
        newest_sent = -math.inf
        for packet in packets:
            self.bytes_in_flight -= packet.sent_bytes
            self._sampler.on_removed(_key(packet))
            self._interval_lost += 1
            newest_sent = max(newest_sent, packet.sent_time or 0.0)
        if (
            newest_sent > self._recovery_start
            and self._recent_rtts
            and self._queue_stands(min(self._recent_rtts))
        ):
            self._back_off(now)

    def on_persistent_congestion(self) -> None:
        self.congestion_events += 1
        self._bandwidth.clear()
        self._cap = None
        self.mode = Mode.STARTUP
        self._full_bandwidth = 0.0
        self._rounds_without_growth = 0
        self.congestion_window = self._min_window

    def on_rtt_measurement(self, *, now: float, rtt: float) -> None:
        self._min_rtt.update(rtt, now)
        self._recent_rtts.append(rtt)
        if len(self._recent_rtts) > RECENT_RTT_SAMPLES:
            del self._recent_rtts[0]
        if self.media_rate:
            self._media_floor = self.media_window()
        self._round_min_rtt = min(self._round_min_rtt, rtt)
        self._noise.on_rtt(
            rtt,
            cruising=self.mode is Mode.PROBE_BW and self._cycle_index > CRUISE_PHASE,
        )
        if (
            self.mode is Mode.STARTUP
            and not self._app_limited
            and len(self._recent_rtts) == RECENT_RTT_SAMPLES
            and self._queue_stands(min(self._recent_rtts))
        ):
            # A queue the flow did not fill itself (it had little to send) is not
            # a full pipe: a stalled peer or cross traffic.
            self.mode = Mode.DRAIN
        self._update_window()

    def get_log_data(self) -> dict[str, Any]:
        data = super().get_log_data()
        data["mode"] = self.mode.value
        bandwidth = self.bandwidth
        if bandwidth is not None:
            data["bandwidth_bps"] = int(bandwidth * 8)
        return data

    # the state machine

    def _on_round_end(self, now: float) -> None:
        # Only a round in which the flow filled its window can show that the
        # flow's own model is wrong; an app-limited flow did not make the queue.
        queue = (
            not self._round_app_limited
            and self._round_min_rtt < math.inf
            and self._queue_stands(self._round_min_rtt)
        )
        self._noise.on_round_end()
        if self.mode is Mode.STARTUP:
            self._check_full_bandwidth(queue)
        elif self.mode is Mode.PROBE_BW:
            self._queue_rounds = self._queue_rounds + 1 if queue else 0
            if self._queue_rounds >= QUEUE_ROUNDS:
                self._on_capacity_drop()
            else:
                self._cycle_index = (self._cycle_index + 1) % len(PROBE_GAINS)
        self._check_loss_interval(now)
        self._round_min_rtt = math.inf
        self._round_max_rate = 0.0
        self._round_app_limited = True

    def _check_full_bandwidth(self, queue: bool) -> None:
        measured = self._bandwidth.value
        if measured is None or self._round_app_limited:
            return
        if measured >= self._full_bandwidth * FULL_BANDWIDTH_GROWTH:
            self._full_bandwidth = measured
            self._rounds_without_growth = 0
        else:
            self._rounds_without_growth += 1
        if queue or self._rounds_without_growth >= FULL_BANDWIDTH_ROUNDS:
            self.mode = Mode.DRAIN

    def _on_capacity_drop(self) -> None:
        """A queue has stood for rounds: the path delivers less than the model
        says. What it delivered in the last round, with the queue keeping it busy,
        is its capacity now."""
        self.congestion_events += 1
        self._queue_rounds = 0
        if self._round_max_rate > 0:
            self._bandwidth.reset(self._round_max_rate, self._sampler.round_count)
        self.mode = Mode.DRAIN

    def _enter_probe_bw(self) -> None:
        self.mode = Mode.PROBE_BW
        self._cycle_index = CRUISE_PHASE
        self._queue_rounds = 0

    def _check_loss_interval(self, now: float) -> None:
        packets = self._interval_acked + self._interval_lost
        if (
            packets < LOSS_INTERVAL_PACKETS
            or self._sampler.round_count <= self._interval_start_round
        ):
            return
        if self._interval_lost > packets * HEAVY_LOSS_FRACTION:
            self._back_off(now)
        elif not self._interval_congested and self._cap is not None:
            measured = self._bandwidth.value
            self._cap *= CAP_RECOVERY
            if measured is None or self._cap >= measured:
                self._cap = None
        self._interval_acked = 0
        self._interval_lost = 0
        self._interval_start_round = self._sampler.round_count
        self._interval_congested = False

    def _back_off(self, now: float) -> None:
        """A congestion event: allow ``BETA`` of the bandwidth, once per round trip
        (losses of packets sent before ``now`` belong to this event)."""
        self.congestion_events += 1
        self._recovery_start = now
        self._interval_congested = True
        bandwidth = self.bandwidth
        if bandwidth is not None:
            self._cap = bandwidth * BETA
        if self.mode is Mode.STARTUP:
            self.mode = Mode.DRAIN
            self.congestion_window = max(
                self._min_window, int(self.congestion_window * BETA)
            )
        self._update_window()

    def _update_window(self) -> None:
        if self.mode is Mode.STARTUP:
            return
        self._set_window(self.bdp())

    def _set_window(self, bdp: float | None) -> None:
        """The window for a model whose bandwidth-delay product is ``bdp``
        (bytes), outside startup."""
        if bdp is None:
            return
        mode = self.mode
        headroom = 0
        if mode is Mode.PROBE_BW:
            gain = PROBE_GAINS[self._cycle_index]
            headroom = HEADROOM_PACKETS * self._mss + self._aggregation.extra_bytes
        else:
            gain = DRAIN_GAIN if mode is Mode.DRAIN else 1.0
        self.congestion_window = max(
            self._min_window, int(gain * bdp + headroom), self._media_floor
        )


def register_media_congestion_control() -> str:
    """Make the controller available to aioquic; return the name to put in
    ``QuicConfiguration.congestion_control_algorithm``. Calling it again is
    harmless."""
    register_congestion_control(CONGESTION_CONTROL_NAME, MediaCongestionControl)
    return CONGESTION_CONTROL_NAME
