"""An adaptive jitter buffer for one speaker, in time rather than packets.

Packets go in with their arrival time (:meth:`JitterBuffer.push`); the playout
clock takes one 20 ms decision per frame (:meth:`JitterBuffer.pop`). The
buffer keeps a window of each packet's transit (arrival time less media
time): its minimum is the path's base delay, and the target delay above it
follows a high quantile of the rest, as libwebrtc's NetEQ does, never below
one frame. Until 40 packets have come the quantile counts the ones not yet
seen as on time (a prior, as NetEQ starts its delay histogram from one), so
that the largest transit is left out: the 95th percentile of a few packets
is their maximum, and one packet held up by a start (a first encode, a
capture backlog, a busy loop) set the first talk spurt's delay. Only the
largest: a start that is jittery throughout still raises the target.

Playout runs ``target`` behind the fastest packet: when it falls behind
(the network calmed, the window forgot the jitter) it catches up by dropping
frames of silence, or speech only when far behind; when it runs ahead, or a
packet is a little late, it holds back by stretching silence or concealment.
A missing frame is rebuilt from the next packet's in-band FEC when that
packet is there, or concealed; playout then moves on, so one loss never
stalls it.

DTX: the sender's sequence numbers stay consecutive across a silence while its
timestamps jump, so a gap in timestamps alone is silence, not loss. So does a
sender whose capture stalled in mid-speech; playout, which concealed and
counted those frames lost meanwhile, takes up its numbers again.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from ..seqnum import Unwrapper
from .opus import FRAME_SAMPLES, SAMPLE_RATE

__all__ = ["JitterBuffer", "JitterStats", "Playout", "PlayoutKind"]

_FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


class PlayoutKind(Enum):
    """What the decoder should produce for one frame."""

    NORMAL = "normal"
    """Decode ``payload``."""
    FEC = "fec"
    """The frame was lost: decode it from ``payload``'s (the next packet's) FEC."""
    CONCEAL = "conceal"
    """The frame is missing or late: Opus PLC."""
    SILENCE = "silence"
    """Nothing to play (before the first packet, during DTX, idle stream)."""


@dataclass(frozen=True, slots=True)
class Playout:
    """One frame's decision. ``payload`` is set for ``NORMAL`` and ``FEC``."""

    kind: PlayoutKind
    payload: bytes | None = None
    timestamp: int | None = None
    """Unwrapped 48 kHz timestamp of the frame played (``None`` for silence)."""
    arrival_s: float | None = None
    """When the played packet arrived (``NORMAL`` only), for delay stats."""
    voice: bool = False
    """The frame played is speech (its packet's V bit; for ``FEC``, the next
    packet's): lip sync follows the audio's delay only while someone speaks."""


@dataclass(slots=True)
class JitterStats:
    """Counters since the buffer started (frames of 20 ms unless named)."""

    received: int = 0
    duplicates: int = 0
    late: int = 0
    """Arrived after their frame was played or concealed."""
    lost: int = 0
    """Sequence numbers never played: concealed or recovered by FEC."""
    played: int = 0
    concealed: int = 0
    fec_recovered: int = 0
    accelerated: int = 0
    """Frames dropped to shrink the delay (silence first)."""
    stretched: int = 0
    """Frames of silence or concealment inserted to grow the delay."""
    delays_ms: deque[float] = field(default_factory=lambda: deque(maxlen=500))
    """Time each of the last 500 played packets waited in the buffer,
    milliseconds."""


@dataclass(slots=True)
class _Entry:
    seq: int
    timestamp: int
    payload: bytes
    voice: bool
    arrival_s: float


