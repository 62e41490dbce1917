"""A running maximum or minimum over a sliding window, in buckets.

The congestion controller keeps two such filters: the highest delivery rate over
the last few round trips (the bottleneck bandwidth) and the lowest round-trip time
over the last seconds (the propagation delay). Time is whatever the caller counts
in (round trips, seconds); the window is cut into equal buckets that each keep
their own extreme, so memory is bounded by the number of buckets however many
samples arrive, and a sample leaves the filter at most one bucket late.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["WindowedFilter", "windowed_max", "windowed_min"]


class WindowedFilter:
    """The best sample (by ``pick``) seen during the last ``window`` time units.

    ``buckets`` sets the resolution: samples are grouped by
    ``floor(time / (window / buckets))``. Time must not go backwards.
    """

    def __init__(
        self, window: float, buckets: int, pick: Callable[[float, float], float]
    ) -> None:
        if window <= 0 or buckets < 1:
            raise ValueError("the window and the number of buckets must be positive")
        self._width = window / buckets
        self._buckets = buckets
        self._pick = pick
        self._greater: bool | None = (
            True if pick is max else False if pick is min else None
        )
        """For max and min, the same-bucket update compares in place (the
        controller updates a filter for nearly every packet acknowledged)."""
        # A list, not a deque: it holds at most buckets + 1 slots, and an empty
        # deque costs about 600 bytes in each of the server's idle connections.
        self._slots: list[tuple[int, float]] = []
        self._best: float | None = None

    @property
    def value(self) -> float | None:
        """The best sample still in the window; None before the first sample."""
        return self._best

    def update(self, sample: float, time: float) -> None:
        """Add ``sample`` taken at ``time``; samples older than the window leave."""
        key = math.floor(time / self._width)
        slots = self._slots
        pick = self._pick
        if slots and slots[-1][0] == key:
            # Same bucket as the last sample: nothing can have left the window
            # since the best was last computed (the controller's ACKs mostly
            # land here, many per round trip). max(a, b) is b only if b > a,
            # min(a, b) only if b < a: the comparisons below pick alike.
            greater = self._greater
            if greater is None:
                slots[-1] = (key, pick(slots[-1][1], sample))
                self._best = pick(self._best, sample)  # type: ignore[arg-type]
            elif greater:
                if sample > slots[-1][1]:
                    slots[-1] = (key, sample)
                if sample > self._best:  # type: ignore[operator]
                    self._best = sample
            else:
                if sample < slots[-1][1]:
                    slots[-1] = (key, sample)
                if sample < self._best:  # type: ignore[operator]
                    self._best = sample
            return
        slots.append((key, sample))
        while slots[0][0] <= key - self._buckets:
            del slots[0]
        best = slots[0][1]
        for _, value in slots:
            best = pick(best, value)
        self._best = best

    def reset(self, sample: float, time: float) -> None:
        """Forget every sample and start again from ``sample`` at ``time``."""
        self._slots.clear()
        self._best = None
        self.update(sample, time)

    def clear(self) -> None:
        """Forget every sample."""
        self._slots.clear()
        self._best = None


def windowed_max(window: float, buckets: int) -> WindowedFilter:
    """A filter that keeps the highest sample of the window."""
    return WindowedFilter(window, buckets, max)


def windowed_min(window: float, buckets: int) -> WindowedFilter:
    """A filter that keeps the lowest sample of the window."""
    return WindowedFilter(window, buckets, min)
