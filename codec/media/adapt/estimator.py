"""The bandwidth estimate of one hop's sender: delay-based, loss-based, probed.

:class:`BandwidthEstimator` is what a hop's sender runs: it records every
datagram as it leaves (:meth:`~BandwidthEstimator.on_sent`), reads the
receiver's feedback (:meth:`~BandwidthEstimator.on_feedback`), and keeps

- the **delay-based** rate: trendline detector (:mod:`.trendline`) driving
  AIMD (:mod:`.rate_control`);
- the **loss-based** bound: none while loss stays under
  :data:`HEAVY_LOSS` (random loss that retransmission repairs must not cut the
  rate, and a queue that overflows shows up in the delay first); over it,
  the acknowledged rate times ``1 - loss / 2``, growing back 8% a second once
  the loss falls, dropped when it no longer binds;
- **probing** (:mod:`.probe`): clusters to send, and their results lifting
  both.

``target_bps`` is the smaller of the two, within ``[min_bps, max_bps]``. Pure:
every call takes ``now`` (seconds).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..feedback import FeedbackPacket
from .history import PacketResult, SendHistory
from .probe import (
    CLUSTER_DURATION_S,
    PERIODIC_PROBE_S,
    ProbeCluster,
    ProbeController,
    probe_result,
)
from .rate_control import MAX_CUT, AimdRateControl
from .trendline import DelayDetector, Usage

__all__ = ["HEAVY_LOSS", "LOSSY_SHARE", "BandwidthEstimator", "EstimatorStats"]

HEAVY_LOSS = 0.10
"""Loss over a :data:`LOSS_INTERVAL_S` interval above this fraction cuts the
rate (draft-ietf-rmcat-gcc's upper loss threshold)."""
QUEUED_LOSS = 0.02
"""Loss over this fraction (draft-ietf-rmcat-gcc's lower threshold) cuts the
rate when it comes with a standing queue: a drop-tail buffer that overflows
keeps a constant delay, which the trendline (a slope) does not see."""
STANDING_QUEUE_S = 0.05
"""A queue is standing when even the least-delayed packet of a loss interval
waited this long (seconds) above the lowest one-way delay seen."""
LONG_QUEUE_S = 0.1
"""A standing queue this long cuts the rate even without loss: nothing else
drains it (the trendline sees only growth), and a meeting cannot afford it.
The price: a loss-based flow that keeps a shared buffer full wins over us."""
QUEUE_WINDOW_S = 0.5
"""The standing queue is the least queueing delay over this long (seconds)."""
LOSS_INTERVAL_S = 1.0
LOSS_INTERVAL_PACKETS = 100
"""A loss interval holds at least this many packets: over 20, 5% random loss
reads as more than 10% one interval in 13."""
ACKED_WINDOW_S = 0.5
"""The acknowledged rate is what arrived over this long (receiver clock)."""
PROBE_PLAUSIBILITY = 0.9
"""The estimate is set to this much of a probe's result (the result is a
burst's rate; leave room for the media's own jitter)."""
PROBE_TRUST_S = 1.0
"""For this long (seconds) after a probe's result, what arrived counts as
at least the rate the probe was received at: the media needs
about that long to grow to an estimate a probe lifted (the encoder's
retarget, the 0.5 s acknowledged window, the feedback's delay), and a cut
in that time (a probe's own queue, a noisy arrival) taken from what
arrived before it threw away what the probe found. The same holds for a
probe that confirmed the estimate without lifting it: in the capacity
steps a probe at twice 2.34 Mbit/s came back at 2.44, its own queue read
as overuse 0.1 s later, and the cut from what the media had made (1.88)
left the estimate at 1.6 Mbit/s, a packet per response time from the
2.5 Mbit/s the probe had just shown, for the rest of the phase. The
price: a capacity that drops within the second after a probe is cut for
by the standing queue's drain (from what arrives), not by overuse."""
CALM_S = 3.0
"""No overuse for this long before a periodic probe."""
APP_LIMITED = 0.65
"""A periodic probe only while what was sent over the last
:data:`ACKED_WINDOW_S` is under this share of the estimate (libwebrtc
probes periodically only in its application-limited region, from 65%
down; what was sent, not what arrived, which falls when the path does):
a sender that fills its estimate finds more by AIMD, and a probe at twice
a full path's rate only queues. Measured in
``bench/adaptation.py``'s capacity steps: at 0.6 Mbit/s every periodic
probe (every 5 s) came back at the capacity and was followed within
0.5 s by a cut for overuse and a glass-to-glass p95 of 160-190 ms."""
CEILING_PROBE = 1.25
"""A sender held at :data:`~.rate_control.CAPACITY_CEILING` of a known
capacity probes every :data:`~.probe.PERIODIC_PROBE_S` with a cluster at
this many times its estimate (on top of its media): enough over the
capacity to show that it rose, little enough that a full path only queues
the cluster for a few milliseconds. A result at the capacity lifts nothing
and asks for no further cluster (the ordinary rule, a result at 70% of the
rate probed, would send one at twice the capacity into a full path); a
result past the capacity (what the rate control counts as a capacity that
rose) forgets it and asks for one at twice the result."""
CEILING_CLUSTER_S = 0.015
"""A ceiling probe lasts this long (half an ordinary cluster): at the
ceiling the link is busy 95% of the time, so every bit of the cluster is
queue that drains at the 5% left."""
CEILING_SHADOW_S = 0.6
"""For this long after a ceiling probe is asked for (plus a round trip), an
overuse verdict holds the rate instead of cutting it: the media sent behind
the cluster wait for it, and that queue is the probe's own..."""
CEILING_DROPPED = 0.8
"""...unless the probe came back under this share of the estimate: then the
path carries less than the media already send (a capacity that dropped
while the probe went out, as in the capacity steps when the 5 s period
met the drop from 2.5 to 0.6 Mbit/s), and the next overuse cuts. Held
through that shadow, the first cut came 0.4 s later than without the
probe and the picture froze 1.3-1.4 s instead of 0.8-0.9."""
CARRIED = 0.8
"""What arrived over the last :data:`ACKED_WINDOW_S` is at least this share of
what was sent: the path carries the media (after a drop it does not)."""
LOSSY_LOSS = 0.01
"""A loss interval that loses more than this fraction makes the path lossy..."""
LOSSY_HOLD_S = 5.0
"""...for this long (seconds): see :data:`LOSSY_SHARE`."""
LOSSY_SHARE = 0.5
"""The share of the estimate a lossy path's media is given (the estimate
itself is not cut). On a path that loses packets at random, every packet of
a frame is a chance that the frame waits a round trip for its repair, and
the receiver's playout delay then covers that wait for every frame; a frame
twice the size also takes twice as long to cross the bottleneck and queues
longer. So there latency, not capacity, decides what a meeting can use.
Measured with ``bench/loss.py`` (1.5 Mbit/s, 2% loss, 100 ms RTT): the same
build sending a fixed 500 kbit/s rendered with a glass-to-glass p50 of
130-155 ms and p95 of 177-186 ms, following the estimate at about
1.1 Mbit/s 171-182 ms and 205-223 ms."""
EVENTS_KEPT = 2000
"""Events (cuts, probes and their results) :attr:`BandwidthEstimator.events`
keeps, newest last."""
LOSSY_FLOOR_BPS = 500_000
"""The share takes media no lower than this (nor above the estimate): below
it, halving costs frame rate (the ladder halves 640x480's at 230 kbit/s),
not sharpness; a 5% loss run whose estimate was cut to 570 kbit/s showed
15 fps for 7 s with the share alone."""


@dataclass(slots=True)
class EstimatorStats:
    """A snapshot of one estimator (rates in bits per second)."""

    target_bps: int
    delay_based_bps: int
    loss_based_bps: int | None
    acked_bps: int | None
    loss_fraction: float
    usage: str
    threshold_ms: float
    decreases: int
    cuts: dict[str, int]
    """Decreases by cause: overuse, standing queue, queue with loss."""
    probes_sent: int
    feedback_received: int


class BandwidthEstimator:
    """The estimate of what one hop carries, in bits per second."""

    def __init__(
        self,
        start_bps: float = 300_000,
        min_bps: float = 50_000,
        max_bps: float = 2_500_000,
    ) -> None:
        self.min_bps = min_bps
        self.max_bps = max_bps
        self.history = SendHistory()
        self.detector = DelayDetector()
        self.rate = AimdRateControl(start_bps, min_bps, max_bps)
        self.probes = ProbeController(max_bps)
        self.loss_bound_bps: float | None = None
        self.loss_fraction = 0.0
        self.acked_bps: float | None = None
        self.cuts = {"overuse": 0, "standing_queue": 0, "queue_with_loss": 0}
        """Decreases of the delay-based rate, by what caused them."""
        self._arrivals: deque[tuple[float, int]] = deque()
        self._interval_start: float | None = None
        self._interval_lost = 0
        self._interval_total = 0
        self._offsets: deque[tuple[float, float]] = deque()
        """(feedback time, arrival minus send time) over the last window."""
        self.standing_queue_s = 0.0
        """Queueing delay no packet of the last window escaped (seconds)."""
        self._base_offset = float("inf")
        """Lowest arrival minus send time seen (seconds): the path's one-way
        delay plus the clocks' offset, which queueing delay is measured from."""
        self._loss_updated_at: float | None = None
        self._cluster_size: dict[int, int] = {}
        self._cluster_results: dict[int, list[PacketResult]] = {}
        self._overuse_at = float("-inf")
        self._probed_bps = 0.0
        self._probed_at = float("-inf")
        """The rate the last probe was received at, and when."""
        self._ceiling_clusters: set[int] = set()
        """Ceiling probes (:data:`CEILING_PROBE`) awaiting their result."""
        self._shadow_until = float("-inf")
        """Until when an overuse verdict is a ceiling probe's own queue."""
        self._lossy_at = float("-inf")
        """When (seconds) a loss interval last lost over :data:`LOSSY_LOSS`."""
        self._sent: deque[tuple[float, int]] = deque()
        """(send time, bytes) of what was sent over the last
        :data:`ACKED_WINDOW_S`, probes included."""
        self._sent_bytes = 0
        self._recent: deque[PacketResult] = deque()
        """Results of the last second, media and probes: a probe's result
        counts everything that crossed the path while it was sent."""
        self.events: deque[tuple[float, str, int]] = deque(maxlen=EVENTS_KEPT)
        """(seconds, what, bits per second): each cut by its cause with the
        rate after it, each probe cluster asked for with its rate, each
        probe result (``probe_void``: one that measured nothing). What a
        stats file shows of why the estimate moved."""

    @property
    def target_bps(self) -> float:
        """The estimate: the smaller of the delay- and loss-based rates."""
        rate = self.rate.rate_bps
        if self.loss_bound_bps is not None:
            rate = min(rate, self.loss_bound_bps)
        return min(max(rate, self.min_bps), self.max_bps)

    def media_bps(self, now: float) -> float:
        """What of the estimate media may use at ``now`` (bits per second):
        all of it, or while the path is lossy (within :data:`LOSSY_HOLD_S`
        of a loss interval over :data:`LOSSY_LOSS`) :data:`LOSSY_SHARE` of
        it, but no less than :data:`LOSSY_FLOOR_BPS` or the estimate."""
        target = self.target_bps
        if now - self._lossy_at >= LOSSY_HOLD_S:
            return target
        return min(target, max(LOSSY_FLOOR_BPS, LOSSY_SHARE * target))

    def set_rtt(self, rtt_s: float) -> None:
        """The hop's round trip (seconds), which paces decreases."""
        self.rate.rtt_s = rtt_s

    def start(
        self, now: float, multipliers: tuple[float, ...] | None = None
    ) -> list[ProbeCluster]:
        """The clusters to probe with at the start of the hop (at
        ``multipliers`` times the estimate; the probe controller's own by
        default)."""
        probes = self.probes
        if multipliers is None:
            return self._track(probes.start(self.target_bps, now), now)
        return self._track(probes.start(self.target_bps, now, multipliers), now)

    def on_sent(
        self, seq: int, size: int, now: float, probe_cluster: int | None = None
    ) -> None:
        """A datagram numbered ``seq`` (16 bits) of ``size`` bytes left at ``now``."""
        self.history.on_sent(seq, size, now, probe_cluster)
        sent = self._sent
        sent.append((now, size))
        self._sent_bytes += size
        while sent[0][0] < now - ACKED_WINDOW_S:
            self._sent_bytes -= sent.popleft()[1]

    def sent_bps(self, now: float) -> float:
        """What was sent over the last :data:`ACKED_WINDOW_S` before ``now``
        (bits per second)."""
        sent = self._sent
        while sent and sent[0][0] < now - ACKED_WINDOW_S:
            self._sent_bytes -= sent.popleft()[1]
        return self._sent_bytes * 8 / ACKED_WINDOW_S

    def poll(
        self,
        now: float,
        rate_bps: float | None = None,
        interval_s: float = PERIODIC_PROBE_S,
    ) -> list[ProbeCluster]:
        """Periodic probes due at ``now`` (call a few times a second): while
        the path is calm and either the media leaves the estimate unused
        (:data:`APP_LIMITED`) or the path carries what is sent and more than
        the capacity seen at the last decreases (the rate then grows by 8% a
        second, 12 s from 1 to 2.5 Mbit/s: a probe finds it in a round
        trip); a gentle one (:data:`CEILING_PROBE`) while the rate holds
        under a known capacity and the path carries what is sent. With
        ``rate_bps``, a probe at that rate whether or not the
        media fills the estimate, at most every ``interval_s``: what a
        sender would send if the path carried it (libwebrtc probes a new
        allocation so)."""
        calm = self.detector.usage is Usage.NORMAL and now - self._overuse_at >= CALM_S
        gentle = False
        if rate_bps is None:
            sent = self.sent_bps(now)
            app_limited = sent < APP_LIMITED * self.target_bps
            carried = self.acked_bps is not None and self.acked_bps >= CARRIED * sent
            unknown = carried and not self.rate.capacity_known
            ceiling = carried and self.rate.at_ceiling  # a capacity is known
            gentle = ceiling and not app_limited
            if gentle:
                rate_bps = CEILING_PROBE * self.target_bps
            calm = calm and (app_limited or unknown or ceiling)
        duration = CEILING_CLUSTER_S if gentle else CLUSTER_DURATION_S
        clusters = self.probes.periodic(
            self.target_bps, calm, now, rate_bps, interval_s, duration
        )
        if clusters and gentle:
            self._shadow_until = now + CEILING_SHADOW_S + self.rate.rtt_s
            self._ceiling_clusters.update(c.cluster_id for c in clusters)
        for cluster_id in list(self._cluster_size):
            if not self.probes.pending(cluster_id):
                del self._cluster_size[cluster_id]
                self._cluster_results.pop(cluster_id, None)
                self._ceiling_clusters.discard(cluster_id)
        return self._track(clusters, now)

    def on_feedback(self, feedback: FeedbackPacket, now: float) -> list[ProbeCluster]:
        """Read one feedback packet; returns further probe clusters to send."""
        results = self.history.on_feedback(feedback)
        if not results:
            return []
        self._update_acked(results)
        recent = self._recent
        recent.extend(results)
        while recent and recent[0].sent_at < results[-1].sent_at - 1.0:
            recent.popleft()
        media = [r for r in results if r.probe_cluster is None]
        # Probe clusters queue up for a moment by design: the delay detector
        # judges the media alone.
        usage = self.detector.update(media)
        if usage is Usage.OVERUSE and now < self._shadow_until:
            usage = Usage.UNDERUSE  # a ceiling probe's own queue: hold
        if usage is Usage.OVERUSE:
            self._overuse_at = now
        elif usage is Usage.NORMAL and self.standing_queue_s > STANDING_QUEUE_S:
            # A queue that no packet escapes is no time to grow, whatever the
            # slope says (a noisy path raises the threshold over a slow ramp).
            usage = Usage.UNDERUSE
        before = self.rate.decreases
        self.rate.update(usage, self._acked_or_probed(now), now)
        self._count_cut("overuse", before, now)
        self._update_queue(results, now)
        self._update_loss(media, now)
        return self._track(self._probe_results(results, now), now)

    def _acked_or_probed(self, now: float) -> float | None:
        """What arrived lately, or what a probe found within
        :data:`PROBE_TRUST_S` if it is higher."""
        acked = self.acked_bps
        if now - self._probed_at >= PROBE_TRUST_S:
            return acked
        return self._probed_bps if acked is None else max(acked, self._probed_bps)

    def _update_acked(self, results: list[PacketResult]) -> None:
        arrivals = self._arrivals
        for result in results:
            if result.arrived_at is not None:
                arrivals.append((result.arrived_at, result.size))
        if not arrivals:
            return
        latest = max(t for t, _ in arrivals)
        while arrivals and arrivals[0][0] < latest - ACKED_WINDOW_S:
            arrivals.popleft()
        span = latest - arrivals[0][0]
        if span >= ACKED_WINDOW_S / 2:
            self.acked_bps = (
                sum(size for _, size in arrivals) * 8 / max(span, ACKED_WINDOW_S)
            )

    def _update_queue(self, results: list[PacketResult], now: float) -> None:
        offsets = self._offsets
        for result in results:
            if result.arrived_at is not None:
                offset = result.arrived_at - result.sent_at
                self._base_offset = min(self._base_offset, offset)
                offsets.append((now, offset))
        while offsets and offsets[0][0] < now - QUEUE_WINDOW_S:
            offsets.popleft()
        if not offsets or now - offsets[0][0] < QUEUE_WINDOW_S / 2:
            return
        lowest = min(offset for _, offset in offsets)
        self.standing_queue_s = max(0.0, lowest - self._base_offset)
        if self.standing_queue_s > LONG_QUEUE_S:
            before = self.rate.decreases
            self.rate.drain(self.acked_bps, self.standing_queue_s, now)
            self._count_cut("standing_queue", before, now)
            self._overuse_at = now

    def _update_loss(self, results: list[PacketResult], now: float) -> None:
        if self._interval_start is None:
            self._interval_start = now
        self._interval_total += len(results)
        self._interval_lost += sum(r.arrived_at is None for r in results)
        if (
            now - self._interval_start < LOSS_INTERVAL_S
            or self._interval_total < LOSS_INTERVAL_PACKETS
        ):
            return
        loss = self._interval_lost / self._interval_total
        self.loss_fraction = loss
        if loss > LOSSY_LOSS:
            self._lossy_at = now
        standing_queue_s = self.standing_queue_s
        elapsed = 0.0 if self._loss_updated_at is None else now - self._loss_updated_at
        self._loss_updated_at = now
        self._interval_start = now
        self._interval_lost = self._interval_total = 0
        if loss > QUEUED_LOSS and standing_queue_s > STANDING_QUEUE_S:
            before = self.rate.decreases
            self.rate.drain(self.acked_bps, standing_queue_s, now)
            self._count_cut("queue_with_loss", before, now)
            self._overuse_at = now
        if loss > HEAVY_LOSS:
            base = self.acked_bps if self.acked_bps is not None else self.target_bps
            # Never below half the current estimate in one step, as a delay
            # cut (an acknowledged rate measured while starting is low).
            bound = max(base * (1 - loss / 2), MAX_CUT * self.target_bps)
            if self.loss_bound_bps is None or bound < self.loss_bound_bps:
                self.loss_bound_bps = max(bound, self.min_bps)
        elif self.loss_bound_bps is not None:
            self.loss_bound_bps *= 1.08 ** min(elapsed, 2.0)
            if self.loss_bound_bps >= self.rate.rate_bps:
                self.loss_bound_bps = None

    def _probe_results(
        self, results: list[PacketResult], now: float
    ) -> list[ProbeCluster]:
        further: list[ProbeCluster] = []
        for result in results:
            cluster = result.probe_cluster
            if cluster is None or cluster not in self._cluster_size:
                continue
            held = self._cluster_results.setdefault(cluster, [])
            held.append(result)
            if len(held) < self._cluster_size[cluster]:
                continue
            del self._cluster_size[cluster]
            del self._cluster_results[cluster]
            first = min(r.sent_at for r in held)
            last = max(r.sent_at for r in held)
            rate = probe_result([r for r in self._recent if first <= r.sent_at <= last])
            if rate is None:
                self._ceiling_clusters.discard(cluster)
                self.probes.void(cluster, now)
                self.events.append((now, "probe_void", 0))
                continue
            self.events.append((now, "probe_result", round(rate)))
            if PROBE_PLAUSIBILITY * rate > self.rate.rate_bps:
                self.rate.set_rate(PROBE_PLAUSIBILITY * rate, now)
            self._probed_bps = rate
            self._probed_at = now
            rose = None
            if cluster in self._ceiling_clusters:
                self._ceiling_clusters.discard(cluster)
                rose = self.rate.capacity_rose(rate)
                if rate < CEILING_DROPPED * self.target_bps:
                    self._shadow_until = float("-inf")
            further += self.probes.on_result(cluster, rate, now, rose)
        return further

    def _count_cut(self, cause: str, decreases_before: int, now: float) -> None:
        if self.rate.decreases > decreases_before:
            self.cuts[cause] += self.rate.decreases - decreases_before
            self.events.append((now, cause, round(self.rate.rate_bps)))

    def _track(self, clusters: list[ProbeCluster], now: float) -> list[ProbeCluster]:
        for cluster in clusters:
            self.events.append((now, "probe", round(cluster.rate_bps)))
            self._cluster_size[cluster.cluster_id] = cluster.packets
            self._cluster_results.pop(cluster.cluster_id, None)
        return clusters

    def snapshot(self) -> EstimatorStats:
        """The estimator's state, for stats."""
        return EstimatorStats(
            target_bps=round(self.target_bps),
            delay_based_bps=round(self.rate.rate_bps),
            loss_based_bps=None
            if self.loss_bound_bps is None
            else round(self.loss_bound_bps),
            acked_bps=None if self.acked_bps is None else round(self.acked_bps),
            loss_fraction=round(self.loss_fraction, 4),
            usage=self.detector.usage.value,
            threshold_ms=round(self.detector.threshold_ms, 2),
            decreases=self.rate.decreases,
            cuts=dict(self.cuts),
            probes_sent=self.probes.clusters_sent,
            feedback_received=self.history.feedback_received,
        )