class JitterBuffer:
    """One speaker's packets in, one playout decision per 20 ms out.

    ``window_s``: how much arrival history the delay estimate looks at (it
    shrinks back that long after the jitter ends); ``quantile``: share of
    packets that should arrive in time; ``min_delay_s``, ``max_delay_s``:
    bounds of the target; ``idle_s``: silence after which the speaker counts
    as paused; ``max_expand_frames``: how many frames of concealment playout
    waits for a packet that is behind schedule before it counts it lost;
    ``prior_packets``: until the window holds that many arrivals, the
    quantile counts the missing ones as having come at the base delay.
    """

    def __init__(
        self,
        *,
        window_s: float = 4.0,
        quantile: float = 0.95,
        min_delay_s: float = 0.02,
        max_delay_s: float = 0.4,
        idle_s: float = 0.3,
        max_expand_frames: int = 3,
        prior_packets: int = 40,
    ) -> None:
        self.window_s = window_s
        self.quantile = quantile
        self.min_delay_s = min_delay_s
        self.max_delay_s = max_delay_s
        self.idle_s = idle_s
        self.max_expand_frames = max_expand_frames
        self.prior_packets = prior_packets
        self.sync_delay_s: float | None = None
        """Lip sync's wish (:attr:`AvSync.audio_delay_wanted_s`): capture to
        play, on the transit scale (arrival clock less media time); the
        target rises to meet it, within ``max_delay_s``, taking the time in
        silence and concealment as for jitter. None: no wish."""
        self._expanded = 0
        self.stats = JitterStats()
        self._seq = Unwrapper(16)
        self._ts = Unwrapper(32)
        self._packets: dict[int, _Entry] = {}
        self._transits: deque[tuple[float, float]] = deque()
        self._sorted: list[float] = []
        self._next_seq: int | None = None
        self._play_ts: int | None = None
        self._last_voice = False
        self._last_arrival_s = 0.0

    # -- input ---------------------------------------------------------------------

    def push(
        self,
        seq: int,
        timestamp: int,
        payload: bytes | memoryview,
        voice: bool,
        now: float,
    ) -> None:
        """Take a packet (16-bit ``seq``, 32-bit 48 kHz ``timestamp``) that
        arrived at ``now`` (seconds)."""
        useq = self._seq.unwrap(seq)
        uts = self._ts.unwrap(timestamp)
        self.stats.received += 1
        self._last_arrival_s = now
        self._note_transit(now - uts / SAMPLE_RATE, now)
        if useq in self._packets:
            self.stats.duplicates += 1
            return
        if self._next_seq is not None and uts < (self._play_ts or 0):
            self.stats.late += 1
            return
        if self._next_seq is not None and useq < self._next_seq:
            # Still ahead of playout in time, but playout already counted its
            # sequence number: the sender stalled during speech (numbers
            # stop, timestamps jump) while playout concealed and moved on.
            # Follow the sender's numbers again, or every packet from here
            # on would count as late.
            self._next_seq = useq
        self._packets[useq] = _Entry(useq, uts, bytes(payload), voice, now)

    def _note_transit(self, transit: float, now: float) -> None:
        self._transits.append((now, transit))
        bisect.insort(self._sorted, transit)
        while self._transits and now - self._transits[0][0] > self.window_s:
            _, old = self._transits.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    # -- estimate --------------------------------------------------------------------

    @property
    def target_delay_s(self) -> float:
        """Delay above the fastest packet that playout aims for (seconds)."""
        if not self._sorted:
            return self.min_delay_s
        count = len(self._sorted)
        unseen = max(0, self.prior_packets - count)
        index = int(self.quantile * (count + unseen)) - unseen
        index = min(count - 1, max(0, index))
        jitter = self._sorted[index] - self._sorted[0]
        target = max(self.min_delay_s, min(self.max_delay_s, jitter + _FRAME_S / 2))
        if self.sync_delay_s is not None:
            synced = min(self.max_delay_s, self.sync_delay_s - self._sorted[0])
            target = max(target, synced)
        return target

    def _lag_frames(self, now: float) -> float:
        """How far playout is behind its schedule, in frames (negative: ahead)."""
        assert self._play_ts is not None
        ideal_ts = (now - self._sorted[0] - self.target_delay_s) * SAMPLE_RATE
        return (ideal_ts - self._play_ts) / FRAME_SAMPLES

    # -- output ----------------------------------------------------------------------

    def pop(self, now: float) -> Playout:
        """The decision for the frame to play at ``now`` (call every 20 ms)."""
        if self._play_ts is None:
            return self._start(now)
        lag = self._lag_frames(now)
        entry = self._packets.get(self._next_seq)  # type: ignore[arg-type]
        if entry is not None and entry.timestamp == self._play_ts:
            return self._play_in_time(entry, lag, now)
        later = self._earliest()
        if later is None:
            return self._underrun(now, lag)
        assert self._next_seq is not None
        if later.seq == self._next_seq:
            return self._silence_gap(later, lag, now)
        return self._loss(later)

    def _start(self, now: float) -> Playout:
        first = self._earliest()
        if first is None or now - first.arrival_s < self.target_delay_s - 1e-9:
            return Playout(PlayoutKind.SILENCE)
        self._next_seq = first.seq
        self._play_ts = first.timestamp
        return self._play_in_time(first, 0.0, now)

    def _play_in_time(self, entry: _Entry, lag: float, now: float) -> Playout:
        # Behind schedule: skip silence at once, speech only when far behind.
        while lag >= 1.0:
            following = self._packets.get(entry.seq + 1)
            if following is None or following.timestamp != entry.timestamp + (
                FRAME_SAMPLES
            ):
                break
            if entry.voice and lag < 6.0:
                break
            self._discard(entry)
            self.stats.accelerated += 1
            entry, lag = following, lag - 1.0
        return self._play(entry, now)

    def _play(self, entry: _Entry, now: float) -> Playout:
        self._expanded = 0
        self._discard(entry)
        self._last_voice = entry.voice
        self.stats.played += 1
        self.stats.delays_ms.append((now - entry.arrival_s) * 1000.0)
        return Playout(
            PlayoutKind.NORMAL,
            entry.payload,
            entry.timestamp,
            entry.arrival_s,
            entry.voice,
        )

    def _discard(self, entry: _Entry) -> None:
        del self._packets[entry.seq]
        self._next_seq = entry.seq + 1
        self._play_ts = entry.timestamp + FRAME_SAMPLES

    def _silence_gap(self, later: _Entry, lag: float, now: float) -> Playout:
        """DTX: no frames were sent between the last one and ``later``."""
        assert self._play_ts is not None
        if lag <= -1.0:
            self.stats.stretched += 1
            return Playout(PlayoutKind.SILENCE)
        skip = max(1, int(lag)) * FRAME_SAMPLES
        self._play_ts = min(later.timestamp, self._play_ts + skip)
        if self._play_ts == later.timestamp:
            return self._play(later, now)
        return Playout(PlayoutKind.SILENCE)

    def _loss(self, later: _Entry) -> Playout:
        """Sequence numbers are missing before ``later``: recover or conceal one."""
        assert self._next_seq is not None and self._play_ts is not None
        lost_ts = self._play_ts
        self._expanded = 0
        self.stats.lost += 1
        self._next_seq += 1
        self._play_ts += FRAME_SAMPLES
        if later.seq == self._next_seq and later.timestamp == self._play_ts:
            self.stats.fec_recovered += 1
            return Playout(PlayoutKind.FEC, later.payload, lost_ts, voice=later.voice)
        self.stats.concealed += 1
        return Playout(PlayoutKind.CONCEAL, None, lost_ts)

    def _underrun(self, now: float, lag: float) -> Playout:
        """Nothing buffered: the next packet is late, lost, or not sent (DTX)."""
        assert self._play_ts is not None and self._next_seq is not None
        if now - self._last_arrival_s > self.idle_s or not self._last_voice:
            # Silence: the sender stopped (DTX or gone); hold the timeline.
            return Playout(PlayoutKind.SILENCE)
        if lag < 0.0 or self._expanded < self.max_expand_frames:
            # Ahead of schedule, or only just behind: the packet is probably
            # late rather than lost, so conceal and wait for it (the delay
            # grows by a frame, given back later in silence), as NetEQ expands.
            self._expanded += 1
            self.stats.stretched += 1
            self.stats.concealed += 1
            return Playout(PlayoutKind.CONCEAL)
        lost_ts = self._play_ts
        self.stats.lost += 1
        self.stats.concealed += 1
        self._next_seq += 1
        self._play_ts += FRAME_SAMPLES
        return Playout(PlayoutKind.CONCEAL, None, lost_ts)

    def _earliest(self) -> _Entry | None:
        if not self._packets:
            return None
        return self._packets[min(self._packets)]
