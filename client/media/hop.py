"""This client's hop to the SFU, both ways: the pacer and the bandwidth
estimate for what it sends, feedback for what it receives.

All media this client sends (audio, video, retransmissions, probes) leaves
through one :class:`~codec.media.adapt.Pacer`, which numbers each datagram
with the hop's transport sequence as it releases it and hands aioquic no more
than ``max_queued`` at a time, so that the feedback measures the path and not
aioquic's queue. The SFU's feedback drives a
:class:`~codec.media.adapt.BandwidthEstimator`; the estimate sets the pacing
rate and, through ``on_estimate``, the senders' budgets. What the SFU sends
here is recorded by an :class:`~codec.media.adapt.ArrivalRecorder` and
reported every 50 ms.

How the estimate and the QUIC congestion controller agree: the estimate
bounds what media is made and paced; the connection's window is the safety
net under it. When the window is the tighter of the two, released datagrams
wait in aioquic, the recorded send times run ahead of the real ones, the
feedback shows a growing delay, and the estimate comes down to what the
window lets through: the media follows the smaller of the two limits instead
of building a queue behind the window. The pacer never hands aioquic more
than ``max_queued`` datagrams, so that wait is short.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from codec.media import FeedbackPacket
from codec.media.adapt import (
    ArrivalRecorder,
    BandwidthEstimator,
    Pacer,
    RepairShare,
)
from codec.media.packet import PacketKind
from codec.media.recovery import REPAIR_COPIES, REPEAT_WINDOW_S, RetransmitCache

if TYPE_CHECKING:
    from ..rooms import Rooms

__all__ = ["MAX_AIOQUIC_QUEUE", "MediaHop"]

MAX_AIOQUIC_QUEUE = 4
"""Datagrams the pacer lets wait in aioquic's queue at most."""
START_BPS = 300_000
"""The estimate a hop starts from; probing finds more within a second."""
MAX_BPS = 4_000_000
_TICK_S = 0.05
TIMELINE_TICKS = 12_000
"""Ticks the timeline keeps: ten minutes."""
_RETRY_S = 0.002
"""How soon to try again when aioquic's queue is full (seconds)."""
_VIDEO_FIRST_BYTES = frozenset(
    (1 << 6) | (PacketKind.VIDEO << 3) | flags for flags in range(8)
)


