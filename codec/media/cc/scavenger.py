"""A lower-than-best-effort controller for connections that carry only files.

An upload pump's connection runs it while its engine is in a meeting, and the
media controller otherwise (``client/transfers/pump.py``; ``docs/adaptation.md``,
"Files beside a meeting"): beside the meeting's media the file takes what
they leave, and without one it holds its share against any flow. A
connection is given it with ``Session(congestion_control=...)`` or
``ClientProtocol.use_congestion_control``.

A file beside a meeting must take what the media leave and no more: the
media's estimate is delay-based (``codec/media/adapt``), so a file flow that
moves the queue makes the media's estimate cut again and again, whatever
share the file was given. This controller gives way to queueing delay itself, as LEDBAT
(RFC 6817) and its successor LEDBAT++ do, with the round trip instead of the
one-way delay (aioquic gives a controller nothing else):

- an RTT sample is taken **without the peer's ACK delay** (the time the
  peer held the ACK on purpose, which the ACK reports and
  :mod:`udpio.rtt_samples` tells the controller as ``peer_ack_delay``):
  our peers hold a lone packet's ACK up to 20 ms (``udpio/ack_delay.py``),
  so a window of a few packets, each a lone one, read up to 20 ms of queue
  that was not there and kept the window at its floor;
- the **base delay** is the lowest RTT of the last :data:`BASE_WINDOW_S`;
  the **queue** a round saw is its lowest RTT above the base (the lowest, so
  that a Python host's late answers are not a queue);
- the **target** is :data:`TARGET_S`, or :data:`SPREAD_FACTOR` times the
  RTT's measured spread if more (:class:`~.noise.RttNoise`, as the media
  controller's queue threshold): on a loaded host, whose late answers raise
  every round's lowest RTT by a few ms, a fixed 5 ms target read the host as
  a queue and left a lone file well short of the path;
- it starts with two rounds at its floor, two packets, to measure the base
  on an empty queue (as LEDBAT++'s initial slowdown does): a connection
  that changes over to it mid-transfer leaves the queue of the controller
  before in the path;
- **startup** doubles the window each round until a packet's RTT stands
  half the target above the base (or a loss);
- then each round the window grows by ``GAIN`` packets scaled by how far the
  queue is under the target, and when the queue stands above the target it
  shrinks multiplicatively, by the target over the queue (at most by half):
  a delay-based media flow that raises the queue takes the room back within
  a few round trips, and the queue stays near the target;
- a loss halves the window once a round.

Alone on a path it fills it (the queue held near :data:`TARGET_S`), so a file
gets the full rate back when the meeting ends without being told.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from aioquic.quic.congestion.base import (
    QuicCongestionControl,
    register_congestion_control,
)
from aioquic.quic.packet_builder import QuicSentPacket

from .noise import RttNoise
from .windowed import windowed_min

__all__ = [
    "SCAVENGER_CONTROL_NAME",
    "ScavengerCongestionControl",
    "register_scavenger_congestion_control",
]

SCAVENGER_CONTROL_NAME = "quicmeet-scavenger"
"""The name the controller is registered under in aioquic."""

TARGET_S = 0.010
"""Queueing delay the file flow keeps at most (RFC 6817 allows up to 100 ms).
Above what the media's own frames leave at a bottleneck they share: the
media pacer releases a frame at 1.5 times the estimate with a 5 ms burst
(``codec/media/adapt/pacer.py``), and beside a file at 5 Mbit/s the media's
packets waited 8 ms (p50) in the netsim link, 14 ms (p90); a smaller target
reads those frames as the file's own excess queue. Real processes,
``bench/adaptation.py --scenario meeting-and-file`` (a 640x480 call on a
5 Mbit/s uplink): the file moved at 0.7-1.2 Mbit/s beside the call with a
5 ms target (three runs), 1.2-1.3 with 8 ms (two), 1.8-2.1 with 10 ms
(three; the media at their full rate every time), all with this gain but
the 5 ms one (1); 2.9 with 15 ms (gain 1), when the media's estimate took
13 overuse cuts. On the virtual clock (``tests/codec/media/test_cc_scavenger.py``, a
model encoder that fills its estimate) 12 or 25 ms held the media's estimate
at 1.5-1.8 of its 2.5 Mbit/s with a gain of 1; 10 ms with :data:`GAIN` keeps
2.5."""
SPREAD_FACTOR = 1.5
"""The target is at least this many times the RTT's measured spread
(:class:`~.noise.RttNoise`): a loaded host's late answers are not a queue.
On the virtual clock with ACKs late by an exponential 4 ms (mean) a 1.0 left
a lone file at 4.0 of 5 Mbit/s, a 2.0 held the media's estimate to 2.25 of
2.5 Mbit/s; 1.5 gives 4.4 and 2.5 (one seed; 2.2-2.5 over three), all with
the 5 ms target of before; with 10 ms, 1.75 and 2.0 did no better over five
seeds."""
NOISE_JITTER_GAIN = 1 / 16
NOISE_GROUP_SAMPLES = 16
NOISE_WINDOW_GROUPS = 16
"""The spread is the lowest of this many groups' (as the media controller's)."""
GAIN = 0.5
"""Packets per round the window grows by with no queue at all. Slower than
LEDBAT's one: each packet more a round is a queue growing for as long as the
window grows, which the media's trendline reads as overuse. On the virtual
clock beside the model encoder with the 10 ms target, 1.0 held the media's
estimate to 2.03 of 2.5 Mbit/s (1.9-2.3 with a loaded host's late ACKs),
0.5 keeps 2.5 (2.4-2.5), the file moving at 2.30 of the 2.5 left."""

BASE_WINDOW_S = 10.0
"""How long the lowest RTT is remembered as the path's base delay."""
MEASURE_ROUNDS = 2
"""Rounds the controller starts with its window at the floor, before its
startup, so that its first RTT samples are not taken on a queue it built
itself: a connection that changes over to this controller mid-transfer (an
upload pump or a download when a meeting begins) still has the queue of the
controller before in the path, which drains while the window is small. Its
effect was not measured apart from the startup's exit at the first queued
packet, which took the window out of startup at 19 KB instead of 97 KB
behind a 3 Mbit/s downlink (docs/adaptation.md)."""
MIN_WINDOW_PACKETS = 2
"""The file always moves a little, even under a media flow that fills the path."""
MAX_DECREASE = 0.5
"""The most a round's queue (or a loss) cuts the window by."""


class ScavengerCongestionControl(QuicCongestionControl):
    """aioquic congestion control that yields to any flow that builds a queue.

    Sizes are bytes, times seconds on aioquic's clock.
    """

    peer_ack_delay = 0.0
    """Seconds the peer held the ACK of the packet whose RTT comes next (set
    before each ACK is processed; :mod:`udpio.rtt_samples`)."""

    def __init__(self, *, max_datagram_size: int) -> None:
        super().__init__(max_datagram_size=max_datagram_size)
        self._mss = max_datagram_size
        self._min_window = MIN_WINDOW_PACKETS * max_datagram_size
        self._base = windowed_min(BASE_WINDOW_S, 10)
        self._noise = RttNoise(
            jitter_gain=NOISE_JITTER_GAIN,
            group_samples=NOISE_GROUP_SAMPLES,
            window_groups=NOISE_WINDOW_GROUPS,
        )
        self.startup = True
        self._startup_window = self.congestion_window
        self.congestion_window = self._min_window
        self._measuring = MEASURE_ROUNDS
        """Rounds left at the window's floor before startup."""
        self._round_end: int | None = None
        """Packet number that ends the current round when acknowledged (None
        until this controller sends: packets sent under a controller it
        replaced end no round of its own)."""
        self._next_number = 0
        self._round_min_rtt = math.inf
        self._round_acked = 0
        self._last_loss_round = -1
        self.rounds = 0
        self.decreases = 0
        """Times the window was cut (queue above target, or a loss)."""

    @property
    def base_rtt(self) -> float | None:
        """The lowest RTT of the last :data:`BASE_WINDOW_S` seconds."""
        return self._base.value

    @property
    def target(self) -> float:
        """The queueing delay kept at most now, in seconds: :data:`TARGET_S`,
        or more on a path (or host) whose RTT varies by itself."""
        return max(TARGET_S, SPREAD_FACTOR * self._noise.spread)

    def on_packet_sent(self, *, packet: QuicSentPacket) -> None:
        self.bytes_in_flight += packet.sent_bytes
        self._next_number = max(self._next_number, packet.packet_number + 1)
        if self._round_end is None:
            self._round_end = packet.packet_number

    def on_packet_acked(self, *, now: float, packet: QuicSentPacket) -> None:
        self.bytes_in_flight -= packet.sent_bytes
        self._round_acked += packet.sent_bytes
        if self.startup and not self._measuring:
            self.congestion_window += packet.sent_bytes
        if self._round_end is not None and packet.packet_number >= self._round_end:
            self._end_round()

    def on_packets_expired(self, *, packets: Iterable[QuicSentPacket]) -> None:
        for packet in packets:
            self.bytes_in_flight -= packet.sent_bytes

    def on_packets_lost(self, *, now: float, packets: Iterable[QuicSentPacket]) -> None:
        for packet in packets:
            self.bytes_in_flight -= packet.sent_bytes
        if self._last_loss_round != self.rounds:
            self._last_loss_round = self.rounds
            self.startup = False
            self._cut(MAX_DECREASE)

    def on_persistent_congestion(self) -> None:
        self.decreases += 1
        self.congestion_window = self._min_window

    def on_rtt_measurement(self, *, now: float, rtt: float) -> None:
        # Without the ACK's delay; a peer's coarse clock (uvloop's is in whole
        # milliseconds) can report a little more than the sample holds.
        rtt = max(rtt - self.peer_ack_delay, 0.0)
        self._base.update(rtt, now)
        self._round_min_rtt = min(self._round_min_rtt, rtt)
        self._noise.on_rtt(rtt, cruising=not self.startup)
        if self.startup and not self._measuring:
            # Out of startup at the first packet that found a queue, not at
            # the end of the round: a round's lowest RTT rises only once the
            # whole round queues, and by then the doubled window has built
            # a queue of a round trip (100 ms behind a 3 Mbit/s downlink).
            base = self._base.value
            if base is not None and rtt - base > self.target / 2:
                self.startup = False

    def get_log_data(self) -> dict[str, Any]:
        data = super().get_log_data()
        data["startup"] = self.startup
        return data

    def _end_round(self) -> None:
        self.rounds += 1
        self._round_end = self._next_number
        base = self._base.value
        queue = self._round_min_rtt - base if base is not None else 0.0
        acked = self._round_acked
        self._round_min_rtt = math.inf
        self._round_acked = 0
        self._noise.on_round_end()
        if self._measuring:
            self._measuring -= 1
            if not self._measuring and self.startup:
                self.congestion_window = self._startup_window
            return
        if not math.isfinite(queue):
            return
        target = self.target
        if queue > target:
            self.startup = False
            self._cut(max(MAX_DECREASE, target / queue))
        elif self.startup:
            if queue > target / 2:
                self.startup = False
        elif acked >= self.congestion_window / 2:
            # Grow only while the window is used: an idle file flow must not
            # build a window it would dump on the path at once.
            off_target = (target - queue) / target
            self.congestion_window += int(GAIN * off_target * self._mss)

    def _cut(self, factor: float) -> None:
        self.decreases += 1
        self.congestion_window = max(
            self._min_window, int(self.congestion_window * factor)
        )


def register_scavenger_congestion_control() -> str:
    """Make the controller available to aioquic; return the name to put in
    ``QuicConfiguration.congestion_control_algorithm``. Calling it again is
    harmless."""
    register_congestion_control(SCAVENGER_CONTROL_NAME, ScavengerCongestionControl)
    return SCAVENGER_CONTROL_NAME
