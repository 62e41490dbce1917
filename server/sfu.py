"""The selective forwarding unit: media datagrams from each member to the others.

The SFU never decodes media. For each datagram it reads byte 0 (version and
kind) and the 32-bit track id, checks that the sending connection owns the
track, and hands every other member of the room its own copy with the per-hop
transport sequence number rewritten, the only change made (``docs/media.md``).
This is the hot path: dict lookups per datagram, one copy per subscriber, one
``transmit`` per subscriber per loop iteration, no logging and no storage.
Everything else is counted.

Routes are rebuilt from the room's state by :meth:`Forwarder.set_room` whenever
members or tracks change, which is rare next to the packet rate.

Each hop repairs its own losses (:mod:`server.sfu_repair`): the SFU answers
subscribers' NACKs from its caches and NACKs publishers for what it missed;
what a publisher sends again is forwarded as a repair, ahead of the video
queued to a subscriber (behind its audio).

The queue policy per subscriber (:class:`~server.sfu_hop.Hop`): all the SFU
sends a member leaves through its hop's pacer (audio and control, then
repairs, then video; at the pace of the path's estimate while it limits
publishers; aioquic's own datagram queue kept to a few datagrams), and
nothing queued expires, so when a subscriber's queue holds ``max_queued``
datagrams, or its oldest datagram has waited ``max_queue_delay`` seconds,
its path is slower than what it is sent: the video frame that finds it so
is dropped whole, with its track's frames up to the next keyframe, and the
SFU asks the publisher for that keyframe. The wait leaves out the time the
SFU's loop thread waited for a CPU: a starved server transmits late
(aioquic's pacing timers fire late), and frames it dropped for that would
be lost on a path that carries them.

Keyframe requests from subscribers are forwarded to the track's publisher
unless one is already outstanding: sent less than
``keyframe_request_interval`` seconds ago and not yet answered by a keyframe,
so one loss never costs two keyframes however many ask. Feedback and probes
are per hop and end here: every audio, video and probe datagram from a member
is recorded by its hop, which reports them back to the member every 50 ms
(:meth:`~server.sfu_hop.Hop.on_arrival`); a member's feedback about what the
SFU sent it feeds that hop's estimate (:class:`~codec.media.adapt.ForwardedPath`).
While a subscriber's path is constrained, the SFU tells the publishers of the
video it receives the most they should send (a ``RateLimit`` datagram, every
half second): that subscriber's estimate shared among the tracks it receives.
For a single-layer track the slowest such subscriber sets the rate for
everyone; a large track is sent as simulcast layers instead, each subscriber
gets the layer its path fits, and the publisher is told which layers to
encode at what rate (:mod:`server.sfu_layers`); the weighing is
:mod:`server.sfu_weigh`'s.
"""

from __future__ import annotations

import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from codec.media import PacketError
from codec.media.feedback import parse_feedback
from codec.media.packet import (
    AUDIO_HEADER_SIZE,
    BASE_MEDIA_PAYLOAD,
    MAX_MEDIA_PAYLOAD,
    VIDEO_HEADER_SIZE,
    PacketKind,
)
from codec.media.recovery import (
    Arrival,
)

from .quic_adapter import set_media_rate
from .sfu_endpoint import Endpoint
from .sfu_hop import Admission, Hop
from .sfu_layers import route_layers
from .sfu_probe import ProbeSender
from .sfu_repair import answer_nack, ask_keyframe, nack_publisher
from .sfu_stats import ForwarderStats, count_drops, snapshot
from .sfu_weigh import Weigher

__all__ = [
    "BASE_FORWARDED_DATAGRAM",
    "MAX_FORWARDED_DATAGRAM",
    "Forwarder",
    "ForwarderStats",
]

MAX_FORWARDED_DATAGRAM = VIDEO_HEADER_SIZE + MAX_MEDIA_PAYLOAD
"""Largest datagram forwarded (1,422 bytes); a bigger one is malformed."""
BASE_FORWARDED_DATAGRAM = VIDEO_HEADER_SIZE + BASE_MEDIA_PAYLOAD
"""Largest datagram every member's connection carries (1,170 bytes, in a QUIC
packet of 1,200). A bigger one goes only to members whose connection has
confirmed a packet size that carries it (``conn.max_media_datagram``): in any
other, it would never fit a packet and would block the member's datagram queue
for good."""

