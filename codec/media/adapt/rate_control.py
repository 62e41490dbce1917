"""Turning the delay detector's verdicts into a rate: AIMD, as in
draft-ietf-rmcat-gcc section 5.5 and libwebrtc's ``AimdRateControl``.

- **Overuse**: decrease to :data:`BETA` times the rate the receiver actually
  got (the acknowledged rate), at most once per round trip, then hold.
- **Underuse**: hold (the queue is draining; sending more would refill it).
- **Normal**: increase, multiplicatively (8% per second) while far from the
  capacity last seen at a decrease, additively (about one packet per response
  time) near it up to :data:`CAPACITY_CEILING` of it, and there hold; never
  above 1.25 times the acknowledged rate, so the estimate cannot run away
  from what the path has shown it carries. A capacity that rose is found by
  a gentle probe at the ceiling (the estimator's), not by growing into the
  queue.

Pure: every call takes ``now`` (seconds).
"""

from __future__ import annotations

import math
from enum import Enum

from .trendline import Usage

__all__ = ["BETA", "AimdRateControl", "RateState"]

BETA = 0.85
"""Decrease factor on overuse (the draft's 0.85)."""
MAX_CUT = 0.5
"""No decrease takes the rate below this fraction of what it was."""
MULTIPLICATIVE_GAIN_PER_S = 1.08
"""Growth per second far from the last known capacity."""
ACKED_HEADROOM = 1.25
"""The estimate grows no further than this many times the acknowledged rate
(+10 kbit/s): an encoder that undershoots its target must not let the
estimate run ahead of what the path has shown it carries (probes find more)."""
ACKED_SLACK_BPS = 10_000
PACKET_BITS = 1200 * 8
"""An average media packet, for the additive increase."""
MIN_ADDITIVE_BPS_PER_S = 4_000
RESPONSE_TIME_EXTRA_S = 0.1
"""Response time = round trip + this (feedback interval and encoder reaction)."""
CONVERGENCE_STDDEVS = 3.0
"""Near the last capacity means within this many standard deviations of it."""
CAPACITY_CEILING = 0.95
"""Near a known capacity (what arrived at the last decreases), additive
growth stops at this fraction of it. Growing on until the delay detector
sees the queue is AIMD's sawtooth, and a trendline sees a slow ramp late:
in RFC 8867's 0.6 Mbit/s phase (``bench/adaptation.py``) each tooth grew to
8% over the capacity while x264 spent its saved budget on top, and the
picture was 60-100 ms later than the phase's usual for a third of a second
every 4-5 s. Under the capacity the encoder's own noise drains instead of
queueing, and the rate holds until the estimator's gentle probe
(``CEILING_PROBE``) shows the path carries more."""


class RateState(Enum):
    HOLD = "hold"
    INCREASE = "increase"
    DECREASE = "decrease"


