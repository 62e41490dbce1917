"""How much a path's RTT varies on its own, so that variation is not taken for a
queue and the window covers it.

Two measures: the *jitter*, the mean change from one RTT sample to the next (as
RFC 3550 measures interarrival jitter), and the *spread*, how far the RTTs of a
group stand above the group's minimum on average. A group is at least
``group_samples`` samples and at least one round trip, taken only while the flow
cruises (its own probing moves the RTT); the spread is the lowest of the last
``window_groups`` groups', so a queue that builds once and spreads one group is
ignored, while jitter, which spreads every group, is not.
"""

from __future__ import annotations

import math

from .windowed import windowed_min

__all__ = ["RttNoise"]


class RttNoise:
    """The RTT jitter and spread of a path, in seconds."""

    def __init__(self, *, jitter_gain: float, group_samples: int, window_groups: int):
        self._jitter_gain = jitter_gain
        self._group_samples = group_samples
        self._spreads = windowed_min(window_groups, window_groups)
        self._groups = 0
        self._last_rtt: float | None = None
        self._sum = 0.0
        self._count = 0
        self._min = math.inf
        self.jitter = 0.0
        """Mean change between consecutive RTT samples, in seconds."""

    @property
    def spread(self) -> float:
        """The lowest recent group's mean RTT above its minimum, in seconds (0
        before a group is complete)."""
        value = self._spreads.value
        return 0.0 if value is None else value

    def on_rtt(self, rtt: float, *, cruising: bool) -> None:
        """Add an RTT sample, in seconds; only ``cruising`` samples form groups."""
        if self._last_rtt is not None:
            self.jitter += (abs(rtt - self._last_rtt) - self.jitter) * self._jitter_gain
        self._last_rtt = rtt
        if cruising:
            self._sum += rtt
            self._count += 1
            self._min = min(self._min, rtt)

    def on_round_end(self) -> None:
        """Close the group if it has enough samples (call at each round's end)."""
        if self._count < self._group_samples:
            return
        self._spreads.update(self._sum / self._count - self._min, self._groups)
        self._groups += 1
        self._sum = 0.0
        self._count = 0
        self._min = math.inf
