"""The capture chain's cleaning: echo cancellation, noise suppression, gain.

:class:`EchoCanceller` wraps WebRTC's audio processing module (AEC3, noise
suppression, high-pass filter, automatic gain control) as the ``livekit``
package ships it: chosen by measurement among the canceller packages that
install here (``docs/audio.md``, ``bench/audio_aec.py``). What the speaker
plays goes in as the reference (:meth:`EchoCanceller.on_played`, from the
playout clock); each captured frame comes out cleaned
(:meth:`EchoCanceller.process`, on the sender's thread), before the VAD.

Both sides of the module run on the capture thread: the speaker's callback
only queues what it played, so it never waits for a lock that a capture
thread holds while it runs Python (and waits for the GIL, or for a CPU).
:func:`load` imports livekit ahead of time, since the import holds the GIL
long enough to make a speaker in the same process run dry.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE

from .errors import AudioUnavailable

__all__ = ["EchoCanceller", "load"]

_TEN_MS = SAMPLE_RATE // 100
PLAYED_KEPT = 50
"""20 ms frames of played sound kept for the capture thread (1 s, as
WebRTC's render queue): beyond that the capture thread is so late that the
oldest reference is no use to it."""


def load() -> None:
    """Import livekit now, where a pause does no harm: the import is
    60-250 ms of work under the GIL, and with the CPUs busy a speaker
    callback in the same process waited up to 98 ms for it (an underrun);
    its native library then loads with the first canceller, in under 10 ms.
    Nothing happens when livekit is missing; :class:`EchoCanceller` then
    says so."""
    try:
        from livekit import rtc  # noqa: F401
    except ImportError:
        pass


class EchoCanceller:
    """WebRTC AEC3 + noise suppression + AGC on 20 ms frames (run as two
    10 ms frames, the module's unit). Raises :class:`AudioUnavailable` when
    the ``livekit`` package is missing."""

    def __init__(
        self, *, noise_suppression: bool = True, auto_gain: bool = True
    ) -> None:
        try:
            from livekit import rtc
        except ImportError as exc:
            raise AudioUnavailable(
                f"echo cancellation is off: the livekit package is missing ({exc})"
            ) from None
        self._rtc: Any = rtc
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=True,
            noise_suppression=noise_suppression,
            high_pass_filter=True,
            auto_gain_control=auto_gain,
        )
        # Appended by the speaker's thread, taken by the capture thread:
        # deque's append and popleft need no lock.
        self._played: deque[np.ndarray] = deque(maxlen=PLAYED_KEPT)
        self.frames = 0

    def on_played(self, frame: np.ndarray) -> None:
        """Take 20 ms of what the speaker is playing (the echo's source);
        quick and never blocking, for the speaker's callback."""
        self._played.append(frame.copy())

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Clean 20 ms of capture (after the sound played until now, as the
        reference); returns a new frame."""
        played = self._played
        while played:
            reference = played.popleft()
            for half in (reference[:_TEN_MS], reference[_TEN_MS:]):
                self._apm.process_reverse_stream(self._frame(half))
        out = np.empty(FRAME_SAMPLES, dtype=np.int16)
        for index in (0, 1):
            part = self._frame(frame[index * _TEN_MS : (index + 1) * _TEN_MS])
            self._apm.process_stream(part)
            out[index * _TEN_MS : (index + 1) * _TEN_MS] = np.frombuffer(
                bytes(part.data), dtype=np.int16
            )
        self.frames += 1
        return out

    def _frame(self, samples: np.ndarray) -> Any:
        data = np.ascontiguousarray(samples, dtype=np.int16).tobytes()
        return self._rtc.AudioFrame(data, SAMPLE_RATE, 1, _TEN_MS)
