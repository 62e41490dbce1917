"""The selective forwarding unit: media datagrams from each member to the others.

The SFU never decodes media. For each datagram it reads byte 0 (version and
kind) and the 32-bit track id, checks that the sending connection owns the
track, and hands every other member of the room its own copy with the per-hop
transport sequence number rewritten, the only change made (``docs/media.md``).
This is the hot path: a dict lookup per datagram, one copy per subscriber, one
``transmit`` per subscriber per loop iteration, no logging and no storage.
Everything else is counted.

Routes are rebuilt from the room's state by :meth:`Forwarder.set_room` whenever
members or tracks change, which is rare next to the packet rate.

aioquic's datagram queue is unbounded and never expires anything, so a
subscriber whose queue already holds ``max_queued`` datagrams, or has not been
empty for ``max_queue_delay`` seconds (its path is slower than what it is
sent), gets nothing more until it drains: late media is worse than lost media,
and the receiver asks for a keyframe. The queue empties at every transmit
while the congestion window allows, so "not empty since" bounds the age of
what waits in it.

Keyframe requests from subscribers are forwarded unchanged to the track's
publisher, at most one per track per ``keyframe_request_interval`` seconds
(the encoder rate-limits too, but this keeps N subscribers from costing the
publisher N datagrams). Feedback and probes are per hop and end here.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from codec.media.packet import MAX_MEDIA_PAYLOAD, VIDEO_HEADER_SIZE, PacketKind

from .quic_adapter import pending_datagrams

__all__ = ["MAX_FORWARDED_DATAGRAM", "Forwarder", "ForwarderStats"]

MAX_FORWARDED_DATAGRAM = VIDEO_HEADER_SIZE + MAX_MEDIA_PAYLOAD
"""Largest datagram forwarded (1,170 bytes). A bigger one would never fit an
aioquic packet of the default 1,200-byte size and would block the subscriber's
datagram queue for good, so it is dropped as malformed."""

_TRACK_ID = struct.Struct(">I")
_U16 = struct.Struct(">H")
_VERSION_1 = 1 << 6
# Byte 0 values of audio and video datagrams, any flags: forwarded to members.
_MEDIA_FIRST_BYTES = frozenset(
    _VERSION_1 | (kind << 3) | flags
    for kind in (PacketKind.AUDIO, PacketKind.VIDEO)
    for flags in range(8)
)
_KEYFRAME_REQUEST_FIRST_BYTE = _VERSION_1 | (PacketKind.KEYFRAME_REQUEST << 3)
_KEYFRAME_REQUEST_SIZE = 6
_PER_HOP_KINDS = frozenset((PacketKind.FEEDBACK, PacketKind.PROBE))


@dataclass(slots=True)
class ForwarderStats:
    """Counters since the server started (datagrams unless a name says otherwise)."""

    received: int = 0
    """Datagrams from any connection."""
    forwarded: int = 0
    """Copies handed to subscribers' connections."""
    dropped_not_member: int = 0
    """From a connection that is in no room."""
    dropped_foreign_track: int = 0
    """Media whose track id the sending connection does not own."""
    dropped_malformed: int = 0
    """Too short, too long, wrong version or a reserved kind."""
    dropped_queue_full: int = 0
    """Copies not sent because the subscriber's datagram queue was full or had
    not drained for ``max_queue_delay``."""
    keyframe_requests_forwarded: int = 0
    keyframe_requests_coalesced: int = 0
    """Keyframe requests absorbed by one already sent for the same track."""
    keyframe_requests_refused: int = 0
    """Keyframe requests for a track of another room, or one's own."""
    per_hop_received: int = 0
    """Feedback and probe datagrams, which end at the SFU."""

    def as_dict(self) -> dict[str, int]:
        return {f"sfu_{name}": getattr(self, name) for name in self.__slots__}


class _Hop:
    """The SFU → one connection hop: its transport sequence and its queue."""

    __slots__ = (
        "conn",
        "quic",
        "pending",
        "transmit_soon",
        "transport_seq",
        "busy_since",
    )

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.quic = conn.quic
        self.pending = pending_datagrams(conn.quic)
        self.transmit_soon: Callable[[], None] = conn.transmit_soon
        self.transport_seq = 0
        self.busy_since = 0.0
        """When a datagram was last queued into an empty queue (clock seconds)."""


class _Endpoint:
    """A member connection: the tracks it publishes and who receives them."""

    __slots__ = ("hop", "room", "routes", "last_keyframe_request")

    def __init__(self, hop: _Hop, room: object) -> None:
        self.hop = hop
        self.room = room
        self.routes: dict[int, tuple[_Hop, ...]] = {}
        self.last_keyframe_request: dict[int, float] = {}


