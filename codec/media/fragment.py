"""Splitting encoded video frames into datagrams and putting them back together.

The sender side is :func:`split_frame` (sizes balanced so no fragment is a runt)
and :class:`VideoPacketizer`, which stamps each fragment with the track's sequence
and frame counters. The receiver side is :class:`Reassembler`: pure, driven by
``push(packet, now)`` and ``expire(now)``, it returns events in frame order: a
:class:`CompletedFrame` for each frame whose fragments all arrived, and a
:class:`FramesLost` when it gives up on frames (the caller then asks for a
keyframe). :class:`codec.media.recovery.FrameBuffer` builds on it to wait for
retransmissions until a deadline in time.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ErrorCode, LocalProtocolError
from .packet import BASE_MEDIA_PAYLOAD, MAX_FRAGMENTS, MAX_MEDIA_PAYLOAD, VideoPacket
from .seqnum import Unwrapper

__all__ = [
    "BASE_MEDIA_PAYLOAD",
    "MAX_MEDIA_PAYLOAD",
    "CompletedFrame",
    "FramesLost",
    "ReassemblerStats",
    "ReassemblyEvent",
    "Reassembler",
    "VideoPacketizer",
    "split_frame",
]


def split_frame(data: bytes, max_payload: int = BASE_MEDIA_PAYLOAD) -> list[memoryview]:
    """Cut ``data`` into the fewest pieces of at most ``max_payload`` bytes
    (1 to :data:`MAX_MEDIA_PAYLOAD`), their sizes differing by at most one
    byte. The pieces are views into ``data``."""
    if not data:
        raise LocalProtocolError("cannot fragment an empty frame")
    if not 1 <= max_payload <= MAX_MEDIA_PAYLOAD:
        raise LocalProtocolError(
            f"fragments of {max_payload} bytes are outside 1..{MAX_MEDIA_PAYLOAD}",
            ErrorCode.INVALID_ARGUMENT,
        )
    count = -(-len(data) // max_payload)
    if count > MAX_FRAGMENTS:
        raise LocalProtocolError(
            f"frame of {len(data)} bytes needs {count} fragments, over {MAX_FRAGMENTS}",
            ErrorCode.TOO_LARGE,
        )
    view = memoryview(data)
    base, extra = divmod(len(data), count)
    pieces = []
    start = 0
    for index in range(count):
        end = start + base + (1 if index < extra else 0)
        pieces.append(view[start:end])
        start = end
    return pieces


class VideoPacketizer:
    """Turns the encoded frames of one video track into :class:`VideoPacket`\\ s.

    Keeps the track's 16-bit sequence and frame counters. Packets leave with
    transport sequence 0: the pacer assigns the real one when it sends each
    datagram (:func:`~codec.media.packet.rewrite_transport_seq`).
    """

    def __init__(self, track_id: int, first_seq: int = 0, first_frame: int = 0):
        self.track_id = track_id
        self._seq = first_seq & 0xFFFF
        self._frame = first_frame & 0xFFFF

    def packetize(
        self,
        data: bytes,
        timestamp: int,
        keyframe: bool,
        layer: int = 0,
        max_payload: int = BASE_MEDIA_PAYLOAD,
    ) -> list[VideoPacket]:
        """Fragment one encoded frame into fragments of at most ``max_payload``
        bytes (what the path and the room carry); ``timestamp`` is its 90 kHz
        capture time."""
        pieces = split_frame(data, max_payload)
        packets = []
        for index, piece in enumerate(pieces):
            packets.append(
                VideoPacket(
                    track_id=self.track_id,
                    seq=self._seq,
                    transport_seq=0,
                    timestamp=timestamp & 0xFFFFFFFF,
                    frame_number=self._frame,
                    fragment_index=index,
                    fragment_count=len(pieces),
                    keyframe=keyframe,
                    layer=layer,
                    payload=piece,
                )
            )
            self._seq = (self._seq + 1) & 0xFFFF
        self._frame = (self._frame + 1) & 0xFFFF
        return packets


@dataclass(frozen=True, slots=True)
class CompletedFrame:
    """A whole encoded frame, delivered in frame-number order."""

    frame_number: int
    """Unwrapped frame number (grows past 65535)."""
    timestamp: int
    """90 kHz media timestamp from the header (32 bits, wraps)."""
    keyframe: bool
    layer: int
    data: bytes
    first_arrival: float
    """``now`` when its first fragment arrived (caller's clock, seconds)."""
    completed_at: float
    """``now`` when its last fragment arrived (caller's clock, seconds)."""


@dataclass(frozen=True, slots=True)
class FramesLost:
    """Frames ``first .. first + count - 1`` will never be delivered: frames after
    them cannot be decoded until a keyframe arrives."""

    first: int
    """Unwrapped frame number of the first lost frame."""
    count: int


ReassemblyEvent = CompletedFrame | FramesLost


@dataclass(slots=True)
class ReassemblerStats:
    """Counters of a :class:`Reassembler` since it was created."""

    frames_completed: int = 0
    frames_dropped_incomplete: int = 0
    """Frames given up with some, not all, of their fragments."""
    frames_lost: int = 0
    """Frame numbers given up in total (incomplete or never seen at all)."""
    duplicate_packets: int = 0
    """Fragments already held, or of a frame already delivered."""
    late_packets: int = 0
    """Fragments of a frame that had already been given up."""
    tails_skipped: int = 0
    """Frames that were under way when reassembly started (their first
    fragment never came, before any frame was delivered): left out, and not
    counted lost; the track starts at the next frame."""
    inconsistent_packets: int = 0
    """Fragments whose count, timestamp, keyframe flag or layer contradict the
    first fragment seen of their frame."""


class _Partial:
    __slots__ = ("fragments", "received", "packet", "first_arrival", "last_arrival")

    def __init__(self, packet: VideoPacket, now: float) -> None:
        self.fragments: list[bytes | None] = [None] * packet.fragment_count
        self.received = 0
        self.packet = packet
        self.first_arrival = now
        self.last_arrival = now

    @property
    def complete(self) -> bool:
        return self.received == len(self.fragments)


class Reassembler:
    """Rebuilds the frames of one video track from its fragments. Pure.

    Frames come out in order. A frame that is missing or incomplete blocks the
    frames after it until ``timeout_s`` passes with no fragment of it arriving
    (counted from the arrival of a later frame when none of it was seen), or
    until a later keyframe is complete; then it is given up and reported by a
    :class:`FramesLost`, and the complete frames it blocked are delivered after
    that event. At most ``max_frames`` frames are held: a new frame beyond that
    forces the oldest gap to be given up. Call :meth:`expire` from the caller's
    timer (:meth:`next_deadline` says when).
    """

    def __init__(self, timeout_s: float = 0.15, max_frames: int = 16) -> None:
        self.timeout_s = timeout_s
        self.max_frames = max_frames
        self.stats = ReassemblerStats()
        self._unwrapper = Unwrapper(16)
        self._pending: dict[int, _Partial] = {}
        self._next: int | None = None
        self._started = False
        self._delivered: dict[int, None] = {}

    @property
    def frames_in_progress(self) -> int:
        """Frames held: incomplete, or complete but waiting behind a gap."""
        return len(self._pending)

    def push(self, packet: VideoPacket, now: float) -> list[ReassemblyEvent]:
        """Take one fragment; return the frames (and losses) it resolves."""
        number = self._unwrapper.unwrap(packet.frame_number)
        if self._next is None or (not self._started and number < self._next):
            self._next = number
        events: list[ReassemblyEvent] = []
        partial = self._pending.get(number)
        if partial is None:
            while len(self._pending) >= self.max_frames and number > min(self._pending):
                self._give_up_head(events)
                self._deliver_ready(events)
            if number < self._next or len(self._pending) >= self.max_frames:
                self._count_stale(number)
                return events
            partial = self._pending[number] = _Partial(packet, now)
        elif not _consistent(partial.packet, packet):
            self.stats.inconsistent_packets += 1
            return events
        if partial.fragments[packet.fragment_index] is not None:
            self.stats.duplicate_packets += 1
            return events
        partial.fragments[packet.fragment_index] = bytes(packet.payload)
        partial.received += 1
        partial.last_arrival = now
        self._drain(now, events)
        return events

    def expire(self, now: float) -> list[ReassemblyEvent]:
        """Give up on frames that have waited ``timeout_s``; return what that
        resolves (losses, and the complete frames they were blocking)."""
        events: list[ReassemblyEvent] = []
        self._drain(now, events)
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`expire` will next have work, or None if nothing waits."""
        if not self._pending:
            return None
        return self._head_deadline()

    def _count_stale(self, number: int) -> None:
        if number in self._delivered:
            self.stats.duplicate_packets += 1
        else:
            self.stats.late_packets += 1

    def _head_deadline(self) -> float:
        """When the frame at the delivery point is given up."""
        return self._stall_since() + self.timeout_s

    def _stall_since(self) -> float:
        assert self._next is not None
        head = self._pending.get(self._next)
        if head is not None:
            return head.last_arrival
        return min(p.first_arrival for p in self._pending.values())

    def _drain(self, now: float, events: list[ReassemblyEvent]) -> None:
        while self._pending:
            self._deliver_ready(events)
            if not self._pending:
                return
            keyframe_waiting = any(
                p.complete and p.packet.keyframe for p in self._pending.values()
            )
            # The same value as next_deadline(), so expire(next_deadline()) acts.
            if not keyframe_waiting and now < self._head_deadline():
                return
            self._give_up_head(events)

    def _deliver_ready(self, events: list[ReassemblyEvent]) -> None:
        assert self._next is not None
        while (head := self._pending.get(self._next)) is not None and head.complete:
            del self._pending[self._next]
            packet = head.packet
            events.append(
                CompletedFrame(
                    frame_number=self._next,
                    timestamp=packet.timestamp,
                    keyframe=packet.keyframe,
                    layer=packet.layer,
                    data=b"".join(head.fragments),  # type: ignore[arg-type]
                    first_arrival=head.first_arrival,
                    completed_at=head.last_arrival,
                )
            )
            self.stats.frames_completed += 1
            self._delivered[self._next] = None
            if len(self._delivered) > 4 * self.max_frames:
                del self._delivered[next(iter(self._delivered))]
            self._next += 1
            self._started = True

    def _give_up_head(self, events: list[ReassemblyEvent]) -> None:
        """Declare lost the gap at the delivery point: the one incomplete frame
        there, or the run of frames never seen up to the oldest one held (the
        tail of a frame under way when reassembly started is left out, not
        lost)."""
        assert self._next is not None
        head = self._pending.pop(self._next, None)
        if head is not None and not self._started and head.fragments[0] is None:
            # Only the tail of a frame sent before this receiver listened:
            # the stream starts after it, and nothing was lost.
            self.stats.tails_skipped += 1
            self._next += 1
            self._started = True
            return
        if head is not None:
            self.stats.frames_dropped_incomplete += 1
            count = 1
        else:
            count = min(self._pending) - self._next
        events.append(FramesLost(self._next, count))
        self.stats.frames_lost += count
        self._next += count
        self._started = True


def _consistent(first: VideoPacket, other: VideoPacket) -> bool:
    return (
        first.fragment_count == other.fragment_count
        and first.timestamp == other.timestamp
        and first.keyframe == other.keyframe
        and first.layer == other.layer
    )
