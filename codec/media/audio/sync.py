"""Lip sync: one remote person's video shown in step with their audio.

A publisher stamps both of its tracks on one capture clock (seconds since
its call began: 48 kHz ticks for audio, 90 kHz for video). At the receiver,
each audio frame played tells how long audio takes now from capture to play
(network, jitter buffer; the two machines' clocks differ by a constant that
appears in audio and video alike, so it cancels). A video frame that is
ready before its audio waits until capture time plus that delay. When video
is the slower one (decoding, waiting for a retransmission), audio waits
instead: :attr:`AvSync.audio_delay_wanted_s` asks the jitter buffer for as
much delay as most video frames need, within its cap. Each rendered frame's
offset against the audio playing at that moment is kept for the stats
(positive: the picture is late, i.e. audio early).

Sans-I/O: every entry point takes ``now`` (seconds on any one clock the
caller uses for both tracks).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .opus import FRAME_SAMPLES, SAMPLE_RATE

__all__ = ["AvSync", "AvSyncStats", "VIDEO_CLOCK_HZ"]

VIDEO_CLOCK_HZ = 90_000
"""The video media clock (as ``codec.media.video``, without loading PyAV)."""
_VIDEO_WRAP_S = (1 << 32) / VIDEO_CLOCK_HZ


@dataclass(frozen=True, slots=True)
class AvSyncStats:
    """Offsets of rendered pictures against the audio, milliseconds
    (positive: picture late); None before any picture was rendered in sync."""

    samples: int
    median_ms: float | None
    p95_abs_ms: float | None
    audio_delay_ms: float | None
    """Capture to play of the audio now (includes the clocks' offset)."""
    audio_delay_wanted_ms: float | None
    """What video asks of audio (None: video is not the slower one)."""


class AvSync:
    """Lip sync of one remote person.

    Feed :meth:`on_audio_played` for every audio frame played with a
    timestamp, ask :meth:`video_render_at` when a picture is ready, call
    :meth:`on_video_rendered` when it is shown; hand
    :attr:`audio_delay_wanted_s` to the audio jitter buffer.

    ``max_video_hold_s`` caps how long a picture waits for audio;
    ``audio_stale_s``: audio not heard for this long no longer holds video;
    ``video_window_s``: how much video history the audio wait looks at.
    """

    def __init__(
        self,
        *,
        max_video_hold_s: float = 0.5,
        audio_stale_s: float = 10.0,
        video_window_s: float = 2.0,
        video_quantile: float = 0.9,
    ) -> None:
        self.max_video_hold_s = max_video_hold_s
        self.audio_stale_s = audio_stale_s
        self.video_window_s = video_window_s
        self.video_quantile = video_quantile
        self._audio_delays: deque[float] = deque(maxlen=10)
        self._audio_capture_s: float | None = None
        self._last_audio_ts = -FRAME_SAMPLES
        self._audio_heard_at: float | None = None
        self._video_delays: deque[tuple[float, float]] = deque()
        self.offsets_ms: deque[float] = deque(maxlen=300)
        """The last rendered pictures' offsets against the audio, ms."""

    # -- audio -----------------------------------------------------------------------

    def on_audio_played(self, timestamp: int, now: float) -> None:
        """The speech frame with 48 kHz ``timestamp`` (unwrapped) starts
        playing at ``now``. Only speech counts: in silence the buffer moves
        its timeline freely, and nobody sees lips move."""
        if timestamp - self._last_audio_ts != FRAME_SAMPLES:
            self._audio_delays.clear()  # a new talk spurt: a new placement
        self._last_audio_ts = timestamp
        capture = timestamp / SAMPLE_RATE
        self._audio_capture_s = capture
        self._audio_heard_at = now
        self._audio_delays.append(now - capture)

    def audio_delay_s(self, now: float) -> float | None:
        """Capture to play of the audio now, or None (no audio lately).
        The smallest of the last frames: a late pull only adds to it."""
        if (
            self._audio_heard_at is None
            or now - self._audio_heard_at > self.audio_stale_s
        ):
            return None
        return min(self._audio_delays)

    @property
    def audio_delay_wanted_s(self) -> float | None:
        """Capture to play that audio should have so that most pictures are
        ready in time (the jitter buffer raises its target to meet it, never
        past its cap); None without recent video."""
        if not self._video_delays:
            return None
        ordered = sorted(delay for _, delay in self._video_delays)
        index = min(len(ordered) - 1, int(self.video_quantile * len(ordered)))
        return ordered[index]

    # -- video -----------------------------------------------------------------------

    def video_render_at(self, timestamp: int, now: float) -> float:
        """When to show the picture with 90 kHz ``timestamp`` that is ready
        at ``now``: with its audio, or at once (no audio, or audio ahead)."""
        capture = self._video_capture_s(timestamp)
        self._video_delays.append((now, now - capture))
        while now - self._video_delays[0][0] > self.video_window_s:
            self._video_delays.popleft()
        delay = self.audio_delay_s(now)
        if delay is None:
            return now
        hold = capture + delay - now
        return now + min(self.max_video_hold_s, max(0.0, hold))

    def on_video_rendered(self, timestamp: int, now: float) -> float | None:
        """The picture with ``timestamp`` is shown at ``now``: its offset
        against the audio playing now (seconds, positive: picture late), or
        None without audio."""
        delay = self.audio_delay_s(now)
        if delay is None:
            return None
        offset = now - self._video_capture_s(timestamp) - delay
        self.offsets_ms.append(offset * 1000.0)
        return offset

    def _video_capture_s(self, timestamp: int) -> float:
        """Capture seconds of a 32-bit video timestamp, placed in the wrap
        nearest the audio's (the video clock wraps every 13 h, audio's every
        24.8 h, both counted from the publisher's call start)."""
        capture = (timestamp & 0xFFFFFFFF) / VIDEO_CLOCK_HZ
        if self._audio_capture_s is not None:
            wraps = round((self._audio_capture_s - capture) / _VIDEO_WRAP_S)
            capture += wraps * _VIDEO_WRAP_S
        return capture

    def stats(self, now: float) -> AvSyncStats:
        offsets = sorted(self.offsets_ms)
        magnitudes = sorted(abs(o) for o in offsets)
        delay = self.audio_delay_s(now)
        wanted = self.audio_delay_wanted_s
        return AvSyncStats(
            len(offsets),
            round(offsets[len(offsets) // 2], 1) if offsets else None,
            round(_quantile(magnitudes, 0.95), 1) if magnitudes else None,
            None if delay is None else round(delay * 1000.0, 1),
            None if wanted is None else round(wanted * 1000.0, 1),
        )


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
