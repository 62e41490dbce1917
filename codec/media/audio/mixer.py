"""Mixing every speaker into one output frame, with a limiter.

Each speaker has a volume (0.0 to 2.0, i.e. 0-200 %) and a mute. The sum is
taken in floating point, then a peak limiter brings it under full scale with
an instant attack (the gain ramps within the frame, so no click) and a slow
release; a final clip keeps any sample from wrapping around int16.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .opus import FRAME_MS, FRAME_SAMPLES

__all__ = ["MAX_VOLUME", "Mixer"]

MAX_VOLUME = 2.0
_FULL_SCALE = 32767.0
_SILENT_DBOV = -127.0


def _dbov(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float32)))) / 32768.0
    return max(_SILENT_DBOV, 20.0 * math.log10(rms)) if rms > 0.0 else _SILENT_DBOV


class Mixer:
    """Sums 20 ms int16 frames of several speakers into one.

    ``ceiling`` is the limiter's threshold as a share of full scale;
    ``release_s`` the time constant with which the gain recovers.
    """

    def __init__(self, *, ceiling: float = 0.9, release_s: float = 0.2) -> None:
        self.ceiling = ceiling
        self._release = math.exp(-FRAME_MS / 1000.0 / release_s)
        self._gain = 1.0
        self._volume: dict[str, float] = {}
        self._muted: set[str] = set()
        self.limited_frames = 0
        """Frames in which the limiter reduced the gain."""
        self._loudest: dict[str, float] = {}

    def set_volume(self, speaker: str, volume: float) -> None:
        """Set ``speaker``'s volume: 0.0 (silent) to 2.0 (200 %)."""
        if not 0.0 <= volume <= MAX_VOLUME:
            raise ValueError(f"volume {volume} is outside 0.0..{MAX_VOLUME}")
        self._volume[speaker] = volume

    def volume(self, speaker: str) -> float:
        return self._volume.get(speaker, 1.0)

    def set_muted(self, speaker: str, muted: bool) -> None:
        """Mute or unmute ``speaker`` locally (only for this listener)."""
        if muted:
            self._muted.add(speaker)
        else:
            self._muted.discard(speaker)

    def is_muted(self, speaker: str) -> bool:
        return speaker in self._muted

    def played_dbov(self, speaker: str) -> float:
        """The loudest 20 ms of ``speaker`` as mixed in (after volume and
        mute, before the limiter) since the last call, in dBov: -127 for
        silence or nothing mixed. Reading starts a new period."""
        return self._loudest.pop(speaker, _SILENT_DBOV)

    def mix(self, frames: Mapping[str, np.ndarray]) -> np.ndarray:
        """One output frame of :data:`FRAME_SAMPLES` int16 from each speaker's."""
        total = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        for speaker, frame in frames.items():
            if speaker in self._muted:
                continue
            volume = self._volume.get(speaker, 1.0)
            if volume > 0.0:
                scaled = frame.astype(np.float32) * volume
                total += scaled
                level = _dbov(scaled)
                if level > self._loudest.get(speaker, _SILENT_DBOV):
                    self._loudest[speaker] = level
        peak = float(np.max(np.abs(total))) if total.size else 0.0
        wanted = 1.0
        if peak > self.ceiling * _FULL_SCALE:
            wanted = self.ceiling * _FULL_SCALE / peak
        start = self._gain
        if wanted < start:
            end = wanted
            self.limited_frames += 1
        else:
            end = min(wanted, 1.0 - (1.0 - start) * self._release)
        ramp = np.linspace(start, end, FRAME_SAMPLES, dtype=np.float32)
        # The ramp starts above ``wanted``: the clip catches its first samples.
        self._gain = end
        out = np.clip(total * ramp, -_FULL_SCALE - 1.0, _FULL_SCALE)
        return out.astype(np.int16)
