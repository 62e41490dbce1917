"""The SFU → one connection hop: what the SFU queues to a member, what it
keeps to answer that member's NACKs, and which of its video it drops.

One :class:`Hop` per member connection. Everything the SFU sends the member
leaves through the hop's pacer, its one egress point: audio and control
datagrams first, then repairs (retransmissions: a repair is already late;
behind a keyframe's datagrams it would wait the keyframe's whole sending
time), then video sent for the first time, released into the connection's
own datagram queue a few at a time, and at the pace of the path's estimate
while that estimate limits publishers. The hop numbers the datagrams (the
per-hop transport sequence) as it releases them, keeps the video it sent in
a :class:`~codec.media.recovery.RetransmitCache`, and when the member's path
is too slow drops whole video frames of a track until its next keyframe
rather than scattered datagrams (:meth:`Hop.admit_video`).

Congestion feedback runs per hop too: the hop's
:class:`~codec.media.adapt.ArrivalRecorder` records what the member sent the
SFU and reports it to the member (its pacer and estimate are on the other
end); the hop's :class:`~codec.media.adapt.ForwardedPath` reads the
member's feedback about what the SFU sent it, an estimate of the SFU →
member path that limits publishers once the path was cut.

aioquic's connection internals (its datagram queue, its round-trip estimate)
are reached through :mod:`server.quic_adapter`, from here only.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from codec.media.adapt import ArrivalRecorder, ForwardedPath
from codec.media.adapt.pacer import PACING_FACTOR, PacingBudget
from codec.media.packet import PacketKind, ProbePacket
from codec.media.recovery import (
    REPAIR_COPIES,
    REPEAT_WINDOW_S,
    RetransmitCache,
    frame_wait_s,
)

from .quic_adapter import fast_datagram_path, pending_datagrams, smoothed_rtt
from .sfu_layers import SubscriberLayer

__all__ = ["DELAY_BUCKET_NAMES", "DROP_CAUSES", "QUEUE_DEPTH", "Admission", "Hop"]

_U16 = struct.Struct(">H")
PROBE_HEADER_SIZE = 4
"""Bytes of a probe datagram before its padding."""
_RTT_REFRESH_S = 0.5
_DEFAULT_RTT_S = 0.1
_ENQUEUE_TIMES = 1024
_MIN_WAIT_S = 0.0005
"""The shortest wait the pacer's timer is armed for (seconds)."""
_VIDEO_FIRST_BYTES = frozenset(
    (1 << 6) | (PacketKind.VIDEO << 3) | flags for flags in range(8)
)
KEYFRAME_GRACE_S = 0.5
"""After a keyframe starts on a hop, how long (seconds) only the length of the
queue, not its delay, can drop frames: a keyframe is several times a frame and
delays the frames behind it while it drains; dropping them would throw the
keyframe away and ask for another, a spiral on a slow path."""
DELAY_BUCKETS_S = (0.05, 0.1, 0.15, float("inf"))
"""Upper bounds (seconds) of the queue delays counted at frame starts..."""
DELAY_BUCKET_NAMES = ("0_50ms", "50_100ms", "100_150ms", "over_150ms")
"""...and their names in the SFU's stats."""
DROP_CAUSES = ("length", "delay", "after_keyframe")
"""The keys of :attr:`Hop.drops`."""
QUEUE_DEPTH = 6
"""The most datagrams the hop keeps in the connection's own DATAGRAM queue;
the rest wait in the hop's pacer, where audio and repairs still go ahead of
them and their transport sequence is not yet given."""


def _as_is(now: float) -> float:
    """Served time for a caller that counts no wait for a CPU."""
    return now


class Admission(Enum):
    """What :meth:`Hop.admit_video` decided for one video datagram."""

    SEND = "send"
    DROP = "drop"
    """Part of a frame already dropped, or of a track dropping until a keyframe."""
    DROP_FRAME = "drop frame"
    """The first datagram of a frame the path has no room for: the frame and
    the track's frames up to its next keyframe are dropped."""
    NOT_YET = "not yet"
    """The rest of a frame that was under way when the member started to
    receive the track: it gets the track from the next frame's head."""


