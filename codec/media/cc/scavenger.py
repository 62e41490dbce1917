"""A lower-than-best-effort controller for connections that carry only files.

Built and measured, not enabled: the upload pump and the CLI's file
commands keep the media controller, because on real processes this one gave
a file far less than the media left (``docs/adaptation.md``, "Files beside a
meeting"); it is chosen with ``Session(congestion_control=...)``.

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
- **startup** doubles the window each round until the queue passes half of
  the target (or a loss);
- then each round the window grows by ``GAIN`` packets scaled by how far the
  queue is under the target, and when the queue stands above the target it
  shrinks multiplicatively, by the target over the queue (at most by half):
  a delay-based media flow that raises the queue takes the room back within
  a few round trips, and the queue stays near the target, a few ms;
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

TARGET_S = 0.005
"""Queueing delay the file flow keeps at most (RFC 6817 allows up to 100 ms).
Beside the media stack on a 5 Mbit/s path (``tests/codec/media/
test_cc_scavenger.py``) a target of 12 or 25 ms held the media's estimate at
1.5-1.8 of its 2.5 Mbit/s: the queue the file keeps moves with every cut and
regrowth, and the media's trendline reads each move as overuse; at 3 or 5 ms
the media kept all 2.5 and the file moved at 1.95."""
SPREAD_FACTOR = 1.5
"""The target is at least this many times the RTT's measured spread
(:class:`~.noise.RttNoise`): a loaded host's late answers are not a queue.
On the virtual clock with ACKs late by an exponential 4 ms (mean) a 1.0 left
a lone file at 4.0 of 5 Mbit/s, a 2.0 held the media's estimate to 2.25 of
2.5 Mbit/s; 1.5 gives 4.4 and 2.5 (one seed; 2.2-2.5 over three)."""
NOISE_JITTER_GAIN = 1 / 16
NOISE_GROUP_SAMPLES = 16
NOISE_WINDOW_GROUPS = 16
"""The spread is the lowest of this many groups' (as the media controller's)."""
GAIN = 1.0
"""Packets per round the window grows by with no queue at all."""

BASE_WINDOW_S = 10.0
"""How long the lowest RTT is remembered as the path's base delay."""
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
        self._round_end = 0
        """Packet number that ends the current round when acknowledged."""
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

    def on_packet_acked(self, *, now: float, packet: QuicSentPacket) -> None:
        self.bytes_in_flight -= packet.sent_bytes
        self._round_acked += packet.sent_bytes
        if self.startup:
            self.congestion_window += packet.sent_bytes
        if packet.packet_number >= self._round_end:
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
