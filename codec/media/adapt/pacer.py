"""The one egress point of a hop's media: a pacer.

Every audio, video, retransmitted and probe datagram of a hop leaves through
one :class:`Pacer`, which releases them at the pacing rate (the estimate times
``pacing_factor``) with a small burst allowance, in priority order: audio,
then retransmissions that can still arrive in time, then video, frame by
frame. Probe clusters go out at their own rate beside the media. The transport
sequence number is written into each datagram when it is released, not when it
is queued, so that what feedback measures is the path, not this queue.

A video frame that would leave later than ``max_video_delay_s`` after it was
queued is dropped whole, before any of it is handed to the connection (a
frame that started leaving is finished). Keyframes are exempt: dropping one
would only make the receiver ask for the next. Pure: every call takes ``now``
(seconds).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ..packet import ProbePacket
from .probe import ProbeCluster

__all__ = ["Pacer", "PacerStats", "Released", "PacingBudget"]

PACING_FACTOR = 1.5
"""The pacer runs this much faster than the estimate: encoders overshoot a
frame now and then, and a frame held for long is as bad as one lost. The
estimator still sees the link's real rate in the feedback."""
BURST_S = 0.005
"""The burst allowance (seconds at the pacing rate)..."""
MIN_BURST_BYTES = 2 * 1200
"""...and at least two datagrams."""
MAX_VIDEO_DELAY_S = 0.2
"""A video frame that would wait longer than this in the pacer is dropped."""
_PROBE_HEADER = 4


class PacingBudget:
    """What a pacer may send now, in bytes: refilled at ``rate_Bps`` (bytes
    per second) and holding at most ``burst_s`` of it, at least
    :data:`MIN_BURST_BYTES`. A send may take it below zero; the pacer then
    waits :meth:`wait_s`. Shared by a client's :class:`Pacer` and the SFU's
    hops (:mod:`server.sfu_hop`). Unlike an admission bucket
    (``server.throttle.TokenBucket``, which refuses what it cannot pay for),
    a pacer's budget lets the datagram that finds it positive go whole and
    owes the rest."""

    __slots__ = ("rate_Bps", "burst_s", "budget", "_refilled_at")

    def __init__(self, rate_Bps: float, burst_s: float = BURST_S) -> None:
        self.rate_Bps = rate_Bps
        self.burst_s = burst_s
        self.budget = 0.0
        self._refilled_at: float | None = None

    @property
    def cap(self) -> float:
        """The most the bucket holds (bytes)."""
        return max(self.rate_Bps * self.burst_s, MIN_BURST_BYTES)

    def refill(self, now: float) -> None:
        """Add what ``rate_Bps`` brought since the last refill, up to the cap."""
        refilled_at = self._refilled_at
        if refilled_at is not None and now > refilled_at:
            self.budget = min(
                self.budget + (now - refilled_at) * self.rate_Bps, self.cap
            )
        if refilled_at is None or now > refilled_at:
            self._refilled_at = now

    def fill(self) -> None:
        """Start a burst with the whole allowance (an idle pacer)."""
        self.budget = max(self.budget, self.cap)

    def wait_s(self) -> float:
        """How long until the budget is positive again (seconds)."""
        return (1.0 - self.budget) / self.rate_Bps


@dataclass(frozen=True, slots=True)
class Released:
    """A datagram the pacer released, numbered with the hop's transport
    sequence (``seq``)."""

    data: bytes
    seq: int
    size: int
    probe_cluster: int | None = None
    repair: bool = False
    """A retransmission: its sender must not keep it as a first sending (that
    would reset what its retransmit cache counts for the packet)."""


@dataclass(slots=True)
class PacerStats:
    """Counters of one pacer (datagrams unless named)."""

    released: int = 0
    bytes_released: int = 0
    probes_released: int = 0
    frames_queued: int = 0
    frames_dropped: int = 0
    """Video frames dropped whole because they would have left too late."""
    retransmissions_expired: int = 0
    """Retransmissions dropped because their deadline passed in the queue."""


