"""The media of one meeting for one session: local tracks out, remote media in.

A :class:`Call` follows ``session.rooms``: for every remote video track the room
announces it runs a :class:`~client.media.receiver.VideoReceiver`, and stops it
(threads, timers, sink streams) the moment the track or its member goes; audio
goes to :attr:`Call.audio` (:class:`~client.media.audio_call.AudioCall`). It
dispatches the datagrams the connection receives (media to receivers, keyframe
requests and NACKs to local senders, feedback to the hop), sends every media
datagram through the hop's pacer (:class:`~client.media.hop.MediaHop`, which
numbers them with the hop's transport sequence and keeps video in a retransmit
cache to answer the SFU's NACKs while a retransmission can still arrive in
time), shares the hop's bandwidth estimate among the local tracks, and
re-announces its tracks when the server dropped them (after the session moved
to a new connection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from codec.media import (
    NO_LIMIT_BPS,
    AudioPacket,
    FeedbackPacket,
    KeyframeRequest,
    NackPacket,
    PacketError,
    ProbePacket,
    RateLimit,
    VideoPacket,
    parse_packet,
)
from codec.media.nack import nack_packets
from codec.media.recovery import REPAIR_COPIES, frame_wait_s
from codec.messages import MuteRequested, RoomLeft, RoomState, RoomUpdated
from codec.messages.rooms import TrackKind

from ..errors import ClientError
from ..rooms import RoomEvent
from .audio_call import AudioCall
from .audio_sinks import AudioSink
from .hop import MediaHop
from .receiver import FrameConsumer, VideoReceiver
from .sender import VideoSender
from .sources import VideoSource
from .views import TrackViews

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["Call"]

log = logging.getLogger("quicmeet.media")

MAX_QUEUED_DATAGRAMS = 64
"""Datagrams allowed to wait in aioquic's queue before a control datagram
(NACK, keyframe request) is dropped; media waits in the pacer instead."""
_CONTROL_HEADROOM = 64
AUDIO_RESERVE_BPS = 48_000
"""What the estimate keeps for a microphone track (Opus at 32 kbit/s and its
headers) before video shares the rest."""
SCREEN_WEIGHT = 2.0
"""A screen track gets this many shares of the video budget to a camera's one:
text must stay sharp."""
MIN_VIDEO_BUDGET_BPS = 30_000
LIMIT_TIMELINE_LENGTH = 1200
"""Rate limits the stats keep: ten minutes of one every half second."""
RATE_LIMIT_TTL_S = 2.0
"""A rate limit from the SFU holds this long (seconds) unless repeated (the SFU
repeats it every half second while a subscriber's path needs it)."""


def _limit_or_none(bps: int) -> int | None:
    """A rate limit as the stats show it: None for "no limit"."""
    return None if bps == NO_LIMIT_BPS else bps


class Call:
    """Sends local video into the session's room and receives the room's video.

    ``consumers`` (sinks) get every rendered picture of every remote track.
    Create it inside the event loop, :meth:`start` it once in a room (or before:
    it follows joins), :meth:`publish_video` sources, :meth:`close` at the end.
    """

    def __init__(
        self,
        session: Session,
        consumers: Sequence[FrameConsumer] = (),
        *,
        max_queued_datagrams: int = MAX_QUEUED_DATAGRAMS,
        audio_sink: AudioSink | None = None,
        view: tuple[int, int] | None = None,
    ) -> None:
        self.session = session
        self.rooms = session.rooms
        self.consumers = list(consumers)
        self.max_queued_datagrams = max_queued_datagrams
        self.left: RoomLeft | None = None
        """Why we are no longer in the room, once that happened."""
        self.mute_requests = 0
        self.datagrams_malformed = 0
        self.datagrams_unknown_track = 0
        self.datagrams_unknown_layer = 0
        """Rate limits for a spatial layer the track does not have."""
        self._loop = asyncio.get_running_loop()
        self._senders: dict[str, VideoSender] = {}
        self._receivers: dict[int, VideoReceiver] = {}
        self._ended: list[VideoReceiver] = []
        self.hop = MediaHop(self.rooms, self._loop)
        """The hop to the SFU: pacer, bandwidth estimate, feedback."""
        self.hop.on_estimate = self._share_estimate
        self.hop.on_frame_dropped = self._frame_dropped
        self._limits: dict[int, tuple[int, float]] = {}
        """Track id → (most bits per second, when) the SFU last asked for."""
        self.limit_timeline: deque[tuple[float, int, int]] = deque(
            maxlen=LIMIT_TIMELINE_LENGTH
        )
        """(Unix time in seconds, track id, bits per second) of every rate
        limit received: the limit over time."""
        self._republishing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._unlisten = lambda: None
        self.views = TrackViews(self.rooms, self._loop, self._spawn, view)
        """How large each remote video track is shown (``view``: every
        track's default, None: no limit), told to the server."""
        self.audio = AudioCall(self.rooms, self._loop, self._send_audio, audio_sink)
        """Local audio, every speaker's audio, mute and the active speaker."""

    @property
    def receivers(self) -> dict[int, VideoReceiver]:
        """Running receivers by track id."""
        return dict(self._receivers)

    @property
    def senders(self) -> dict[str, VideoSender]:
        """Local video tracks by kind."""
        return dict(self._senders)

    def start(self) -> None:
        """Follow the room: take its datagrams and receive its video tracks."""
        self._unlisten = self.rooms.add_listener(self._on_room_event)
        self.rooms.datagram_handler = self._on_datagram
        self.hop.start()
        self.audio.start()
        if self.rooms.state is not None:
            self._sync(self.rooms.state)

    async def publish_video(
        self,
        source: VideoSource,
        kind: TrackKind = "camera",
        *,
        bitrate_bps: int | None = None,
    ) -> VideoSender:
        """Open ``source`` and send it as a new track of ``kind``.

        Raises :class:`~client.media.errors.SourceError` when the source cannot
        be opened (nothing is announced then) and :class:`ServerError` when the
        server refuses the track.
        """
        if kind in self._senders:
            raise ClientError(f"a {kind} track is already published")
        sender = VideoSender(
            source,
            kind,
            self._send_media,
            self._loop,
            bitrate_bps=bitrate_bps,
            clock=self.audio.clock,
            pacer_delay_s=lambda: self.hop.queue_delay_s,
            max_datagram=self.rooms.max_media_datagram,
        )
        self._senders[kind] = sender
        self._share_estimate(self.hop.media_budget_bps())
        try:
            await sender.publish(
                lambda: self.rooms.publish(
                    kind, source.width, source.height, source.fps
                )
            )
        except BaseException:
            self._senders.pop(kind, None)
            raise
        return sender

    async def unpublish_video(self, kind: str) -> None:
        """Stop sending the ``kind`` track and tell the room."""
        sender = self._senders.pop(kind, None)
        if sender is None:
            return
        await sender.withdraw(self.rooms)

    async def close(self) -> None:
        """Stop every sender and receiver and let go of the room's datagrams
        (closing again does nothing more)."""
        self._unlisten()
        self.views.close()
        self.hop.close()
        if self.rooms.datagram_handler == self._on_datagram:
            self.rooms.datagram_handler = None
        for task in list(self._tasks):
            task.cancel()
        senders = list(self._senders.values())
        receivers = [
            self._drop_receiver(track_id) for track_id in list(self._receivers)
        ]
        for sender in senders:
            sender.stop()
        await self.audio.close()

        def join_all() -> None:
            for sender in senders:
                sender.join()
            for receiver in receivers:
                receiver.join()

        await self._loop.run_in_executor(None, join_all)

    # -- room events --------------------------------------------------------------

    def _on_room_event(self, event: RoomEvent) -> None:
        if isinstance(event, RoomUpdated):
            self._sync(event.room)
        elif isinstance(event, RoomLeft):
            self.left = event
            for track_id in list(self._receivers):
                receiver = self._drop_receiver(track_id)
                self._loop.run_in_executor(None, receiver.join)
            for sender in self._senders.values():
                sender.stop()
            self.audio.left()
        elif isinstance(event, MuteRequested):
            self.mute_requests += 1
            self.audio.on_mute_requested(event.by)
            self._spawn(self.rooms.set_muted(True))

    def _sync(self, state: RoomState) -> None:
        me = self.rooms.me
        remote = {
            t.track_id: t for t in state.tracks if t.codec == "h264" and t.owner != me
        }
        for track_id in list(self._receivers):
            if track_id not in remote:
                receiver = self._drop_receiver(track_id)
                self._loop.run_in_executor(None, receiver.join)
        for track_id, track in remote.items():
            if track_id not in self._receivers:
                receiver = VideoReceiver(
                    track,
                    self._loop,
                    self._request_keyframe,
                    self.consumers,
                    send_nack=self._send_nack,
                    rtt_s=self.rooms.rtt_s,
                    lip_sync=(
                        self.audio.lip_sync(track.owner)
                        if track.kind == "camera"
                        else None
                    ),
                )
                self._receivers[track_id] = receiver
                receiver.start()
        self.views.sync(remote)
        mine = {t.track_id for t in state.tracks if t.owner == me}
        for kind, sender in self._senders.items():
            # A sender without a track id is still being announced: a state
            # that came before the reply does not list it yet, and announcing
            # it again would be refused (CONFLICT) or refuse the first.
            if (
                sender.track_id is not None
                and sender.track_id not in mine
                and kind not in self._republishing
            ):
                self._republishing.add(kind)
                self._spawn(self._republish(kind, sender))
        if self.audio.sync(state, me) and "microphone" not in self._republishing:
            self._republishing.add("microphone")
            self._spawn(self._republish_audio())

    async def _republish(self, kind: str, sender: VideoSender) -> None:
        try:
            source = sender.source
            track = await self.rooms.publish(
                sender.kind, source.width, source.height, source.fps
            )
            sender.retarget(track.track_id)
        except ClientError as exc:
            log.warning("could not announce the %s track again: %s", kind, exc)
        finally:
            self._republishing.discard(kind)

    async def _republish_audio(self) -> None:
        try:
            track = await self.rooms.publish("microphone")
            if self.audio.sender is not None:
                self.audio.sender.retarget(track.track_id)
        except ClientError as exc:
            log.warning("could not announce the microphone track again: %s", exc)
        finally:
            self._republishing.discard("microphone")

    def _drop_receiver(self, track_id: int) -> VideoReceiver:
        receiver = self._receivers.pop(track_id)
        receiver.stop()
        self._ended.append(receiver)
        return receiver

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- datagrams ----------------------------------------------------------------

    def _on_datagram(self, data: bytes) -> None:
        try:
            packet = parse_packet(data)
        except PacketError:
            self.datagrams_malformed += 1
            return
        if isinstance(packet, (AudioPacket, VideoPacket, ProbePacket)):
            self.hop.on_received(packet.transport_seq)
        if isinstance(packet, AudioPacket):
            self.audio.on_packet(packet)
        elif isinstance(packet, FeedbackPacket):
            self.hop.on_feedback(packet)
        elif isinstance(packet, RateLimit):
            sender = self._sender_of(packet.track_id)
            if sender is None:
                return
            if packet.layer is None:
                self._limits[packet.track_id] = (packet.max_bps, self._loop.time())
            elif not sender.layers.set_limit(
                packet.layer, packet.max_bps, time.monotonic()
            ):
                self.datagrams_unknown_layer += 1
                return
            if packet.layer in (None, sender.layers.top) and packet.max_bps:
                # The top layer's limit is the track's, as a single layer's.
                self.limit_timeline.append(
                    (time.time(), packet.track_id, packet.max_bps)
                )
            self._share_estimate(self.hop.media_budget_bps())
        elif isinstance(packet, VideoPacket):
            receiver = self._receivers.get(packet.track_id)
            if receiver is None:
                self.datagrams_unknown_track += 1
                return
            receiver.push(packet, self._loop.time())
        elif isinstance(packet, KeyframeRequest):
            sender = self._sender_of(packet.track_id)
            if sender is not None:
                sender.request_keyframe(packet.layer >> 4)
        elif isinstance(packet, NackPacket):
            sender = self._sender_of(packet.track_id)
            if sender is not None:
                self._answer_nack(sender, packet)

    def _sender_of(self, track_id: int) -> VideoSender | None:
        for sender in self._senders.values():
            if sender.track_id == track_id:
                return sender
        self.datagrams_unknown_track += 1
        return None

    def _answer_nack(self, sender: VideoSender, nack: NackPacket) -> None:
        """Send again what the SFU missed, if it can still arrive in time."""
        seqs = nack.seqs()
        rtt = self.rooms.rtt_s()
        budget = frame_wait_s(rtt if rtt is not None else 0.1)
        # Each spatial layer numbers its packets on its own: the hop's cache
        # keeps them apart by layer (above bit 32 of the key).
        key = nack.track_id | nack.layer << 32
        resent = self.hop.retransmit(key, seqs, budget)
        sender.on_nack(len(seqs), resent // REPAIR_COPIES, resent)

    def _send_media(self, datagrams: Sequence[bytes], keyframe: bool) -> bool:
        first = datagrams[0]
        key = int.from_bytes(first[4:8], "big") | (first[1] >> 4) << 32
        return self.hop.send_frame(key, datagrams, keyframe)

    def _share_estimate(self, estimate_bps: float) -> None:
        """Give each local video track its share of the hop's estimate, no
        more than the SFU's limit for it while that holds."""
        budget = estimate_bps
        if self.audio.sender is not None:
            budget -= AUDIO_RESERVE_BPS
        queue_s = self.hop.estimator.standing_queue_s
        tight = self.hop.estimator.rate.at_ceiling
        now = self._loop.time()
        senders = list(self._senders.values())
        weights = [SCREEN_WEIGHT if s.kind == "screen" else 1.0 for s in senders]
        total = sum(weights)
        monotonic = time.monotonic()
        for sender, weight in zip(senders, weights, strict=True):
            share = budget * weight / total
            limit = self._limits.get(sender.track_id or -1)
            if limit is not None and now - limit[1] < RATE_LIMIT_TTL_S:
                share = min(share, limit[0])
            layers = sender.layers
            if layers.layered:
                # The lower layers the SFU asks for go first; the top layer
                # (the sender's own encoder) gets the rest, no more than the
                # SFU's limit for it.
                layers.set_budget(share)
                share -= layers.lower_bps(monotonic)
                top = layers.wanted_bps(layers.top, monotonic)
                if top is not None:
                    share = min(share, top)
            sender.set_budget(max(MIN_VIDEO_BUDGET_BPS, share), queue_s, tight)

    def _frame_dropped(self, key: int) -> None:
        """The pacer dropped a frame of a track (its id, the spatial layer
        above bit 32): its next must be a keyframe."""
        track_id, layer = key & 0xFFFFFFFF, key >> 32
        for sender in self._senders.values():
            if sender.track_id == track_id:
                sender.frame_dropped(layer)

    def _send_nack(self, track_id: int, seqs: list[int]) -> None:
        datagrams = [packet.serialize() for packet in nack_packets(track_id, seqs)]
        self.rooms.send_datagrams(
            datagrams, self.max_queued_datagrams + _CONTROL_HEADROOM
        )

    def _send_audio(self, datagrams: Sequence[bytes]) -> bool:
        return self.hop.send_audio(datagrams)

    def _request_keyframe(self, track_id: int) -> None:
        request = KeyframeRequest(track_id, 0).serialize()
        self.rooms.send_datagrams(
            [request], self.max_queued_datagrams + _CONTROL_HEADROOM
        )

    # -- reporting ----------------------------------------------------------------

    def _sent_stats(self, sender: VideoSender) -> dict[str, object]:
        """A local track's counters with what its hop knows: the estimate it
        shares, the round trip and the loss the feedback shows."""
        rtt = self.rooms.rtt_s()
        estimate = self.hop.estimator
        return {
            **sender.stats_dict(),
            "estimate_bps": round(estimate.target_bps),
            "rtt_ms": None if rtt is None else round(rtt * 1000, 1),
            "loss_fraction": round(estimate.loss_fraction, 4),
        }

    def stats(self) -> dict[str, object]:
        """Per track sent and received (including tracks that ended), as plain
        values for a stats file."""
        return {
            "user": self.rooms.me,
            "room_id": self.rooms.room_id,
            "sent": [self._sent_stats(sender) for sender in self._senders.values()],
            "received": [
                receiver.stats_dict()
                for receiver in [*self._ended, *self._receivers.values()]
            ],
            "datagrams_malformed": self.datagrams_malformed,
            "datagrams_unknown_track": self.datagrams_unknown_track,
            "datagrams_unknown_layer": self.datagrams_unknown_layer,
            "mute_requests": self.mute_requests,
            "hop": self.hop.stats(),
            # None: the SFU needs the track at whatever rate it has.
            "rate_limits": {
                str(track_id): _limit_or_none(bps)
                for track_id, (bps, _) in self._limits.items()
            },
            "rate_limit_timeline": [
                [round(t, 3), track_id, _limit_or_none(bps)]
                for t, track_id, bps in self.limit_timeline
            ],
            **self.audio.stats(),
            "left": None if self.left is None else self.left.reason,
        }