class Forwarder:
    """Forwards the media datagrams of every room on this node.

    ``clock`` returns seconds (monotonic); ``max_queued`` (datagrams) and
    ``max_queue_delay`` (seconds) bound each subscriber's aioquic datagram
    queue; ``keyframe_request_interval`` is the shortest gap, in seconds,
    between keyframe requests forwarded for one track.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        max_queued: int = 128,
        max_queue_delay: float = 0.15,
        keyframe_request_interval: float = 0.1,
    ) -> None:
        self.clock = clock
        self.max_queued = max_queued
        self.max_queue_delay = max_queue_delay
        self.keyframe_request_interval = keyframe_request_interval
        self.stats = ForwarderStats()
        self._endpoints: dict[Any, _Endpoint] = {}
        self._track_owner: dict[int, _Endpoint] = {}

    # -- routes -----------------------------------------------------------------

    def set_room(
        self, room: object, members: Iterable[tuple[Any, Iterable[int]]]
    ) -> None:
        """Make ``members`` (connection, its track ids) the whole of ``room``:
        each connection's tracks go to every other member, and to nobody else."""
        listed = [(conn, tuple(track_ids)) for conn, track_ids in members]
        endpoints = []
        for conn, _ in listed:
            endpoint = self._endpoints.get(conn)
            if endpoint is None or endpoint.room is not room:
                if endpoint is not None:
                    self.remove(conn)
                hop = endpoint.hop if endpoint is not None else _Hop(conn)
                endpoint = self._endpoints[conn] = _Endpoint(hop, room)
            endpoints.append(endpoint)
        for endpoint, (_, track_ids) in zip(endpoints, listed, strict=True):
            others = tuple(e.hop for e in endpoints if e is not endpoint)
            for gone in endpoint.routes.keys() - set(track_ids):
                self._track_owner.pop(gone, None)
                endpoint.last_keyframe_request.pop(gone, None)
            endpoint.routes = dict.fromkeys(track_ids, others)
            for track_id in track_ids:
                self._track_owner[track_id] = endpoint

    def remove(self, conn: Any) -> None:
        """Forget ``conn``: its tracks stop and it receives nothing more."""
        endpoint = self._endpoints.pop(conn, None)
        if endpoint is None:
            return
        for track_id in endpoint.routes:
            if self._track_owner.get(track_id) is endpoint:
                del self._track_owner[track_id]

    def is_routed(self, conn: Any) -> bool:
        """Whether ``conn`` is a member of some room here."""
        return conn in self._endpoints

    # -- datagrams --------------------------------------------------------------

    def on_datagram(self, conn: Any, data: bytes) -> None:
        """Handle one datagram received from ``conn``."""
        stats = self.stats
        stats.received += 1
        endpoint = self._endpoints.get(conn)
        if endpoint is None:
            stats.dropped_not_member += 1
            return
        size = len(data)
        first = data[0] if size else 0
        if first not in _MEDIA_FIRST_BYTES or not 8 <= size <= MAX_FORWARDED_DATAGRAM:
            if first == _KEYFRAME_REQUEST_FIRST_BYTE and size == _KEYFRAME_REQUEST_SIZE:
                self._keyframe_request(endpoint, data)
            elif first >> 6 == 1 and (first >> 3) & 0b111 in _PER_HOP_KINDS:
                stats.per_hop_received += 1
            else:
                stats.dropped_malformed += 1
            return
        hops = endpoint.routes.get(_TRACK_ID.unpack_from(data, 4)[0])
        if hops is None:
            stats.dropped_foreign_track += 1
            return
        # aioquic takes only immutable bytes: one copy per subscriber, made by
        # joining the unchanged head and tail around its transport sequence.
        head = data[:2]
        tail = data[4:]
        pack_seq = _U16.pack
        max_queued = self.max_queued
        now = self.clock()
        oldest_allowed = now - self.max_queue_delay
        for hop in hops:
            pending = hop.pending
            if not pending:
                hop.busy_since = now
            elif len(pending) >= max_queued or hop.busy_since < oldest_allowed:
                stats.dropped_queue_full += 1
                continue
            seq = hop.transport_seq
            hop.transport_seq = (seq + 1) & 0xFFFF
            hop.quic.send_datagram_frame(head + pack_seq(seq) + tail)
            hop.transmit_soon()
            stats.forwarded += 1

    def _keyframe_request(self, requester: _Endpoint, data: bytes) -> None:
        stats = self.stats
        track_id = _TRACK_ID.unpack_from(data, 2)[0]
        publisher = self._track_owner.get(track_id)
        if (
            publisher is None
            or publisher is requester
            or publisher.room is not requester.room
        ):
            stats.keyframe_requests_refused += 1
            return
        now = self.clock()
        last = publisher.last_keyframe_request.get(track_id)
        if last is not None and now - last < self.keyframe_request_interval:
            stats.keyframe_requests_coalesced += 1
            return
        publisher.last_keyframe_request[track_id] = now
        hop = publisher.hop
        hop.quic.send_datagram_frame(data)
        hop.transmit_soon()
        stats.keyframe_requests_forwarded += 1

    def snapshot(self) -> dict[str, int]:
        """Counters and gauges, for the server's stats."""
        return {
            **self.stats.as_dict(),
            "sfu_connections": len(self._endpoints),
            "sfu_tracks": len(self._track_owner),
        }