class MediaHop:
    """The pacer, estimator, retransmit cache and feedback of one hop.

    ``on_estimate(bps)`` is called (on the loop) after every feedback;
    ``on_frame_dropped(track_id)`` when the pacer dropped a frame of that track
    (its sender needs a keyframe). :meth:`start` once, :meth:`close` at the end.
    """

    def __init__(
        self,
        rooms: Rooms,
        loop: asyncio.AbstractEventLoop,
        *,
        start_bps: float = START_BPS,
        max_bps: float = MAX_BPS,
        max_queued: int = MAX_AIOQUIC_QUEUE,
    ) -> None:
        self.rooms = rooms
        self.max_queued = max_queued
        self.estimator = BandwidthEstimator(start_bps, max_bps=max_bps)
        self.pacer = Pacer(self.estimator.target_bps)
        self.cache = RetransmitCache(
            copies=REPAIR_COPIES, min_interval_s=REPEAT_WINDOW_S
        )
        self.recorder = ArrivalRecorder()
        self.repairs = RepairShare()
        """What share of the media sent were repairs: the encoders leave it."""
        self.on_estimate: Callable[[float], None] = lambda bps: None
        self.on_frame_dropped: Callable[[int], None] = lambda track_id: None
        self.bytes_sent = 0
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._closed = False
        self.timeline: deque[tuple[float, int, int]] = deque(maxlen=TIMELINE_TICKS)
        """(Unix time in seconds, estimate in bits per second, bytes sent so
        far) at every tick: the estimate and the sent rate over time."""
        self.queue_delay_s = 0.0
        """How long what waits in the pacer takes to leave, as of the last
        release (seconds; read by the capture threads, written here)."""
        self.trace: deque[tuple[float, ...]] = deque(maxlen=TIMELINE_TICKS)
        """(Unix time, delay-based rate, acknowledged rate (bits per second),
        most datagrams found in aioquic's queue at a release and how many
        releases found it full since the last tick, standing queue in
        milliseconds, then the bytes released since the last tick of audio,
        video, repairs and probes) at every tick: why the estimate is where
        it is, and what the hop sent of it."""
        self._queued_max = 0
        self._queue_full = 0
        self._released = [0, 0, 0, 0]
        """Bytes released since the last tick: audio, video, repairs, probes."""

    def start(self) -> None:
        """Probe for bandwidth and start the feedback tick."""
        now = self._loop.time()
        for cluster in self.estimator.start(now):
            self.pacer.add_probe(cluster, now)
        self._on_tick()

    def close(self) -> None:
        """Stop the timers; nothing more is sent, and the connection's window
        no longer makes room for media."""
        self._closed = True
        self.rooms.set_media_rate(0)
        for timer in (self._timer, self._tick):
            if timer is not None:
                timer.cancel()

    # -- sending ------------------------------------------------------------------

    def send_audio(self, datagrams: Sequence[bytes]) -> bool:
        """Queue audio (it goes first); False without a connection."""
        if self.rooms.datagrams_queued() is None:
            return False
        now = self._loop.time()
        for data in datagrams:
            self.pacer.enqueue_audio(data, now)
        self._pump()
        return True

    def send_frame(
        self, track_id: int, datagrams: Sequence[bytes], keyframe: bool
    ) -> bool:
        """Queue one video frame; False when it was dropped (no connection, or
        it would leave too late)."""
        if self.rooms.datagrams_queued() is None:
            return False
        now = self._loop.time()
        queued = self.pacer.enqueue_frame(track_id, datagrams, now, keyframe=keyframe)
        if queued:
            self._pump()
        return queued

    def retransmit(self, track_id: int, seqs: Sequence[int], budget_s: float) -> int:
        """Queue again what is still useful of ``seqs``, each packet in
        :data:`~codec.media.recovery.REPAIR_COPIES` copies; how many datagrams
        were queued. They go after audio, ahead of video."""
        now = self._loop.time()
        resent = self.cache.retransmit(track_id, list(seqs), now, budget_s)
        for data in resent:
            self.pacer.enqueue_retransmission(data, now, now + budget_s / 2)
        if resent:
            self._pump()
        return len(resent)

    def _pump(self) -> None:
        if self._closed:
            return
        now = self._loop.time()
        queued = self.rooms.datagrams_queued()
        room = 0 if queued is None else self.max_queued - queued
        if queued is not None:
            self._queued_max = max(self._queued_max, queued)
            self._queue_full += room <= 0
        if room > 0:
            released = self.pacer.release(now, limit=room)
            if released and self.rooms.send_datagrams(
                [r.data for r in released], self.max_queued
            ):
                for item in released:
                    self.estimator.on_sent(item.seq, item.size, now, item.probe_cluster)
                    self.bytes_sent += item.size
                    data = item.data
                    video = data[0] in _VIDEO_FIRST_BYTES
                    if item.probe_cluster is None:
                        self.repairs.on_released(item.size, item.repair, now)
                        self._released[2 if item.repair else int(video)] += item.size
                    else:
                        self._released[3] += item.size
                    if video and not item.repair:
                        # Simulcast layers number their packets on their
                        # own: the spatial layer goes above bit 32 of the key.
                        key = int.from_bytes(data[4:8], "big") | data[1] >> 4 << 32
                        seq = int.from_bytes(data[8:10], "big")
                        self.cache.put(key, seq, data, now)
        for track_id in self.pacer.take_dropped_tracks():
            self.on_frame_dropped(track_id)
        self.queue_delay_s = self.pacer.delay_s(now)
        when = self.pacer.next_release_at(now)
        if when is None:
            return
        if queued is None:
            when = now + _TICK_S  # no connection: look again later
        elif room <= 0:
            when = now + _RETRY_S
        when = max(when, now + 0.001)
        if self._timer is not None and self._timer_at is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._pump()

    # -- feedback -----------------------------------------------------------------

    def on_received(self, transport_seq: int) -> None:
        """A datagram numbered ``transport_seq`` arrived from the SFU."""
        self.recorder.on_packet(transport_seq, self._loop.time())

    def on_feedback(self, feedback: FeedbackPacket) -> None:
        """The SFU reported what arrived of what this hop sent."""
        now = self._loop.time()
        for cluster in self.estimator.on_feedback(feedback, now):
            self.pacer.add_probe(cluster, now)
        self._follow_estimate(now)

    def media_budget_bps(self) -> float:
        """What the encoders may make (bits per second): what of the estimate
        media may use (:meth:`~codec.media.adapt.BandwidthEstimator.media_bps`:
        less on a lossy path) less the share the repairs took lately
        (:mod:`~codec.media.adapt.repair_share`)."""
        now = self._loop.time()
        return self.estimator.media_bps(now) * (1 - self.repairs.share(now))

    def _follow_estimate(self, now: float) -> None:
        self.pacer.set_rate(self.estimator.target_bps, now)
        self.rooms.set_media_rate(self.estimator.target_bps)
        self.on_estimate(self.media_budget_bps())
        self._pump()

    def _on_tick(self) -> None:
        if self._closed:
            return
        now = self._loop.time()
        rtt = self.rooms.rtt_s()
        if rtt is not None:
            self.estimator.set_rtt(rtt)
        if self.recorder.due(now):
            datagrams = [p.serialize() for p in self.recorder.feedback(now)]
            self.rooms.send_datagrams(datagrams, self.max_queued + len(datagrams))
        for cluster in self.estimator.poll(now):
            self.pacer.add_probe(cluster, now)
        self._pump()
        unix = time.time()
        estimator = self.estimator
        self.timeline.append((unix, round(estimator.target_bps), self.bytes_sent))
        self.trace.append(
            (
                unix,
                round(estimator.rate.rate_bps),
                round(estimator.acked_bps or 0),
                self._queued_max,
                self._queue_full,
                round(estimator.standing_queue_s * 1000, 1),
                *self._released,
            )
        )
        self._queued_max = self._queue_full = 0
        self._released = [0, 0, 0, 0]
        self._tick = self._loop.call_later(_TICK_S, self._on_tick)

    def stats(self) -> dict[str, object]:
        """The hop's estimate and pacer counters, for a stats file."""
        estimate = self.estimator.snapshot()
        pacer = self.pacer.stats
        unix_offset = time.time() - self._loop.time()
        return {
            "estimate_bps": estimate.target_bps,
            "delay_based_bps": estimate.delay_based_bps,
            "loss_based_bps": estimate.loss_based_bps,
            "acked_bps": estimate.acked_bps,
            "repair_share": round(self.repairs.share(self._loop.time()), 4),
            "loss_fraction": estimate.loss_fraction,
            "usage": estimate.usage,
            "rate_decreases": estimate.decreases,
            "rate_cuts": estimate.cuts,
            "probe_clusters": estimate.probes_sent,
            "feedback_received": estimate.feedback_received,
            "feedback_sent": self.recorder.feedback_sent,
            "pacer_frames_dropped": pacer.frames_dropped,
            "pacer_retransmissions_expired": pacer.retransmissions_expired,
            "pacer_delay_ms": round(self.queue_delay_s * 1000, 1),
            "timeline": [[round(t, 3), bps, sent] for t, bps, sent in self.timeline],
            "trace": [[round(t, 3), *rest] for t, *rest in self.trace],
            "events": [
                [round(t + unix_offset, 3), what, bps]
                for t, what, bps in self.estimator.events
            ],
        }
