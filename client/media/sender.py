"""Sending one local video track: capture, encode and packetize on a thread,
put the datagrams on the wire from the event loop.

The capture thread owns the source and the encoder (CPU work never runs on the
loop). Each encoded frame becomes one burst of datagrams handed to the loop
with ``call_soon_threadsafe``; the loop sends the burst with one transmit, or
drops the whole frame when the connection's datagram queue is already long
(aioquic never expires what it queues, so sending more would only build
delay) and then asks its own encoder for a keyframe, since the frames after a
dropped one cannot be decoded.
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
from codec.media.packet import VIDEO_HEADER_SIZE
from codec.media.video import VideoEncoder
from codec.messages.rooms import TrackKind

from .errors import SourceError
from .lip_sync import MediaClock
from .sources import VideoSource
from .track_sender import TrackSender

__all__ = ["SenderStats", "VideoSender", "default_bitrate_bps"]

log = logging.getLogger("quicmeet.media")
_BASE_DATAGRAM = VIDEO_HEADER_SIZE + BASE_MEDIA_PAYLOAD
"""A video datagram that fits a QUIC packet of 1,200 bytes (any path)."""

SendBurst = Callable[[Sequence[bytes]], bool]
"""Sends the datagrams of one frame (on the loop); False when it dropped them."""


def default_bitrate_bps(width: int, height: int, fps: float, kind: str) -> int:
    """A starting bitrate for a track: about 0.055 bits per pixel per frame for
    camera video (500 kbit/s at 640x480, 30 fps), twice that for screen content
    so that text stays sharp; never below 150 kbit/s."""
    bits_per_pixel = 0.11 if kind == "screen" else 0.055
    return max(150_000, int(width * height * fps * bits_per_pixel))


@dataclass(slots=True)
class SenderStats:
    """What one local video track has done (frames, datagrams, bytes)."""

    frames_captured: int = 0
    frames_encoded: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    """Encoded frames not sent: no connection, or its datagram queue was full."""
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

    # -- control (any thread) ---------------------------------------------------

    def retarget(self, track_id: int) -> None:
        """Send as ``track_id`` from the next frame on, starting with a keyframe
        (after the server re-announced the track, e.g. on a new connection)."""
        super().retarget(track_id)
        self._force_keyframe = True

    def request_keyframe(self) -> None:
        """A receiver needs a keyframe; the encoder rate-limits what it honours."""
        self.stats.keyframe_requests += 1
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
        """Retarget the encoder (bits per second) from the next frame on."""
        self.bitrate_bps = bitrate_bps
        self._new_bitrate = bitrate_bps

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

    def _capture_loop(self, source: VideoSource) -> None:
        encoder = VideoEncoder(
            source.width,
            source.height,
            source.fps,
            self.bitrate_bps,
            keyframe_interval_s=self.keyframe_interval_s,
            min_keyframe_interval_s=self.min_keyframe_interval_s,
        )
        assert self.track_id is not None
        packetizer = VideoPacketizer(self.track_id)
        stats = self.stats
        while not self._stopping.is_set():
            image = source.read()
            now = time.monotonic()
            stats.frames_captured += 1
            if self._new_bitrate is not None:
                encoder.set_bitrate(self._new_bitrate)
                self._new_bitrate = None
            if self._keyframe_wanted:
                self._keyframe_wanted = False
                encoder.request_keyframe()
            force = self._force_keyframe
            self._force_keyframe = False
            if packetizer.track_id != self.track_id:
                assert self.track_id is not None
                packetizer = VideoPacketizer(self.track_id)
            captured = self.clock.from_monotonic(now)
            for encoded in encoder.encode(image, captured, force_keyframe=force):
                stats.frames_encoded += 1
                packets = packetizer.packetize(
                    encoded.data,
                    encoded.pts,
                    encoded.keyframe,
                    max_payload=self._max_payload,
                )
                datagrams = [packet.serialize() for packet in packets]
                self._loop.call_soon_threadsafe(
                    self._deliver, datagrams, encoded.keyframe, len(encoded.data)
                )

    # -- event loop ---------------------------------------------------------------

    def _deliver(self, datagrams: list[bytes], keyframe: bool, size: int) -> None:
        stats = self.stats
        if self._stopping.is_set():
            return
        self._max_payload = max(
            1, min(MAX_MEDIA_PAYLOAD, self._max_datagram() - VIDEO_HEADER_SIZE)
        )
        if not self._send(datagrams):
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
        }
