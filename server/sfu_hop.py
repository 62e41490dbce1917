"""The SFU → one connection hop: what the SFU queues to a member, what it
keeps to answer that member's NACKs, and which of its video it drops.

One :class:`Hop` per member connection. It numbers the datagrams of the hop
(the per-hop transport sequence), puts audio ahead of video and repairs
(retransmissions) ahead of video sent for the first time in the connection's
datagram queue (a repair is already late; behind a keyframe's datagrams it
would wait the keyframe's whole sending time), keeps the video it sent in a
:class:`~codec.media.recovery.RetransmitCache`, and when the member's path is
too slow drops whole video frames of a track until its next keyframe rather
than scattered datagrams (:meth:`Hop.admit_video`).

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
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from codec.media.adapt import ArrivalRecorder, ForwardedPath
from codec.media.packet import PacketKind, ProbePacket
from codec.media.recovery import (
    REPAIR_COPIES,
    REPEAT_WINDOW_S,
    RetransmitCache,
    frame_wait_s,
)

from .quic_adapter import fast_datagram_path, pending_datagrams, smoothed_rtt
from .sfu_layers import SubscriberLayer

__all__ = ["DELAY_BUCKET_NAMES", "DROP_CAUSES", "Admission", "Hop"]

_U16 = struct.Struct(">H")
PROBE_HEADER_SIZE = 4
"""Bytes of a probe datagram before its padding."""
_RTT_REFRESH_S = 0.5
_DEFAULT_RTT_S = 0.1
_ENQUEUE_TIMES = 1024
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
    """The SFU → ``conn`` hop: transport sequence, queue, cache, drop state.

    ``max_queued`` (datagrams) and ``max_queue_delay`` (seconds) say when the
    connection's datagram queue is too long: aioquic never expires what it
    queues, so what waits longer than that is late.

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
    )

    def __init__(self, conn: Any, served: Callable[[float], float] = _as_is) -> None:
        self.conn = conn
        self.served = served
        self.quic = conn.quic
        self.pending = pending_datagrams(conn.quic)
        fast_datagram_path(conn.quic)
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

        aioquic sends from the head of its queue, so what waits is the last
        ``len(pending)`` datagrams queued: the oldest of them was queued that
        many queuings ago. (Unlike "time since the queue was last empty", this
        stays small on a long path whose window always holds a few back.)"""
        waiting = len(self.pending)
        if not waiting:
            return 0.0
        times = self.enqueued_at
        if not times:
            return 0.0
        return self.served(now) - times[-min(waiting, len(times))]

    def congested(self, now: float, max_queued: int, max_queue_delay: float) -> bool:
        """Whether the queue is too long to take another frame in time."""
        if len(self.pending) >= max_queued:
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
            self.delay_seen[
                next(i for i, b in enumerate(DELAY_BUCKETS_S) if delay < b)
            ] += 1
            if self.congested(now, max_queued, max_queue_delay):
                if track_id in dropping and not keyframe:
                    return Admission.DROP
                # A keyframe that finds no room is a frame dropped like the
                # first: the track needs another one (nothing else asks).
                dropping.add(track_id)
                self._count_drop(now, len(self.pending) >= max_queued)
                return Admission.DROP_FRAME
            if track_id in dropping:
                if not keyframe:
                    return Admission.DROP
                dropping.discard(track_id)
            if keyframe and self.queue_delay(now) <= max_queue_delay:
                # Only a keyframe that starts on a queue in time gets a grace:
                # one joining a late queue (admitted in an earlier grace)
                # renewing it let a slow path's queue wait seconds.
                self.keyframe_grace_until = now + KEYFRAME_GRACE_S
            return Admission.SEND
        if track_id in dropping:
            return Admission.DROP
        if track_id in self.joining:
            return Admission.NOT_YET
        if len(self.pending) >= 2 * max_queued:
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
    ) -> bytes:
        """Queue ``data`` with this hop's next transport sequence number; with
        ``first``, ahead of everything queued (audio goes before video); with
        ``repair`` (a retransmission), behind audio and earlier repairs but
        ahead of the video queued for the first time. Returns the datagram
        queued."""
        self.enqueued_at.append(self.served(now))
        seq = self.transport_seq
        self.transport_seq = (seq + 1) & 0xFFFF
        datagram = data[:2] + _U16.pack(seq) + data[4:]
        self.estimator.on_sent(seq, len(datagram), now)
        if first:
            self._insert_ahead_of_video(datagram)
        elif repair:
            self._insert_repair(datagram)
        else:
            self.quic.send_datagram_frame(datagram)
        self.transmit_soon()
        return datagram

    def send_probe(self, cluster_id: int, packet_bytes: int, now: float) -> None:
        """Queue one probe datagram of ``packet_bytes`` bytes of cluster
        ``cluster_id`` (8 bits) behind what is queued, numbered like media
        and recorded for the path's estimate (:mod:`server.sfu_probe`)."""
        self.enqueued_at.append(self.served(now))
        seq = self.transport_seq
        self.transport_seq = (seq + 1) & 0xFFFF
        datagram = ProbePacket(
            cluster_id, seq, packet_bytes - PROBE_HEADER_SIZE
        ).serialize()
        self.estimator.on_sent(seq, len(datagram), now, cluster_id)
        self.quic.send_datagram_frame(datagram)
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

    def send_control(self, data: bytes, now: float) -> None:
        """Queue a datagram that has no transport sequence (keyframe request,
        NACK) ahead of the media: it is small and urgent."""
        self._insert_ahead_of_video(data)
        self.enqueued_at.append(self.served(now))
        self.transmit_soon()
