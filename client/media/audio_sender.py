"""Sending the local microphone track: capture, VAD, DTX, Opus on a thread,
datagrams on the wire from the event loop.

The sender's thread owns the source, the capture processing (echo
cancellation with what is played as the reference, when one is given), the
VAD and the encoder. Each frame that DTX lets through becomes one audio
datagram with its RFC 6464 level, handed to the loop with
``call_soon_threadsafe``. While muted the thread still runs (so unmuting is
instant) but encodes silence, which DTX reduces to keep-alives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from codec.media import AudioPacket
from codec.media.audio import (
    DEFAULT_BITRATE_BPS,
    FRAME_SAMPLES,
    AudioCodecError,
    DtxGate,
    OpusEncoder,
    VoiceDetector,
    audio_level,
)

from .audio_sources import AudioSource
from .errors import MediaError, SourceError
from .lip_sync import MediaClock
from .track_sender import TrackSender

__all__ = ["AudioSender", "AudioSenderStats", "CaptureProcessor"]

log = logging.getLogger("quicmeet.media")

SendAudio = Callable[[Sequence[bytes]], bool]

EXPECTED_LOSS_PCT = 10
"""The loss in-band FEC is sized for until the listeners report theirs."""


class CaptureProcessor(Protocol):
    """Cleans the captured frame before the VAD: echo cancellation against
    what was played, noise suppression, gain."""

    def process(self, frame: np.ndarray) -> np.ndarray:
        """One 20 ms int16 frame in, the cleaned frame out."""


@dataclass(slots=True)
class AudioSenderStats:
    """What the local audio track has done (20 ms frames, datagrams, bytes)."""

    frames_captured: int = 0
    capture_gap_frames: int = 0
    """Frames of time the source stalled for (its frames came late and the
    timestamps jumped over the gap)."""
    frames_voiced: int = 0
    """Frames the VAD called speech."""
    packets_sent: int = 0
    keepalives_sent: int = 0
    frames_suppressed: int = 0
    """Frames DTX did not send (silence)."""
    frames_preroll: int = 0
    """Frames held back as silence, then sent before a talk spurt: its onset."""
    packets_dropped: int = 0
    """Packets not sent: no connection, or its datagram queue was full."""
    bytes_sent: int = 0
    """Opus bytes, headers not counted."""


class AudioSender(TrackSender):
    """Captures, encodes and sends the local audio track from ``source``.

    As :class:`~client.media.sender.VideoSender`: :meth:`start`, await
    :meth:`wait_started`, :meth:`begin` with the track id, then :meth:`stop`
    and :meth:`join`. ``muted`` may be set from any thread.
    """

    def __init__(
        self,
        source: AudioSource,
        send: SendAudio,
        loop: asyncio.AbstractEventLoop,
        *,
        bitrate_bps: int = DEFAULT_BITRATE_BPS,
        processor: CaptureProcessor | None = None,
        dtx: bool = True,
        clock: MediaClock | None = None,
    ) -> None:
        super().__init__(loop, media="audio", thread_name="audio")
        self.source = source
        self.kind = "microphone"
        self.bitrate_bps = bitrate_bps
        self.expected_loss_pct = EXPECTED_LOSS_PCT
        """The loss Opus's in-band FEC is sized for, percent."""
        self.processor = processor
        self.dtx = dtx
        self.muted = False
        self.clock = clock or MediaClock()
        """Timestamps count from its start, as the call's video does."""
        self.stats = AudioSenderStats()
        self.error: SourceError | None = None
        self._send = send
        # Requests from the loop thread, taken by the capture thread: each
        # switch is answered in order (a single slot lost a request made while
        # the previous one was being answered, and its caller waited forever).
        self._bitrate_lock = threading.Lock()
        self._new_bitrate: int | None = None
        self._new_expected_loss: int | None = None
        self._switches: queue.SimpleQueue[
            tuple[AudioSource, concurrent.futures.Future[None]]
        ] = queue.SimpleQueue()
        self._seq = 0

    def set_bitrate(self, bitrate_bps: int) -> None:
        """Change the Opus bitrate from the next frame on."""
        with self._bitrate_lock:
            self._new_bitrate = bitrate_bps

    def set_expected_loss(self, loss_pct: int) -> None:
        """Carry in-band FEC for ``loss_pct`` percent of loss from the next
        frame on (the listeners' reports, through the call's FEC policy)."""
        with self._bitrate_lock:
            self._new_expected_loss = loss_pct

    async def switch_source(self, source: AudioSource) -> None:
        """Capture from ``source`` from the next frame on (another microphone,
        say), on the same track. Raises the new source's error (and keeps the
        old one) when it cannot be opened."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._switches.put((source, done))
        if self._thread is None or not self._thread.is_alive():
            self._refuse_switches()
        await asyncio.wrap_future(done)

    def _refuse_switches(self) -> None:
        """Answer every waiting switch with an error: the sender has stopped."""
        while True:
            try:
                _, done = self._switches.get_nowait()
            except queue.Empty:
                return
            if not done.done():
                done.set_exception(SourceError("the audio sender has stopped"))

    def join(self, timeout: float | None = 10.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.source.open()
            encoder = OpusEncoder(
                self.bitrate_bps, expected_loss_pct=self.expected_loss_pct
            )
            detector = VoiceDetector()
        except (MediaError, AudioCodecError) as exc:
            self._opened.set_exception(exc)
            self.source.close()
            return
        self._opened.set_result(None)
        try:
            self._track_ready.wait()
            self._capture(encoder, detector)
        except SourceError as exc:
            self.error = exc
            log.warning("audio source stopped: %s", exc)
        finally:
            self.source.close()
            encoder.close()
            self._refuse_switches()

    def _capture(self, encoder: OpusEncoder, detector: VoiceDetector) -> None:
        gate = DtxGate()
        held: deque[tuple[np.ndarray, int]] = deque(maxlen=gate.preroll_frames)
        timestamp: int | None = None
        while not self._stopping.is_set():
            while True:
                try:
                    request = self._switches.get_nowait()
                except queue.Empty:
                    break
                self._switch(*request)
            frame, capture_s = self.source.read()
            self.stats.frames_captured += 1
            # On the call's clock, so receivers can match our video with it.
            captured = round(self.clock.from_wall(capture_s) * 48_000)
            if timestamp is None:
                timestamp = captured
            # A source stall (frames never captured) shows as a jump of
            # whole frames, as DTX does; capture jitter below a frame does not.
            behind = captured - timestamp
            if behind >= 2 * FRAME_SAMPLES:
                timestamp += (behind // FRAME_SAMPLES) * FRAME_SAMPLES
                self.stats.capture_gap_frames += behind // FRAME_SAMPLES
            if self.processor is not None:
                frame = self.processor.process(frame)
            if self.muted:
                frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            with self._bitrate_lock:
                bitrate, self._new_bitrate = self._new_bitrate, None
                loss, self._new_expected_loss = self._new_expected_loss, None
            if bitrate is not None:
                encoder.set_bitrate(bitrate)
                self.bitrate_bps = bitrate
            if loss is not None:
                encoder.set_expected_loss(loss)
                self.expected_loss_pct = loss
            speech = detector.is_speech(frame)
            self.stats.frames_voiced += speech
            decision = gate.decide(speech, capture_s)
            if self.dtx and not decision.send:
                self.stats.frames_suppressed += 1
                held.append((frame, timestamp))
                timestamp += FRAME_SAMPLES
                continue
            if self.dtx:
                # The talk spurt's onset, held back as silence: it goes first,
                # with its own timestamps and the next sequence numbers.
                for early, early_ts in list(held)[
                    max(0, len(held) - decision.preroll) :
                ]:
                    self.stats.frames_suppressed -= 1
                    self.stats.frames_preroll += 1
                    self._emit(encoder, early, early_ts, False)
                held.clear()
            self._emit(encoder, frame, timestamp, decision.voice or not self.dtx)
            timestamp += FRAME_SAMPLES
            self.stats.keepalives_sent += decision.keepalive

    def _emit(
        self, encoder: OpusEncoder, frame: np.ndarray, timestamp: int, voice: bool
    ) -> None:
        """Encode one frame and hand its datagram to the loop."""
        payload = encoder.encode(frame)
        packet = AudioPacket(
            track_id=self.track_id or 0,
            seq=self._seq & 0xFFFF,
            transport_seq=0,
            timestamp=timestamp & 0xFFFFFFFF,
            level=audio_level(frame),
            voice_activity=voice,
            payload=payload,
        )
        self._seq += 1
        self.stats.bytes_sent += len(payload)
        self._loop.call_soon_threadsafe(self._deliver, packet.serialize())

    def _switch(
        self, source: AudioSource, done: concurrent.futures.Future[None]
    ) -> None:
        try:
            source.open()
        except MediaError as exc:
            done.set_exception(exc)
            return
        self.source.close()
        self.source = source
        done.set_result(None)

    def _deliver(self, datagram: bytes) -> None:
        if self._send([datagram]):
            self.stats.packets_sent += 1
        else:
            self.stats.packets_dropped += 1

    def stats_dict(self) -> dict[str, object]:
        """Counters as plain values for a stats file."""
        return {
            "kind": self.kind,
            "track_id": self.track_id,
            "bitrate_bps": self.bitrate_bps,
            "expected_loss_pct": self.expected_loss_pct,
            "muted": self.muted,
            **{name: getattr(self.stats, name) for name in self.stats.__slots__},
        }