class _Frame:
    __slots__ = ("track_id", "datagrams", "queued_at", "keyframe", "started")

    def __init__(
        self, track_id: int, datagrams: Sequence[bytes], now: float, keyframe: bool
    ) -> None:
        self.track_id = track_id
        self.datagrams = deque(datagrams)
        self.queued_at = now
        self.keyframe = keyframe
        self.started = False


class _Probe:
    __slots__ = ("cluster", "remaining", "next_at")

    def __init__(self, cluster: ProbeCluster, now: float) -> None:
        self.cluster = cluster
        self.remaining = cluster.packets
        self.next_at = now


class Pacer:
    """Releases a hop's datagrams at ``rate_bps`` x ``pacing_factor``.

    Queue with :meth:`enqueue_audio`, :meth:`enqueue_retransmission`,
    :meth:`enqueue_frame` and :meth:`add_probe`; call :meth:`release` at
    :meth:`next_release_at` and send what it returns, in order.
    """

    def __init__(
        self,
        rate_bps: float,
        *,
        pacing_factor: float = PACING_FACTOR,
        burst_s: float = BURST_S,
        max_video_delay_s: float = MAX_VIDEO_DELAY_S,
    ) -> None:
        if rate_bps <= 0:
            raise ValueError(f"pacing rate {rate_bps} must be positive")
        self.pacing_factor = pacing_factor
        self.max_video_delay_s = max_video_delay_s
        self.stats = PacerStats()
        self._bucket = PacingBudget(rate_bps * pacing_factor / 8, burst_s)
        self._seq = 0
        self._audio: deque[bytes] = deque()
        self._retransmissions: deque[tuple[bytes, float]] = deque()
        self._frames: deque[_Frame] = deque()
        self._probes: deque[_Probe] = deque()
        self._queued_bytes = 0
        self._dropped_tracks: list[int] = []

    # -- configuration ----------------------------------------------------------

    @property
    def rate_bps(self) -> float:
        """The pacing rate, in bits per second."""
        return self._bucket.rate_Bps * 8

    @property
    def burst_s(self) -> float:
        """The burst allowance, in seconds at the pacing rate."""
        return self._bucket.burst_s

    def set_rate(self, rate_bps: float, now: float) -> None:
        """Follow a new estimate (bits per second) from ``now`` on."""
        if rate_bps <= 0:
            raise ValueError(f"pacing rate {rate_bps} must be positive")
        self._refill(now)
        self._bucket.rate_Bps = rate_bps * self.pacing_factor / 8

    # -- queueing ---------------------------------------------------------------

    def enqueue_audio(self, datagram: bytes, now: float) -> None:
        """Queue an audio datagram: it goes before anything else."""
        self._refill(now)
        self._audio.append(datagram)
        self._queued_bytes += len(datagram)

    def enqueue_retransmission(
        self, datagram: bytes, now: float, deadline: float
    ) -> None:
        """Queue a retransmission, useless after ``deadline`` (clock seconds)."""
        self._refill(now)
        self._retransmissions.append((datagram, deadline))
        self._queued_bytes += len(datagram)

    def enqueue_frame(
        self,
        track_id: int,
        datagrams: Sequence[bytes],
        now: float,
        *,
        keyframe: bool = False,
    ) -> bool:
        """Queue one video frame's datagrams; False (nothing queued) when it
        would leave later than ``max_video_delay_s`` (keyframes always go)."""
        self._refill(now)
        size = sum(len(d) for d in datagrams)
        self.stats.frames_queued += 1
        if not keyframe and self.delay_s(now, extra_bytes=size) > (
            self.max_video_delay_s
        ):
            self.stats.frames_dropped += 1
            return False
        self._frames.append(_Frame(track_id, datagrams, now, keyframe))
        self._queued_bytes += size
        return True

    def add_probe(self, cluster: ProbeCluster, now: float) -> None:
        """Send ``cluster``'s probe datagrams at its rate, from ``now``."""
        self._probes.append(_Probe(cluster, now))

    # -- state ------------------------------------------------------------------

    @property
    def queued_bytes(self) -> int:
        """Media bytes waiting (probes not counted)."""
        return self._queued_bytes

    def delay_s(self, now: float, extra_bytes: int = 0) -> float:
        """How long (seconds) what is queued, plus ``extra_bytes``, takes to
        leave at the pacing rate."""
        bucket = self._bucket
        owed = self._queued_bytes + extra_bytes - max(bucket.budget, 0.0)
        return max(owed, 0.0) / bucket.rate_Bps

    def take_dropped_tracks(self) -> list[int]:
        """Track ids of the frames dropped since the last call (one per frame):
        their senders need a keyframe."""
        dropped, self._dropped_tracks = self._dropped_tracks, []
        return dropped

    def next_release_at(self, now: float) -> float | None:
        """When :meth:`release` has something to send (None: nothing queued)."""
        times = []
        if self._probes:
            times.append(self._probes[0].next_at)
        if self._audio or self._retransmissions or self._frames:
            self._refill(now)
            bucket = self._bucket
            times.append(now if bucket.budget > 0 else now + bucket.wait_s())
        return min(times) if times else None

    # -- releasing --------------------------------------------------------------

    def release(self, now: float, limit: int | None = None) -> list[Released]:
        """The datagrams to send at ``now``, numbered, in order; at most
        ``limit`` of them (what is left waits)."""
        self._refill(now)
        out: list[Released] = []
        while limit is None or len(out) < limit:
            probe = self._probes[0] if self._probes else None
            if probe is not None and probe.next_at <= now:
                out.append(self._release_probe(probe))
                continue
            if self._bucket.budget <= 0:
                break
            media = self._next_media(now)
            if media is None:
                break
            data, repair = media
            self._bucket.budget -= len(data)
            self._queued_bytes -= len(data)
            out.append(self._number(data, repair))
        return out

    def _next_media(self, now: float) -> tuple[bytes, bool] | None:
        """The next media datagram to release, and whether it is a repair."""
        if self._audio:
            return self._audio.popleft(), False
        while self._retransmissions:
            data, deadline = self._retransmissions.popleft()
            if now <= deadline:
                return data, True
            self._queued_bytes -= len(data)
            self.stats.retransmissions_expired += 1
        while self._frames:
            frame = self._frames[0]
            if (
                not frame.started
                and not frame.keyframe
                and now - frame.queued_at > self.max_video_delay_s
            ):
                self._frames.popleft()
                self._queued_bytes -= sum(len(d) for d in frame.datagrams)
                self.stats.frames_dropped += 1
                self._dropped_tracks.append(frame.track_id)
                continue
            frame.started = True
            data = frame.datagrams.popleft()
            if not frame.datagrams:
                self._frames.popleft()
            return data, False
        return None

    def _release_probe(self, probe: _Probe) -> Released:
        cluster = probe.cluster
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        data = ProbePacket(
            cluster.cluster_id, seq, cluster.packet_bytes - _PROBE_HEADER
        ).serialize()
        probe.remaining -= 1
        probe.next_at += cluster.packet_bytes * 8 / cluster.rate_bps
        if probe.remaining <= 0:
            self._probes.popleft()
            if self._probes:
                # The next cluster starts where this one ended, not at once.
                following = self._probes[0]
                following.next_at = max(following.next_at, probe.next_at)
        self.stats.probes_released += 1
        return Released(data, seq, len(data), cluster.cluster_id)

    def _number(self, data: bytes, repair: bool) -> Released:
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        numbered = data[:2] + seq.to_bytes(2, "big") + data[4:]
        self.stats.released += 1
        self.stats.bytes_released += len(numbered)
        return Released(numbered, seq, len(numbered), repair=repair)

    def _refill(self, now: float) -> None:
        self._bucket.refill(now)
        if not (self._audio or self._retransmissions or self._frames):
            # An idle pacer starts its next burst with the full allowance.
            self._bucket.fill()
