"""Where a stamped buzz begins in a stream of samples (mouth-to-ear).

The stamped test audio is a loud buzz after a long quiet (the tone source's
buzz on every whole second, or one played into a device). Fed the samples
as they pass a point of the chain (a capture callback, a playout pull, a
playback callback) with the time of each chunk's first sample,
:class:`OnsetDetector` says when a buzz began there; the same buzz's onsets
at two points give the latency between them.
"""

from __future__ import annotations

import numpy as np

from .opus import SAMPLE_RATE

__all__ = ["ONSET_LEVEL", "OnsetDetector", "pair_onsets"]

ONSET_LEVEL = 2000
"""Sample magnitude (int16) where a buzz counts as begun."""


class OnsetDetector:
    """Onsets: the first sample above ``level`` after at least ``quiet_s``
    seconds below it, in chunks of any size at ``rate`` samples per second."""

    def __init__(
        self,
        *,
        rate: int = SAMPLE_RATE,
        level: int = ONSET_LEVEL,
        quiet_s: float = 0.5,
    ) -> None:
        self.rate = rate
        self.level = level
        self._needed = round(quiet_s * rate)
        self._quiet = self._needed
        """Quiet samples since the last loud one (a stream starts quiet)."""

    def feed(self, samples: np.ndarray, first_s: float) -> float | None:
        """Take the next chunk, whose first sample is at ``first_s`` seconds;
        returns the time of a buzz's first sample in it, if one began."""
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > self.level)
        if loud.size == 0:
            self._quiet += samples.size
            return None
        onset = None
        if self._quiet + int(loud[0]) >= self._needed:
            onset = first_s + int(loud[0]) / self.rate
        self._quiet = samples.size - 1 - int(loud[-1])
        return onset


def pair_onsets(
    earlier: list[float], later: list[float], *, within_s: float = 0.5
) -> list[float]:
    """Latencies between two points, ms: each onset of ``later`` against
    the latest onset of ``earlier`` before it, if one is ``within_s``
    seconds before (buzzes further apart than that tell them apart)."""
    latencies = []
    for heard in later:
        before = [e for e in earlier if 0.0 < heard - e < within_s]
        if before:
            latencies.append((heard - max(before)) * 1000.0)
    return latencies
