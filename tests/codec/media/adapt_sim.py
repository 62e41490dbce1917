"""A video sender, a netsim bottleneck and a feedback path, on a virtual clock.

The sender is the pure adaptation stack as a hop's sender runs it: frames at
30 fps sized by the estimate (a model encoder: each frame is target / fps
bits, the first a keyframe five times that), packetized for real, queued in a
:class:`~codec.media.adapt.Pacer` and numbered at release; a frame is skipped
at the source while the pacer holds more than a frame interval. The data
direction is a netsim ``Link``; the receiver's
:class:`~codec.media.adapt.ArrivalRecorder` reports every 50 ms and its
feedback comes back after a fixed delay, never lost.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from codec.media import VideoPacketizer, parse_packet
from codec.media.adapt import ArrivalRecorder, BandwidthEstimator, Pacer
from netsim import Link, LinkConfig, ScheduleStep

TICK_S = 0.002
FPS = 30


@dataclass
class Sample:
    """The run at one 100 ms point."""

    time: float
    estimate_bps: float
    sent_bps: float
    """Media bits released over the last 100 ms."""
    delay_s: float
    """Highest one-way delay of a packet that arrived in the last 100 ms."""


@dataclass
class AdaptSim:
    """One video flow through one bottleneck (``link``), ``return_delay_s`` back."""

    link: LinkConfig
    schedule: Iterable[ScheduleStep] = ()
    return_delay_s: float = 0.05
    start_bps: float = 300_000
    max_bps: float = 3_000_000
    seed: int = 1
    encoder_efficiency: float = 1.0
    """What the model encoder makes of its target (x264 undershoots)."""
    shared_link: Any = None
    """A link to use instead of one of ``link``'s own (a tap of
    ``cc_sim.SharedBottleneck``: other flows beside the video)."""
    each_tick: Callable[[float], None] = lambda now: None
    """Called at the start of every tick (to advance the flows beside it)."""
    samples: list[Sample] = field(default_factory=list)
    frames_sent: int = 0
    frames_skipped: int = 0

    def run(self, duration_s: float) -> list[Sample]:
        link: Link[bytes] = self.shared_link or Link(
            self.link, seed=self.seed, schedule=self.schedule
        )
        estimator = BandwidthEstimator(self.start_bps, max_bps=self.max_bps)
        estimator.set_rtt(2 * self.return_delay_s)
        pacer = Pacer(estimator.target_bps)
        recorder = ArrivalRecorder()
        packetizer = VideoPacketizer(7)
        feedback: list[tuple[float, int, bytes]] = []
        sent_at: dict[int, float] = {}
        counter = 0
        now = 0.0
        next_frame = 0.0
        next_sample = 0.1
        released_bits = 0
        worst_delay = 0.0
        first_frame = True
        for cluster in estimator.start(now):
            pacer.add_probe(cluster, now)
        while now < duration_s:
            self.each_tick(now)
            if now >= next_frame:
                next_frame += 1 / FPS
                if pacer.delay_s(now) > 1 / FPS:
                    self.frames_skipped += 1
                else:
                    bits = (
                        self.encoder_efficiency
                        * estimator.media_bps(now)
                        / FPS
                        * (5 if first_frame else 1)
                    )
                    packets = packetizer.packetize(
                        bytes(max(1, int(bits / 8))), 0, first_frame
                    )
                    if pacer.enqueue_frame(
                        7,
                        [p.serialize() for p in packets],
                        now,
                        keyframe=first_frame,
                    ):
                        self.frames_sent += 1
                    first_frame = False
            for released in pacer.release(now):
                estimator.on_sent(
                    released.seq, released.size, now, released.probe_cluster
                )
                sent_at[released.seq] = now
                if released.probe_cluster is None:
                    released_bits += released.size * 8
                link.send(released.data, now)
            for data in link.receive(now):
                seq = int.from_bytes(data[2:4], "big")
                recorder.on_packet(seq, now)
                worst_delay = max(worst_delay, now - sent_at.pop(seq, now))
            if recorder.due(now):
                for packet in recorder.feedback(now):
                    counter += 1
                    heapq.heappush(
                        feedback,
                        (now + self.return_delay_s, counter, packet.serialize()),
                    )
            while feedback and feedback[0][0] <= now:
                parsed = parse_packet(heapq.heappop(feedback)[2])
                for cluster in estimator.on_feedback(parsed, now):  # type: ignore[arg-type]
                    pacer.add_probe(cluster, now)
            for cluster in estimator.poll(now):
                pacer.add_probe(cluster, now)
            pacer.set_rate(estimator.target_bps, now)
            if now >= next_sample:
                next_sample += 0.1
                self.samples.append(
                    Sample(now, estimator.target_bps, released_bits / 0.1, worst_delay)
                )
                released_bits = 0
                worst_delay = 0.0
            now = round(now + TICK_S, 6)
        return self.samples


def between(samples: list[Sample], start: float, end: float) -> list[Sample]:
    """The samples from ``start`` to ``end`` seconds."""
    return [s for s in samples if start <= s.time < end]


def mean(values: Iterable[float]) -> float:
    listed = list(values)
    return sum(listed) / len(listed)