class AimdRateControl:
    """The delay-based rate (bits per second), moved by :meth:`update`."""

    def __init__(self, start_bps: float, min_bps: float, max_bps: float) -> None:
        self.rate_bps = float(start_bps)
        self.min_bps = float(min_bps)
        self.max_bps = float(max_bps)
        self.state = RateState.HOLD
        self.rtt_s = 0.1
        self.decreases = 0
        self._updated_at: float | None = None
        self.decreased_at = float("-inf")
        """When (seconds) the rate was last cut."""
        self._capacity_mean_kbps: float | None = None
        self._capacity_var = 0.4
        """Variance of the capacity estimate, normalised by its mean (libwebrtc's)."""

    @property
    def capacity_known(self) -> bool:
        """Whether the rate grows near a capacity seen at its last decreases
        (additively); False while it grows multiplicatively, the path having
        carried more than it did then, or before any decrease."""
        return self._capacity_mean_kbps is not None

    @property
    def at_ceiling(self) -> bool:
        """Whether the rate holds at :data:`CAPACITY_CEILING` of a known
        capacity (growth would go past it)."""
        mean = self._capacity_mean_kbps
        return mean is not None and self.rate_bps >= 0.99 * self._ceiling_bps(mean)

    def capacity_rose(self, rate_bps: float) -> bool | None:
        """The path carried ``rate_bps``: when that is past the capacity
        known (beyond its spread), forget it and grow multiplicatively
        (True); False when within it; None when no capacity is known."""
        mean = self._capacity_mean_kbps
        if mean is None:
            return None
        if rate_bps / 1000 <= mean + self._spread_kbps(mean):
            return False
        self._capacity_mean_kbps = None
        return True

    @staticmethod
    def _ceiling_bps(mean_kbps: float) -> float:
        return CAPACITY_CEILING * mean_kbps * 1000

    def set_rate(self, rate_bps: float, now: float) -> None:
        """Jump to ``rate_bps`` (a probe found more), clamped to the limits."""
        self.rate_bps = min(max(rate_bps, self.min_bps), self.max_bps)
        self._updated_at = now

    def update(self, usage: Usage, acked_bps: float | None, now: float) -> float:
        """Apply one detector verdict at ``now``; the new rate."""
        elapsed = 0.0 if self._updated_at is None else now - self._updated_at
        elapsed = min(max(elapsed, 0.0), 1.0)
        self._updated_at = now
        if usage is Usage.OVERUSE:
            self.state = RateState.DECREASE
        elif usage is Usage.UNDERUSE:
            self.state = RateState.HOLD
        elif self.state is not RateState.INCREASE:
            self.state = RateState.INCREASE
        if self.state is RateState.INCREASE:
            self._increase(acked_bps, elapsed)
        elif self.state is RateState.DECREASE:
            self._decrease(acked_bps, now)
        self.rate_bps = min(max(self.rate_bps, self.min_bps), self.max_bps)
        return self.rate_bps

    def _increase(self, acked_bps: float | None, elapsed: float) -> None:
        mean = self._capacity_mean_kbps
        if acked_bps is not None and mean is not None:
            if acked_bps / 1000 > mean + self._spread_kbps(mean):
                self._capacity_mean_kbps = None  # the capacity went up: forget
                mean = None
        if mean is not None:
            # About one average packet per response time (libwebrtc's rule): a
            # frame at 30 fps split into packets of at most PACKET_BITS.
            frame_bits = self.rate_bps / 30
            packet_bits = frame_bits / math.ceil(frame_bits / PACKET_BITS)
            response_s = self.rtt_s + RESPONSE_TIME_EXTRA_S
            per_s = max(MIN_ADDITIVE_BPS_PER_S, packet_bits / response_s)
            new = self.rate_bps + per_s * elapsed
            new = min(new, max(self.rate_bps, self._ceiling_bps(mean)))
        else:
            new = self.rate_bps * MULTIPLICATIVE_GAIN_PER_S**elapsed
        if acked_bps is not None:
            # An app-limited sender keeps its rate, but grows no further than
            # what the path has shown it carries.
            limit = ACKED_HEADROOM * acked_bps + ACKED_SLACK_BPS
            new = min(new, max(self.rate_bps, limit))
        self.rate_bps = new

    def drain(self, acked_bps: float | None, queue_s: float, now: float) -> float:
        """A queue of ``queue_s`` seconds stands at the bottleneck: go below
        what arrives by enough to drain it in about a second (at most by
        half), then hold. Counts as a decrease; at most one per round trip."""
        self.state = RateState.HOLD
        if now - self.decreased_at < self.rtt_s or acked_bps is None:
            return self.rate_bps
        new = max(acked_bps * max(0.5, min(BETA, 1 - queue_s)), MAX_CUT * self.rate_bps)
        if new < self.rate_bps:
            self.rate_bps = max(new, self.min_bps)
            self.decreased_at = now
            self.decreases += 1
            self._on_capacity(acked_bps / 1000)
        self._updated_at = now
        return self.rate_bps

    def _decrease(self, acked_bps: float | None, now: float) -> None:
        self.state = RateState.HOLD
        if now - self.decreased_at < self.rtt_s:
            return
        base = acked_bps if acked_bps is not None else self.rate_bps
        # At most halve per cut: the acknowledged rate of a sender that was
        # starting or skipping frames is far below what the path carries.
        new = max(BETA * base, MAX_CUT * self.rate_bps)
        if new >= self.rate_bps:
            return
        self.rate_bps = new
        self.decreased_at = now
        self.decreases += 1
        self._on_capacity(base / 1000)

    def _on_capacity(self, kbps: float) -> None:
        mean = self._capacity_mean_kbps
        if mean is None or kbps < mean - self._spread_kbps(mean):
            # A cut far below the capacity seen before is a new capacity (as
            # libwebrtc resets its link capacity estimate): averaged with
            # the old one, it would keep the rate growing additively, about
            # a packet per response time, long after the capacity came back.
            self._capacity_mean_kbps = kbps
            return
        alpha = 0.05
        mean = (1 - alpha) * mean + alpha * kbps
        norm = max(mean, 1.0)
        self._capacity_var = (1 - alpha) * self._capacity_var + alpha * (
            (mean - kbps) ** 2 / norm
        )
        self._capacity_var = min(max(self._capacity_var, 0.4), 2.5)
        self._capacity_mean_kbps = mean

    def _spread_kbps(self, mean_kbps: float) -> float:
        """How far (kbit/s) from the capacity last seen is still near it."""
        return CONVERGENCE_STDDEVS * math.sqrt(self._capacity_var * mean_kbps)