class Hop:
    """The SFU → ``conn`` hop: transport sequence, pacer, queue, cache, drop
    state.

    Everything the SFU sends the member leaves through the hop's pacer: three
    lanes (audio and control, repairs, video) released in that order into
    the connection's own DATAGRAM queue, which is kept to
    :data:`QUEUE_DEPTH` datagrams (the connection tops it up before each
    round of packets: :func:`~server.quic_adapter.fast_datagram_path`).
    While the path's estimate limits publishers the pacer also releases at
    :data:`~codec.media.adapt.pacer.PACING_FACTOR` times that estimate, with
    a burst of :data:`~codec.media.adapt.pacer.BURST_S` (:meth:`pace`; a
    loop timer, ``call_later``, releases what waits for the rate). A
    datagram gets its transport sequence number, and the estimate its send
    time, when it is released, so that what the member's feedback measures
    is the path, not the SFU's queue.

    ``max_queued`` (datagrams) and ``max_queue_delay`` (seconds) say when the
    hop's queue (the pacer's and the connection's) is too long: nothing in
    it expires, so what waits longer than that is late.

    ``served(now)`` turns a clock reading into served time: the clock less
    what the SFU's loop thread has waited for a CPU so far. A queue's wait is
    measured in served time, so that a server starved of CPU (its transmits
    and aioquic's pacing timers run late) does not read its own lateness as
    a slow path and drop frames the path would carry.
    """

    __slots__ = (
        "conn",
        "quic",
        "pending",
        "transmit_soon",
        "transport_seq",
        "enqueued_at",
        "cache",
        "dropping",
        "joining",
        "layers",
        "keyframe_grace_until",
        "recorder",
        "path",
        "estimator",
        "drops",
        "delay_seen",
        "served",
        "_repairs_queued",
        "_rtt_s",
        "_rtt_read_at",
        "depth",
        "clock",
        "call_later",
        "released",
        "waits",
        "repairs_expired",
        "_ahead",
        "_repairs",
        "_video",
        "_held",
        "_bucket",
        "_timer",
    )

    def __init__(
        self,
        conn: Any,
        served: Callable[[float], float] = _as_is,
        *,
        clock: Callable[[], float] | None = None,
        call_later: Callable[[float, Callable[[], None]], Any] | None = None,
        depth: int | None = None,
    ) -> None:
        self.conn = conn
        self.served = served
        self.quic = conn.quic
        self.pending = pending_datagrams(conn.quic)
        refilled = fast_datagram_path(conn.quic, self.refill)
        self.depth = depth if depth is not None or not refilled else QUEUE_DEPTH
        """The most datagrams kept in the connection's queue (None: no bound,
        for a connection that does not call :meth:`refill` before sending)."""
        self.clock = clock
        self.call_later = None if clock is None else call_later
        """Schedules the pacer's next release (without it, or a clock, the
        hop is never paced: nothing would release what waits)."""
        self.released = 0
        """Datagrams the pacer released into the connection's queue."""
        self.waits = 0
        """Times the pacing rate held datagrams back (the timer was armed)."""
        self.repairs_expired = 0
        """Repairs dropped in the pacer: they had waited longer than the whole
        retransmission budget, so could no longer arrive in time."""
        self._ahead: deque[tuple[bytes, bool]] = deque()
        """Audio (numbered on release) and control datagrams (not), in order."""
        self._repairs: deque[tuple[bytes, float]] = deque()
        """Repairs, each with the clock time after which it is too late."""
        self._video: deque[bytes] = deque()
        self._held = 0
        """Datagrams in the three lanes."""
        self._bucket: PacingBudget | None = None
        """The pacing rate's budget; None: not paced."""
        self._timer: Any = None
        self.transmit_soon: Callable[[], None] = conn.transmit_soon
        self.transport_seq = 0
        self.enqueued_at: deque[float] = deque(maxlen=_ENQUEUE_TIMES)
        """When the last datagrams were queued (served seconds), oldest first."""
        self.cache = RetransmitCache(
            copies=REPAIR_COPIES, min_interval_s=REPEAT_WINDOW_S
        )
        """The video sent on this hop, to answer the member's NACKs."""
        self.dropping: set[int] = set()
        """Video tracks whose frames are dropped until their next keyframe."""
        self.joining: set[int] = set()
        """Video tracks this member has just started to receive: forwarding
        starts at the next frame's first datagram, never mid-frame."""
        self.layers: dict[int, SubscriberLayer] = {}
        """Layered (simulcast) track id → the layer this member gets of it."""
        self.keyframe_grace_until = float("-inf")
        """Until when (clock seconds) the queue's delay is forgiven, after a
        keyframe (:data:`KEYFRAME_GRACE_S`)."""
        self.recorder = ArrivalRecorder()
        """What the member sent the SFU, for the feedback the SFU sends it."""
        self.path = ForwardedPath()
        """What the SFU → member path carries, from the member's feedback, and
        the limit it sets for publishers."""
        self.estimator = self.path.estimator
        self.drops = dict.fromkeys(DROP_CAUSES, 0)
        """Frames dropped (their first datagram) because the queue was too
        long, because it waited too long, and (of either) within a second of
        a keyframe starting on this hop: where the drops come from."""
        self.delay_seen = [0] * len(DELAY_BUCKETS_S)
        """How many frame starts found the queue's delay in each of
        :data:`DELAY_BUCKETS_S`."""
        self._repairs_queued: set[bytes] = set()
        """Repairs that may still wait at the head of the queue."""
        self._rtt_s = _DEFAULT_RTT_S
        self._rtt_read_at = float("-inf")

    def rtt_s(self, now: float) -> float:
        """The connection's smoothed round trip in seconds (read from aioquic
        at most every half second; 100 ms until it has a sample)."""
        if now - self._rtt_read_at >= _RTT_REFRESH_S:
            self._rtt_read_at = now
            rtt = smoothed_rtt(self.quic)
            if rtt is not None:
                self._rtt_s = rtt
                self.estimator.set_rtt(rtt)
        return self._rtt_s

    def queue_delay(self, now: float) -> float:
        """How long, in served seconds, the oldest datagram still queued has
        waited (a wait for a CPU is the server's, not the path's).

        The pacer and aioquic send from the heads of their queues, so what
        waits is the last :attr:`queued` datagrams queued: the oldest of them
        was queued that many queuings ago. (Unlike "time since the queue was
        last empty", this stays small on a long path whose window always
        holds a few back.)"""
        waiting = len(self.pending) + self._held
        if not waiting:
            return 0.0
        times = self.enqueued_at
        if not times:
            return 0.0
        return self.served(now) - times[-min(waiting, len(times))]

    @property
    def queued(self) -> int:
        """Datagrams waiting: in the pacer's lanes and the connection's queue."""
        return len(self.pending) + self._held

    def congested(self, now: float, max_queued: int, max_queue_delay: float) -> bool:
        """Whether the queue is too long to take another frame in time."""
        if len(self.pending) + self._held >= max_queued:
            return True
        if now < self.keyframe_grace_until:
            return False
        return self.queue_delay(now) > max_queue_delay

    def retransmit_budget_s(self, now: float) -> float:
        """How old (seconds since first sent) a packet may be and still reach
        the member before its frame's deadline. A repair waits only behind
        audio and earlier repairs, not behind the video queued."""
        return frame_wait_s(self.rtt_s(now))

    def admit_video(
        self,
        track_id: int,
        frame_start: bool,
        keyframe: bool,
        now: float,
        max_queued: int,
        max_queue_delay: float,
    ) -> Admission:
        """Decide on one video datagram of ``track_id``.

        Frames are taken or dropped whole: the decision is made at a frame's
        first datagram, and the rest follow it. A frame that finds the queue
        too long is dropped, with every frame of its track up to the next
        keyframe that finds room (the frames between could not be decoded); a
        keyframe that finds no room is a new :attr:`Admission.DROP_FRAME`.
        For :data:`KEYFRAME_GRACE_S` after a keyframe that started on a queue
        in time only the queue's length counts.
        """
        dropping = self.dropping
        if frame_start:
            self.joining.discard(track_id)
            delay = self.queue_delay(now)
            self.delay_seen[bisect_right(DELAY_BUCKETS_S, delay)] += 1
            # congested(), on the delay just read.
            if len(self.pending) + self._held >= max_queued or (
                now >= self.keyframe_grace_until and delay > max_queue_delay
            ):
                if track_id in dropping and not keyframe:
                    return Admission.DROP
                # A keyframe that finds no room is a frame dropped like the
                # first: the track needs another one (nothing else asks).
                dropping.add(track_id)
                self._count_drop(now, self.queued >= max_queued)
                return Admission.DROP_FRAME
            if track_id in dropping:
                if not keyframe:
                    return Admission.DROP
                dropping.discard(track_id)
            if keyframe and delay <= max_queue_delay:
                # Only a keyframe that starts on a queue in time gets a grace:
                # one joining a late queue (admitted in an earlier grace)
                # renewing it let a slow path's queue wait seconds.
                self.keyframe_grace_until = now + KEYFRAME_GRACE_S
            return Admission.SEND
        if track_id in dropping:
            return Admission.DROP
        if track_id in self.joining:
            return Admission.NOT_YET
        if len(self.pending) + self._held >= 2 * max_queued:
            # Far over: even the rest of an admitted frame cannot wait.
            dropping.add(track_id)
            self._count_drop(now, True)
            return Admission.DROP_FRAME
        return Admission.SEND

    def _count_drop(self, now: float, length: bool) -> None:
        drops = self.drops
        drops["length" if length else "delay"] += 1
        if now < self.keyframe_grace_until - KEYFRAME_GRACE_S + 1.0:
            drops["after_keyframe"] += 1

    def send(
        self, data: bytes, now: float, *, first: bool = False, repair: bool = False
    ) -> None:
        """Queue ``data`` in the pacer: with ``first`` (audio) ahead of
        everything but earlier audio and control datagrams; with ``repair``
        (a retransmission) behind those and earlier repairs but ahead of the
        video; else behind all. It gets the hop's next transport sequence
        number when it is released."""
        self.enqueued_at.append(self.served(now))
        if not (first or repair or self._held) and self._bucket is None:
            # Video, nothing waiting in the lanes and no pacing rate: what
            # _release would do at once, without the lanes (most of what a
            # meeting forwards takes this way).
            pending = self.pending
            depth = self.depth
            if depth is None or len(pending) < depth:
                pending.append(self._number(data, now))
                self.released += 1
                self.transmit_soon()
                return
        if first:
            self._ahead.append((data, True))
        elif repair:
            self._repairs.append((data, now + self.retransmit_budget_s(now)))
        else:
            self._video.append(data)
        self._held += 1
        if self._release(now):
            self.transmit_soon()

    def send_probe(self, cluster_id: int, packet_bytes: int, now: float) -> None:
        """Queue one probe datagram of ``packet_bytes`` bytes of cluster
        ``cluster_id`` (8 bits) behind what the connection has queued, numbered
        like media and recorded for the path's estimate
        (:mod:`server.sfu_probe`). Probes keep their cluster's own rate: they
        pass the pacer's lanes and rate."""
        self.enqueued_at.append(self.served(now))
        seq = self.transport_seq
        self.transport_seq = (seq + 1) & 0xFFFF
        datagram = ProbePacket(
            cluster_id, seq, packet_bytes - PROBE_HEADER_SIZE
        ).serialize()
        self.estimator.on_sent(seq, len(datagram), now, cluster_id)
        self.quic.send_datagram_frame(datagram)
        self.transmit_soon()

    def send_control(self, data: bytes, now: float) -> None:
        """Queue a datagram that has no transport sequence (keyframe request,
        NACK, feedback, rate limit) with the audio: it is small and urgent."""
        self.enqueued_at.append(self.served(now))
        self._ahead.append((data, False))
        self._held += 1
        if self._release(now):
            self.transmit_soon()

    # -- the pacer ----------------------------------------------------------------

    def pace(self, rate_bps: float | None, now: float) -> None:
        """Release at ``rate_bps`` x :data:`PACING_FACTOR` from ``now`` on
        (the path's estimate), or as fast as the connection sends (None: the
        path limits nobody). A hop without a timer is never paced."""
        bucket = self._bucket
        if rate_bps is None or rate_bps <= 0 or self.call_later is None:
            if bucket is None:
                return
            self._bucket = None
        else:
            rate = rate_bps * PACING_FACTOR / 8
            if bucket is None:
                # Paced from now on: the first burst has the whole allowance.
                self._bucket = bucket = PacingBudget(rate)
                bucket.refill(now)
                bucket.fill()
            elif rate == bucket.rate_Bps:
                return
            else:
                bucket.refill(now)
                bucket.rate_Bps = rate
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._release(now):
            self.transmit_soon()

    @property
    def pacing_bps(self) -> float | None:
        """The pacing rate in bits per second, None while not paced."""
        return None if self._bucket is None else self._bucket.rate_Bps * 8

    def refill(self, now: float) -> int:
        """Top the connection's queue up from the lanes, as far as its depth
        and the pacing rate allow (the connection calls this before each
        round of packets); how many datagrams were released."""
        return self._release(now)

    def stop(self) -> None:
        """The member left the room: what waits is dropped, the timer too."""
        self._ahead.clear()
        self._repairs.clear()
        self._video.clear()
        self._held = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release(self, now: float) -> int:
        held = self._held
        if not held:
            return 0
        depth = self.depth
        room = held if depth is None else min(held, depth - len(self.pending))
        if room <= 0:
            return 0
        bucket = self._bucket
        if bucket is not None:
            bucket.refill(now)
        ahead, repairs, video = self._ahead, self._repairs, self._video
        moved = 0
        while moved < room:
            if bucket is not None and bucket.budget <= 0:
                self._arm(bucket)
                break
            if ahead:
                data, numbered = ahead.popleft()
                if numbered:
                    data = self._number(data, now)
                self._insert_ahead_of_video(data)
            elif repairs:
                data, deadline = repairs.popleft()
                if now > deadline:
                    self.repairs_expired += 1
                    held -= 1
                    continue
                data = self._number(data, now)
                self._insert_repair(data)
            elif video:
                data = self._number(video.popleft(), now)
                self.pending.append(data)
            else:
                break
            if bucket is not None:
                bucket.budget -= len(data)
            moved += 1
        self._held = held - moved
        self.released += moved
        return moved

    def _number(self, data: bytes, now: float) -> bytes:
        seq = self.transport_seq
        self.transport_seq = (seq + 1) & 0xFFFF
        datagram = data[:2] + _U16.pack(seq) + data[4:]
        self.estimator.on_sent(seq, len(datagram), now)
        return datagram

    def _arm(self, bucket: PacingBudget) -> None:
        """Have the timer release what waits once the budget allows."""
        if self._timer is None and self.call_later is not None:
            self.waits += 1
            self._timer = self.call_later(
                max(bucket.wait_s(), _MIN_WAIT_S), self._on_timer
            )

    def _on_timer(self) -> None:
        self._timer = None
        assert self.clock is not None
        if self._release(self.clock()):
            self.transmit_soon()

    def _insert_ahead_of_video(self, data: bytes) -> None:
        """Queue ``data`` after what is already ahead of the video (earlier
        audio and control datagrams keep their order) and before any video."""
        pending = self.pending
        index = 0
        while index < len(pending) and pending[index][0] not in _VIDEO_FIRST_BYTES:
            index += 1
        pending.insert(index, data)

    def on_arrival(self, transport_seq: int, now: float) -> None:
        """A datagram numbered ``transport_seq`` came from the member; report
        what came when a report is due (arrivals drive it: a member that sends
        nothing needs no feedback)."""
        recorder = self.recorder
        recorder.on_packet(transport_seq, now)
        if recorder.due(now):
            for packet in recorder.feedback(now):
                self.send_control(packet.serialize(), now)

    def _insert_repair(self, data: bytes) -> None:
        """Queue ``data`` behind what is ahead of the video and the repairs
        already queued, ahead of the rest of the video."""
        pending = self.pending
        queued = self._repairs_queued
        still_queued = set()
        index = 0
        while index < len(pending):
            head = pending[index]
            if head in queued:
                still_queued.add(head)
            elif head[0] in _VIDEO_FIRST_BYTES:
                break
            index += 1
        # Repairs only ever wait in the head run: any not found there is sent.
        still_queued.add(data)
        self._repairs_queued = still_queued
        pending.insert(index, data)
