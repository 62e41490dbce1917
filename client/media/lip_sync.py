"""Lip sync's adapters: the capture clock a publisher's tracks share, and
one :class:`~codec.media.audio.AvSync` per remote person, shared by the
speaker's playout thread and the video render thread.

Both sides read the clock themselves (``time.time()``: the playout clock
the audio sinks pass in), so the pure core never mixes two clocks.
"""

from __future__ import annotations

import threading
import time

from codec.media.audio import AvSync

__all__ = ["LipSync", "MediaClock"]


class MediaClock:
    """Capture time as a publisher stamps it: seconds since its call began.

    Video is captured on ``time.monotonic()`` and audio sources stamp on
    ``time.time()``; both map to the same seconds here, so a receiver can
    match a picture with the sound captured with it.
    """

    def __init__(self) -> None:
        self._monotonic_start = time.monotonic()
        self._wall_start = time.time()

    def from_monotonic(self, monotonic_s: float) -> float:
        return monotonic_s - self._monotonic_start

    def from_wall(self, wall_s: float) -> float:
        return wall_s - self._wall_start


class LipSync:
    """One remote person's lip sync, safe to use from several threads."""

    def __init__(self) -> None:
        self._sync = AvSync()
        self._lock = threading.Lock()

    def audio_played(self, timestamp: int, heard_after_s: float = 0.0) -> None:
        """A speech frame with unwrapped 48 kHz ``timestamp`` is pulled now
        and heard ``heard_after_s`` later (the device's buffer)."""
        with self._lock:
            self._sync.on_audio_played(timestamp, time.time() + heard_after_s)

    def audio_played_at(self, timestamp: int, heard_s: float) -> None:
        """As :meth:`audio_played`, for a frame heard at ``heard_s``
        (``time.time()`` seconds): the audio process's marks."""
        with self._lock:
            self._sync.on_audio_played(timestamp, heard_s)

    def audio_delay_wanted_s(self) -> float | None:
        """For the jitter buffer's ``sync_delay_s``."""
        with self._lock:
            return self._sync.audio_delay_wanted_s

    def render_in_s(self, timestamp: int) -> float:
        """How long a picture with 90 kHz ``timestamp``, ready now, waits
        for its audio (0: show it now)."""
        now = time.time()
        with self._lock:
            return self._sync.video_render_at(timestamp, now) - now

    def rendered(self, timestamp: int) -> None:
        """The picture with ``timestamp`` is shown now."""
        with self._lock:
            self._sync.on_video_rendered(timestamp, time.time())

    def stats_dict(self) -> dict[str, object]:
        """The offsets of the last pictures against audio, ms (positive:
        picture late)."""
        with self._lock:
            stats = self._sync.stats(time.time())
        return {
            "samples": stats.samples,
            "median": stats.median_ms,
            "p95_abs": stats.p95_abs_ms,
        }