_TRACK_ID = struct.Struct(">I")
_U16 = struct.Struct(">H")
_VERSION_1 = 1 << 6
_AUDIO_FIRST_BYTES = frozenset(
    _VERSION_1 | (PacketKind.AUDIO << 3) | f for f in range(8)
)
_VIDEO_FIRST_BYTES = frozenset(
    _VERSION_1 | (PacketKind.VIDEO << 3) | f for f in range(8)
)
_KEYFRAME_FLAG = 0b100
_SEQ_OFFSET = 8
_FRAGMENT_INDEX_OFFSET = 16
_KEYFRAME_REQUEST_FIRST_BYTE = _VERSION_1 | (PacketKind.KEYFRAME_REQUEST << 3)
_KEYFRAME_REQUEST_SIZE = 6
_NACK_FIRST_BYTE = _VERSION_1 | (PacketKind.NACK << 3)
_FEEDBACK_FIRST_BYTE = _VERSION_1 | (PacketKind.FEEDBACK << 3)
_PROBE_FIRST_BYTE = _VERSION_1 | (PacketKind.PROBE << 3)
_PROBE_HEADER_SIZE = 4
CPU_WAIT_READ_S = 0.001
"""How often (seconds) at most the loop thread's wait for a CPU is read."""


class Forwarder:
    """Forwards the media datagrams of every room on this node.

    ``clock`` returns seconds (monotonic); ``max_queued`` (datagrams) and
    ``max_queue_delay`` (seconds) bound each subscriber's queue (its
    hop's pacer and its connection's datagram queue);
    ``keyframe_request_interval`` is how long, in seconds, a keyframe request
    sent for a track absorbs the next ones while no keyframe came.
    ``cpu_wait`` returns how long (seconds, cumulative) the calling thread has
    waited for a CPU, None where unknown (:func:`server.monitor.cpu_wait`
    with a real clock); the queue's wait leaves that out. ``call_later(delay,
    callback)`` (the loop's) paces the probes of constrained subscriber
    paths (:mod:`server.sfu_probe`) and the hops' pacers.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        max_queued: int = 128,
        max_queue_delay: float = 0.15,
        keyframe_request_interval: float = 0.3,
        cpu_wait: Callable[[], float | None] | None = None,
        call_later: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        self.clock = clock
        self.call_later = call_later
        self.probes = None if call_later is None else ProbeSender(clock, call_later)
        """Sends the probes of constrained subscriber paths (none without a
        ``call_later`` to pace them with: their limits then grow only with
        what arrives)."""
        self.cpu_wait = cpu_wait
        self._waited = 0.0
        self._waited_read_at = float("-inf")
        self.max_queued = max_queued
        self.max_queue_delay = max_queue_delay
        self.keyframe_request_interval = keyframe_request_interval
        self.stats = ForwarderStats()
        self.endpoints: dict[Any, Endpoint] = {}
        """Member connection → what the SFU knows of it."""
        self._retired: Counter[str] = Counter()
        """What the hops of members gone counted of their frame drops."""
        self._track_owner: dict[int, Endpoint] = {}
        self.weigher = Weigher(self)

    def _served(self, now: float) -> float:
        """``now`` less what the loop thread has waited for a CPU so far (read
        at most once a millisecond: a reading costs a system call)."""
        if self.cpu_wait is not None and now - self._waited_read_at >= CPU_WAIT_READ_S:
            self._waited_read_at = now
            waited = self.cpu_wait()
            if waited is not None:
                self._waited = waited
        return now - self._waited

    # -- routes -----------------------------------------------------------------

    def set_room(
        self,
        room: object,
        members: Iterable[tuple[Any, Iterable[int]]],
        sizes: Mapping[int, tuple[int, int, float]] | None = None,
    ) -> None:
        """Make ``members`` (connection, its track ids) the whole of ``room``:
        each connection's tracks go to every other member, and to nobody else.
        ``sizes`` gives the announced width, height and frame rate of the
        video tracks: a large one is sent as simulcast layers."""
        sizes = sizes or {}
        listed = [(conn, tuple(track_ids)) for conn, track_ids in members]
        endpoints = []
        for conn, _ in listed:
            endpoint = self.endpoints.get(conn)
            if endpoint is None or endpoint.room is not room:
                if endpoint is not None:
                    self.remove(conn)
                hop = (
                    endpoint.hop
                    if endpoint is not None
                    else Hop(
                        conn,
                        self._served,
                        clock=self.clock,
                        call_later=self.call_later,
                    )
                )
                endpoint = self.endpoints[conn] = Endpoint(hop, room)
            endpoints.append(endpoint)
        in_room = {track_id for _, track_ids in listed for track_id in track_ids}
        for endpoint, (_, track_ids) in zip(endpoints, listed, strict=True):
            for gone in endpoint.views.keys() - in_room:
                del endpoint.views[gone]
            others = tuple(e.hop for e in endpoints if e is not endpoint)
            for gone in endpoint.routes.keys() - set(track_ids):
                self._track_owner.pop(gone, None)
                endpoint.keyframe_asked_at.pop(gone, None)
                endpoint.nacks.pop(gone, None)
                endpoint.weighed_at.pop(gone, None)
                endpoint.layered.pop(gone, None)
                for hop in endpoint.routes[gone]:
                    hop.joining.discard(gone)
                    hop.layers.pop(gone, None)
            for track_id in track_ids:
                # A member that starts to receive a track mid-frame would get
                # a frame without its head: it starts at the next frame.
                routed = endpoint.routes.get(track_id, ())
                for hop in others:
                    if hop not in routed:
                        hop.joining.add(track_id)
            endpoint.routes = dict.fromkeys(track_ids, others)
            route_layers(endpoint.layered, track_ids, others, sizes)
            for track_id in track_ids:
                self._track_owner[track_id] = endpoint

    def remove(self, conn: Any) -> None:
        """Forget ``conn``: its tracks stop and it receives nothing more."""
        endpoint = self.endpoints.pop(conn, None)
        if endpoint is None:
            return
        count_drops(self._retired, endpoint.hop)
        endpoint.hop.stop()
        set_media_rate(endpoint.hop.quic, 0)
        if self.probes is not None:
            self.probes.remove(endpoint.hop)
        for track_id in endpoint.routes:
            if self._track_owner.get(track_id) is endpoint:
                del self._track_owner[track_id]

    def set_view(self, conn: Any, track_id: int, width: int, height: int) -> None:
        """``conn`` shows ``track_id`` at most ``width`` x ``height`` pixels
        (0 x 0: no limit): it gets no larger simulcast layer than that needs
        (:func:`~codec.media.simulcast.layer_for_view`), from the next
        weighing on. The caller checked the sizes and that the track is
        another member's video in the same room."""
        endpoint = self.endpoints.get(conn)
        if endpoint is None:
            return
        if width <= 0 or height <= 0:
            endpoint.views.pop(track_id, None)
        else:
            endpoint.views[track_id] = (width, height)
        owner = self._track_owner.get(track_id)
        if owner is not None and track_id in owner.weighed_at:
            owner.weighed_at[track_id] = float("-inf")

    def is_routed(self, conn: Any) -> bool:
        """Whether ``conn`` is a member of some room here."""
        return conn in self.endpoints

    # -- datagrams --------------------------------------------------------------

    def on_datagram(self, conn: Any, data: bytes) -> None:
        """Handle one datagram received from ``conn``."""
        stats = self.stats
        stats.received += 1
        endpoint = self.endpoints.get(conn)
        if endpoint is None:
            stats.dropped_not_member += 1
            return
        size = len(data)
        first = data[0] if size else 0
        if first in _VIDEO_FIRST_BYTES and VIDEO_HEADER_SIZE < size:
            video = True
        elif first in _AUDIO_FIRST_BYTES and AUDIO_HEADER_SIZE <= size:
            video = False
        else:
            self._other(endpoint, first, data)
            return
        if size > MAX_FORWARDED_DATAGRAM:
            stats.dropped_malformed += 1
            return
        now = self.clock()
        self._arrived(endpoint.hop, data, now)
        track_id = _TRACK_ID.unpack_from(data, 4)[0]
        hops = endpoint.routes.get(track_id)
        if hops is None:
            stats.dropped_foreign_track += 1
            return
        if size > BASE_FORWARDED_DATAGRAM:
            hops = self._carrying(hops, size)
        if not video:
            for hop in hops:
                if hop.queued >= 2 * self.max_queued:
                    stats.dropped_queue_full += 1
                    continue
                hop.send(data, now, first=True)
                stats.forwarded += 1
            return
        layer = data[1] >> 4
        published = endpoint.layered.get(track_id)
        if layer > (0 if published is None else published.top):
            stats.dropped_unknown_layer += 1
            return
        seq = _U16.unpack_from(data, _SEQ_OFFSET)[0]
        frame_start = _U16.unpack_from(data, _FRAGMENT_INDEX_OFFSET)[0] == 0
        keyframe = bool(first & _KEYFRAME_FLAG)
        if keyframe and frame_start:
            stats.keyframes_forwarded += 1
            endpoint.keyframe_asked_at.pop(track_id | layer << 32, None)
        arrival = nack_publisher(
            stats, endpoint.hop, endpoint.nacks, track_id, seq, now, layer
        )
        if arrival is Arrival.OLD:
            stats.dropped_duplicate += 1
            return
        repair = arrival is Arrival.FILLED
        self.weigher.weigh(endpoint, track_id, hops, now)
        max_queued = self.max_queued
        max_delay = self.max_queue_delay
        send = Admission.SEND
        for hop in hops:
            out, out_seq = data, seq
            if published is not None:
                # Simulcast: the layer this subscriber gets, renumbered.
                chosen = hop.layers[track_id].forward(
                    data, layer, frame_start, keyframe
                )
                if chosen is None:
                    continue
                out = chosen
                out_seq = _U16.unpack_from(out, _SEQ_OFFSET)[0]
            admission = hop.admit_video(
                track_id, frame_start, keyframe, now, max_queued, max_delay
            )
            if admission is send:
                hop.send(out, now, repair=repair)
                hop.cache.put(track_id, out_seq, out, now)
                stats.forwarded += 1
                continue
            if admission is Admission.NOT_YET:
                stats.skipped_joining += 1
                continue
            stats.dropped_queue_full += 1
            stats.frames_dropped += frame_start
            if admission is Admission.DROP_FRAME:
                self.ask_keyframe(endpoint, track_id, now, layer)

    def _carrying(self, hops: tuple[Hop, ...], size: int) -> tuple[Hop, ...]:
        """The hops whose connection carries a datagram of ``size`` bytes."""
        fit = tuple(h for h in hops if h.conn.max_media_datagram >= size)
        self.stats.dropped_too_large += len(hops) - len(fit)
        return fit

    def _other(self, endpoint: Endpoint, first: int, data: bytes) -> None:
        """A datagram that is not media to forward."""
        size = len(data)
        if first == _KEYFRAME_REQUEST_FIRST_BYTE and size == _KEYFRAME_REQUEST_SIZE:
            self._keyframe_request(endpoint, data)
        elif first == _NACK_FIRST_BYTE:
            answer_nack(self.stats, endpoint.hop, data, self.clock(), self.max_queued)
        elif first == _FEEDBACK_FIRST_BYTE:
            self.stats.per_hop_received += 1
            self._feedback(endpoint, data)
        elif first == _PROBE_FIRST_BYTE and size >= _PROBE_HEADER_SIZE:
            self.stats.per_hop_received += 1
            self._arrived(endpoint.hop, data, self.clock())
        else:
            self.stats.dropped_malformed += 1

    # -- congestion feedback ----------------------------------------------------

    def _arrived(self, hop: Hop, data: bytes, now: float) -> None:
        """Record a datagram's transport sequence number for the hop's feedback."""
        sent = hop.recorder.feedback_sent
        hop.on_arrival(_U16.unpack_from(data, 2)[0], now)
        self.stats.feedback_sent += hop.recorder.feedback_sent - sent

    def _feedback(self, endpoint: Endpoint, data: bytes) -> None:
        """A member's feedback about what the SFU sent it."""
        try:
            feedback = parse_feedback(memoryview(data))
        except PacketError:
            self.stats.dropped_malformed += 1
            return
        now = self.clock()
        hop = endpoint.hop
        path = hop.path
        probed_at = path.probed_at
        further = path.on_feedback(feedback, now)
        self.stats.feedback_read += 1
        # The connection's window makes room for what the estimate of this
        # path lets the SFU send it (as a client's hop does for its own):
        # else, after a drop, the window's own back-offs hold the media at a
        # fraction of what the estimate found the path carries.
        set_media_rate(hop.quic, path.estimator.target_bps)
        # Its pacer releases at the estimate's pace while the path limits
        # publishers, as fast as the connection sends once it limits nobody.
        hop.pace(
            None if path.limit_bps(now) is None else path.estimator.target_bps, now
        )
        if self.probes is None:
            return
        if not path.estimator.probes.clusters_sent:
            # The first probe as soon as the member reports anything: until
            # it returns, its simulcast layers start low.
            further = further + path.probes(now)
        if further:
            self.probes.add(hop, further, now)
        if path.probed_at != probed_at:
            # A probe returned: the layers this member gets are chosen again
            # at their next datagram, not up to half a second later.
            for track_id in hop.layers:
                owner = self._track_owner.get(track_id)
                if owner is not None and track_id in owner.weighed_at:
                    owner.weighed_at[track_id] = float("-inf")

    # -- keyframes --------------------------------------------------------------

    def _keyframe_request(self, requester: Endpoint, data: bytes) -> None:
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
        # A subscriber of a layered track needs the layer it gets (or will).
        chosen = requester.hop.layers.get(track_id)
        layer = 0 if chosen is None else chosen.layer
        self.ask_keyframe(publisher, track_id, self.clock(), layer)

    def ask_keyframe(
        self, publisher: Endpoint, track_id: int, now: float, layer: int = 0
    ) -> None:
        """Ask ``publisher`` for a keyframe of ``track_id``'s spatial
        ``layer`` unless a request is already outstanding."""
        ask_keyframe(
            self.stats,
            publisher.hop,
            publisher.keyframe_asked_at,
            track_id | layer << 32,
            now,
            self.keyframe_request_interval,
        )

    def snapshot(self) -> dict[str, int]:
        """Counters and gauges, for the server's stats."""
        return {
            **snapshot(
                self.stats,
                self._retired,
                self.endpoints.values(),
                len(self._track_owner),
            ),
            "sfu_probe_clusters_sent": 0
            if self.probes is None
            else self.probes.clusters_sent,
        }
