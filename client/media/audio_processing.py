"""The capture chain's cleaning: echo cancellation, noise suppression, gain.

:class:`EchoCanceller` wraps WebRTC's audio processing module (AEC3, noise
suppression, high-pass filter, automatic gain control) as the ``livekit``
package ships it: chosen by measurement among the canceller packages that
install here (``docs/audio.md``, ``bench/audio_aec.py``). What the speaker
plays goes in as the reference (:meth:`EchoCanceller.on_played`, from the
playout clock); each captured frame comes out cleaned
(:meth:`EchoCanceller.process`, on the sender's thread), before the VAD.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from codec.media.audio import FRAME_SAMPLES, SAMPLE_RATE

from .errors import AudioUnavailable

__all__ = ["EchoCanceller"]

_TEN_MS = SAMPLE_RATE // 100


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
        # Render and capture run on different threads; one at a time inside.
        self._lock = threading.Lock()
        self.frames = 0

    def on_played(self, frame: np.ndarray) -> None:
        """Take 20 ms of what the speaker is playing (the echo's source)."""
        with self._lock:
            for half in (frame[:_TEN_MS], frame[_TEN_MS:]):
                self._apm.process_reverse_stream(self._frame(half))

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Clean 20 ms of capture; returns a new frame."""
        out = np.empty(FRAME_SAMPLES, dtype=np.int16)
        with self._lock:
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
