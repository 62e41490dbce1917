"""Sending one local video track: capture, encode and packetize on a thread,
put the datagrams on the wire from the event loop.

The capture thread owns the source and the encoder (CPU work never runs on the
loop). Each encoded frame becomes one burst of datagrams handed to the loop
with ``call_soon_threadsafe``; the loop queues the burst in the hop's pacer,
which may refuse it (it would leave too late) or drop it later; either way
the sender asks its own encoder for a keyframe, since the frames after a
dropped one cannot be decoded.

The sender follows its share of the hop's bandwidth estimate
(:meth:`VideoSender.set_budget`) through a
:class:`~codec.media.adapt.QualityLadder`: the encoder's bitrate changes in
place, then frames are skipped to halve the frame rate, then the resolution
is halved (a new encoder, so a keyframe), and back up when the budget
returns. An :class:`~codec.media.adapt.EncoderCorrection` asks x264 for more
(or less) than the budget when it makes less (or more) of its target. While
the pacer holds more than a frame interval, the frame is not even encoded: a
lower frame rate, never a backlog; nor while the encoder has made more
than its budget since the budget was last cut
(:class:`~codec.media.adapt.OutputBudget`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from codec.media import (
    BASE_MEDIA_PAYLOAD,
    MAX_MEDIA_PAYLOAD,
    VideoCodecError,
    VideoPacketizer,
)
from codec.media.adapt import (
    MAX_CORRECTION,
    EncoderCorrection,
    OutputBudget,
    Quality,
    QualityLadder,
    encoder_target_bps,
)
from codec.media.packet import VIDEO_HEADER_SIZE
from codec.media.video import VideoEncoder
from codec.messages.rooms import TrackKind

from .bitrates import VBV_BUFFER_S, default_bitrate_bps, max_bitrate_bps
from .errors import SourceError
from .lip_sync import MediaClock
from .simulcast import SimulcastLayers
from .sources import VideoSource
from .track_sender import TrackSender

__all__ = ["SenderStats", "VideoSender", "default_bitrate_bps", "max_bitrate_bps"]

log = logging.getLogger("quicmeet.media")
_BASE_DATAGRAM = VIDEO_HEADER_SIZE + BASE_MEDIA_PAYLOAD
"""A video datagram that fits a QUIC packet of 1,200 bytes (any path)."""

SendBurst = Callable[[Sequence[bytes], bool], bool]
"""Queues the datagrams of one frame (on the loop), saying whether it is a
keyframe; False when it dropped them."""


@dataclass(slots=True)
class SenderStats:
    """What one local video track has done (frames, datagrams, bytes)."""

    frames_captured: int = 0
    frames_encoded: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    """Encoded frames not sent: no connection, or the pacer dropped them."""
    frames_skipped: int = 0
    """Frames captured and not encoded: the pacer was behind, or the ladder
    lowered the frame rate."""
    quality_changes: int = 0
    """Steps of the ladder (frame rate or resolution) up or down."""
    keyframes_sent: int = 0
    keyframe_requests: int = 0
    """Keyframe requests received from receivers (through the SFU)."""
    nacks_received: int = 0
    """NACKs from the SFU for this track."""
    packets_nacked: int = 0
    """Packets those NACKs asked for."""
    retransmissions: int = 0
    """Packets sent again (the rest were too old, not held, or sent too often)."""
    retransmitted_datagrams: int = 0
    """Datagrams those took (each packet is sent again in copies)."""
    packets_sent: int = 0
    bytes_sent: int = 0
    """Encoded video bytes sent, headers not counted."""
    first_sent_at: float | None = None
    last_sent_at: float | None = None


class VideoSender(TrackSender):
    """Captures, encodes and sends one video track from ``source``.

    ``send`` puts a burst of datagrams on the wire (the loop side of a
    :class:`~client.media.call.Call`). :meth:`start` opens the source on the
    capture thread (await :meth:`wait_started` for the outcome, so a track is
    announced only for a source that works); :meth:`begin` starts sending with
    the track id the server assigned; :meth:`stop` then :meth:`join` end it.
    ``bitrate_bps`` is the start target; :meth:`set_bitrate` changes it without
    a new encoder or keyframe.
    """

    def __init__(
        self,
        source: VideoSource,
        kind: TrackKind,
        send: SendBurst,
        loop: asyncio.AbstractEventLoop,
        *,
        bitrate_bps: int | None = None,
        keyframe_interval_s: float = 20.0,
        min_keyframe_interval_s: float = 0.5,
        clock: MediaClock | None = None,
        pacer_delay_s: Callable[[], float] = lambda: 0.0,
        max_datagram: Callable[[], int] = lambda: _BASE_DATAGRAM,
    ) -> None:
        super().__init__(loop, media="video", thread_name=f"video-{kind}")
        self.clock = clock or MediaClock()
        """Timestamps count from its start, as the call's audio does (lip
        sync)."""
        self.source = source
        self.kind = kind
        self.bitrate_bps = bitrate_bps or default_bitrate_bps(
            source.width, source.height, source.fps, kind
        )
        self.keyframe_interval_s = keyframe_interval_s
        self.min_keyframe_interval_s = min_keyframe_interval_s
        self.stats = SenderStats()
        self.error: SourceError | None = None
        """Why the capture thread stopped early, if it did."""
        self._send = send
        self._max_datagram = max_datagram
        """Largest media datagram (bytes) the path and the room carry now;
        asked on the event loop after each frame sent."""
        self._max_payload = BASE_MEDIA_PAYLOAD
        """The fragment size of the next frame (bytes), read by the thread."""
        self._keyframe_wanted = False
        self._force_keyframe = False
        self._new_bitrate: int | None = None
        self._pacer_delay_s = pacer_delay_s
        self._budget_bps: float | None = None
        self._queue_s = 0.0
        self._tight = False
        """Whether the budget holds just under the path's capacity."""
        self._retargeted_at = float("-inf")
        self.quality: Quality | None = None
        """What the ladder chose last (None before a budget came)."""
        self.layers = SimulcastLayers(
            source.width,
            source.height,
            source.fps,
            keyframe_interval_s=keyframe_interval_s,
            min_keyframe_interval_s=min_keyframe_interval_s,
        )
        """The track's spatial layers (one for a small source) and what the
        SFU needs of each; this sender's encoder is the top layer's."""

    # -- control (any thread) ---------------------------------------------------

    def retarget(self, track_id: int) -> None:
        """Send as ``track_id`` from the next frame on, starting with a keyframe
        (after the server re-announced the track, e.g. on a new connection)."""
        super().retarget(track_id)
        self._force_keyframe = True

    def request_keyframe(self, layer: int | None = None) -> None:
        """A receiver needs a keyframe (of spatial ``layer``, the top one by
        default); the encoder rate-limits what it honours."""
        self.stats.keyframe_requests += 1
        if layer is not None and layer < self.layers.top:
            self.layers.request_keyframe(layer)
        else:
            self._keyframe_wanted = True

    def on_nack(self, requested: int, resent: int, datagrams: int) -> None:
        """Count a NACK for ``requested`` packets, ``resent`` of them sent
        again in ``datagrams`` datagrams."""
        stats = self.stats
        stats.nacks_received += 1
        stats.packets_nacked += requested
        stats.retransmissions += resent
        stats.retransmitted_datagrams += datagrams

    def set_bitrate(self, bitrate_bps: int) -> None:
        """Retarget the encoder (bits per second) from the next frame on, for a
        sender that has no budget (a budget overrides it)."""
        self.bitrate_bps = bitrate_bps
        self._new_bitrate = bitrate_bps

    def set_budget(
        self, budget_bps: float, queue_s: float = 0.0, tight: bool = False
    ) -> None:
        """This track's share of the estimate (bits per second): the ladder
        turns it into bitrate, frame rate and resolution from the next frame.
        ``queue_s``: the path's standing queue (seconds) when it was set (a
        decrease with a queue standing leaves the encoder no burst);
        ``tight``: the estimate holds just under the path's capacity (a
        smaller burst; :class:`~codec.media.adapt.OutputBudget`)."""
        self._queue_s = queue_s
        self._tight = tight
        self._budget_bps = budget_bps

    def frame_dropped(self, layer: int | None = None) -> None:
        """A frame (of spatial ``layer``, the top one by default) was dropped
        after it was queued: the next is a keyframe."""
        self.stats.frames_dropped += 1
        if layer is not None and layer < self.layers.top:
            self.layers.request_keyframe(layer)
        else:
            self._force_keyframe = True

    def join(self, timeout: float = 2.0) -> None:
        """Wait up to ``timeout`` s for the capture thread to end (blocking: run
        it in an executor from the loop)."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- capture thread ---------------------------------------------------------

    def _run(self) -> None:
        source = self.source
        try:
            source.open()
        except Exception as exc:
            error = exc if isinstance(exc, SourceError) else SourceError(str(exc))
            self.error = error
            self._opened.set_exception(error)
            return
        self._opened.set_result(None)
        try:
            self._track_ready.wait()
            if not self._stopping.is_set():
                self._capture_loop(source)
        except (SourceError, VideoCodecError) as exc:
            self.error = SourceError(str(exc))
            log.warning("the %s track stopped: %s", self.kind, exc)
        finally:
            source.close()

    def _ceiling_bps(self) -> int:
        """The most this track's encoder is to make (bits per second)."""
        source = self.source
        return max_bitrate_bps(source.width, source.height, source.fps, self.kind)

    def _new_encoder(self, width: int, height: int) -> VideoEncoder:
        source = self.source
        ceiling = self._ceiling_bps()
        return VideoEncoder(
            width,
            height,
            source.fps,
            min(self.bitrate_bps, ceiling),
            # Room for the correction of an encoder that undershoots: the
            # ceiling bounds what it makes, not what it is asked.
            max_bitrate_bps=max(int(ceiling * MAX_CORRECTION), self.bitrate_bps),
            keyframe_interval_s=self.keyframe_interval_s,
            min_keyframe_interval_s=self.min_keyframe_interval_s,
            vbv_buffer_s=VBV_BUFFER_S,
        )

    def _follow_budget(
        self,
        ladder: QualityLadder,
        encoder: VideoEncoder,
        now: float,
        correction: float,
    ) -> tuple[VideoEncoder, float]:
        """Apply the ladder to the budget; the encoder to use (a new one when
        the resolution changed) and the frame rate to encode at."""
        budget = self._budget_bps
        source = self.source
        if budget is None:
            return encoder, source.fps
        quality = ladder.update(budget, now)
        if self.quality is not None and quality.rung != self.quality.rung:
            self.stats.quality_changes += 1
        self.quality = quality
        if (quality.width, quality.height) != (encoder.width, encoder.height):
            self.bitrate_bps = quality.bitrate_bps
            encoder = self._new_encoder(quality.width, quality.height)
            self._force_keyframe = True
        ceiling = self._ceiling_bps()
        wanted = encoder_target_bps(
            quality.bitrate_bps, source.fps, quality.fps, correction, ceiling
        )
        wanted = min(wanted, encoder.max_bitrate_bps)
        change = abs(wanted - encoder.bitrate_bps) / encoder.bitrate_bps
        # Retarget on a large change at once, on a small one at most once a
        # second: each change reconfigures x264.
        if change > 0.1 or (change > 0.03 and now - self._retargeted_at >= 1.0):
            encoder.set_bitrate(wanted)
            self._retargeted_at = now
        self.bitrate_bps = min(quality.bitrate_bps, ceiling)
        return encoder, quality.fps

    def _capture_loop(self, source: VideoSource) -> None:
        if self._budget_bps is not None:
            self.bitrate_bps = int(self._budget_bps)
        encoder = self._new_encoder(source.width, source.height)
        ladder = QualityLadder(source.width, source.height, source.fps)
        correction = EncoderCorrection()
        output = OutputBudget()
        assert self.track_id is not None
        packetizer = VideoPacketizer(self.track_id)
        stats = self.stats
        next_encode_at = 0.0
        while not self._stopping.is_set():
            image = source.read()
            now = time.monotonic()
            stats.frames_captured += 1
            if self._new_bitrate is not None:
                encoder.set_bitrate(self._new_bitrate)
                self._new_bitrate = None
            if self._budget_bps is not None:
                correction.on_budget(self._budget_bps)
                output.on_budget(self._budget_bps, now, self._queue_s, self._tight)
            encoder, fps = self._follow_budget(ladder, encoder, now, correction.factor)
            interval = 1.0 / fps
            slack = 0.5 / source.fps
            if (
                now + slack < next_encode_at
                or self._pacer_delay_s() > interval
                or not output.allows(now)
            ):
                stats.frames_skipped += 1
                continue
            next_encode_at = max(next_encode_at + interval, now - slack)
            if self._keyframe_wanted:
                self._keyframe_wanted = False
                encoder.request_keyframe()
            captured = self.clock.from_monotonic(now)
            layers = self.layers
            if layers.layered and layers.wanted_bps(layers.top, now) is None:
                # Nobody gets the top layer: not encoded, and it starts
                # again with a keyframe.
                self._force_keyframe = True
            else:
                force = self._force_keyframe
                self._force_keyframe = False
                if packetizer.track_id != self.track_id:
                    assert self.track_id is not None
                    packetizer = VideoPacketizer(self.track_id)
                for encoded in encoder.encode(image, captured, force_keyframe=force):
                    stats.frames_encoded += 1
                    output.on_frame(len(encoded.data) * 8)
                    layers.count(layers.top, len(encoded.data))
                    correction.on_frame(
                        now,
                        len(encoded.data) * 8,
                        encoder.bitrate_bps / source.fps,
                        encoded.keyframe,
                    )
                    packets = packetizer.packetize(
                        encoded.data,
                        encoded.pts,
                        encoded.keyframe,
                        layer=layers.layer_id(layers.top),
                        max_payload=self._max_payload,
                    )
                    datagrams = [packet.serialize() for packet in packets]
                    self._loop.call_soon_threadsafe(
                        self._deliver, datagrams, encoded.keyframe, len(encoded.data)
                    )
            if layers.layered:
                # After the top layer: the SFU switches a subscriber up at a
                # top keyframe, and this capture's lower frame, behind it, is
                # then not forwarded (ahead of it, the same picture would be
                # shown twice, the second time at the larger size).
                layers.encode_lower(
                    image,
                    captured,
                    now,
                    self.track_id,
                    self._max_payload,
                    self._deliver_layer,
                )

    # -- event loop ---------------------------------------------------------------

    def _deliver_layer(
        self, datagrams: list[bytes], keyframe: bool, size: int, layer: int
    ) -> None:
        """(Capture thread) hand a lower layer's frame to the loop."""
        self._loop.call_soon_threadsafe(self._send_layer, datagrams, keyframe, layer)

    def _send_layer(self, datagrams: list[bytes], keyframe: bool, layer: int) -> None:
        if not self._stopping.is_set() and not self._send(datagrams, keyframe):
            self.layers.request_keyframe(layer)

    def _deliver(self, datagrams: list[bytes], keyframe: bool, size: int) -> None:
        stats = self.stats
        if self._stopping.is_set():
            return
        self._max_payload = max(
            1, min(MAX_MEDIA_PAYLOAD, self._max_datagram() - VIDEO_HEADER_SIZE)
        )
        if not self._send(datagrams, keyframe):
            stats.frames_dropped += 1
            self._keyframe_wanted = True
            return
        now = time.monotonic()
        if stats.first_sent_at is None:
            stats.first_sent_at = now
        stats.last_sent_at = now
        stats.frames_sent += 1
        stats.keyframes_sent += keyframe
        stats.packets_sent += len(datagrams)
        stats.bytes_sent += size

    def stats_dict(self) -> dict[str, object]:
        """The counters as plain values, with rates, for a stats file."""
        stats = self.stats
        span = (
            (stats.last_sent_at or 0.0) - (stats.first_sent_at or 0.0)
            if stats.first_sent_at is not None
            else 0.0
        )
        return {
            "kind": self.kind,
            "track_id": self.track_id,
            "width": self.source.width,
            "height": self.source.height,
            "target_fps": self.source.fps,
            "target_bitrate_bps": self.bitrate_bps,
            "frames_captured": stats.frames_captured,
            "frames_encoded": stats.frames_encoded,
            "frames_sent": stats.frames_sent,
            "frames_dropped": stats.frames_dropped,
            "frames_skipped": stats.frames_skipped,
            "quality_changes": stats.quality_changes,
            "encoded_width": None if self.quality is None else self.quality.width,
            "encoded_height": None if self.quality is None else self.quality.height,
            "encoded_fps": None if self.quality is None else self.quality.fps,
            "ladder_rung": None if self.quality is None else self.quality.rung,
            "keyframes_sent": stats.keyframes_sent,
            "keyframe_requests": stats.keyframe_requests,
            "nacks_received": stats.nacks_received,
            "packets_nacked": stats.packets_nacked,
            "retransmissions": stats.retransmissions,
            "retransmitted_datagrams": stats.retransmitted_datagrams,
            "packets_sent": stats.packets_sent,
            "bytes_sent": stats.bytes_sent,
            "fps": round((stats.frames_sent - 1) / span, 2) if span > 0 else 0.0,
            "bitrate_bps": round(stats.bytes_sent * 8 / span) if span > 0 else 0,
            "error": str(self.error) if self.error is not None else None,
            **self.layers.stats_dict(time.monotonic()),
        }
