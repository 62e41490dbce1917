"""The delay-based half of the estimate: is the path's queue growing?

As in draft-ietf-rmcat-gcc and libwebrtc's trendline estimator: packets are
grouped into bursts by send time (:data:`BURST_S`); for each pair of
consecutive groups the one-way delay gradient (arrival spacing minus send
spacing) is accumulated, smoothed, and a least-squares line is fitted over
the last :data:`WINDOW` points. Its slope, scaled, is compared with a threshold
that adapts to the noise (fast up, slow down), and the detector says
:attr:`Usage.OVERUSE` when the queue keeps growing, :attr:`Usage.UNDERUSE` when
it drains. Pure: times are the packets' own (seconds).
"""

from __future__ import annotations

from collections import deque
from enum import Enum

from .history import PacketResult

__all__ = ["BURST_S", "WINDOW", "DelayDetector", "Usage"]

BURST_S = 0.005
"""Packets sent within this long of a group's first (seconds) are one group:
a paced burst, whose spacing inside says nothing about the queue."""
ARRIVAL_BURST_S = 0.005
"""A packet that arrives within this long (seconds) of its group's last and
sooner after it than it was sent joins the group (libwebrtc's burst rule):
a receiver that stalled reads what waited in its socket at once, and the
stall is not the path's queue..."""
MAX_BURST_S = 0.1
"""...as long as the group spans no more than this (seconds) of send time."""
WINDOW = 20
"""Points of the trendline fit (libwebrtc's default)."""
SMOOTHING = 0.9
"""Weight of the previous smoothed accumulated delay."""
THRESHOLD_GAIN = 4.0
"""Scale of the slope before it meets the threshold."""
MAX_DELTAS = 60
"""The slope is scaled by the number of deltas seen, at most this many."""
INITIAL_THRESHOLD_MS = 12.5
MIN_THRESHOLD_MS, MAX_THRESHOLD_MS = 6.0, 600.0
K_UP, K_DOWN = 0.0087, 0.039
"""Adaptation speed of the threshold (per ms) above and below it (the draft's
values: it rises slowly so that a competing flow's queue does not starve us,
and falls quickly back to sensitivity)."""
MAX_ADAPT_OFFSET_MS = 15.0
"""A trend this far past the threshold is a real change: no adaptation."""
OVERUSE_TIME_MS = 10.0
"""How long the trend must stay over the threshold before it is overuse."""


class Usage(Enum):
    """What the delay detector concludes about the path."""

    NORMAL = "normal"
    OVERUSE = "overuse"
    UNDERUSE = "underuse"


class _Group:
    __slots__ = ("first_sent", "last_sent", "last_arrival", "size")

    def __init__(self, sent: float, arrival: float, size: int) -> None:
        self.first_sent = sent
        self.last_sent = sent
        self.last_arrival = arrival
        self.size = size


class DelayDetector:
    """Trendline filter plus adaptive-threshold overuse detector.

    Feed :meth:`update` the results of each feedback packet (lost packets are
    ignored); read :attr:`usage`.
    """

    def __init__(self) -> None:
        self.usage = Usage.NORMAL
        self.threshold_ms = INITIAL_THRESHOLD_MS
        self.trend = 0.0
        """Last fitted slope (ms of delay per ms)."""
        self.modified_trend = 0.0
        """The slope as compared with the threshold (ms)."""
        self._current: _Group | None = None
        self._previous: _Group | None = None
        self._deltas = 0
        self._accumulated_ms = 0.0
        self._smoothed_ms = 0.0
        self._first_arrival: float | None = None
        self._points: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self._over_ms = -1.0
        self._over_count = 0
        self._previous_trend = 0.0
        self._threshold_updated_ms: float | None = None

    def update(self, results: list[PacketResult]) -> Usage:
        """Take one feedback's results (in sequence order); the usage after."""
        for result in results:
            if result.arrived_at is None:
                continue
            group = self._current
            if group is None:
                self._current = _Group(result.sent_at, result.arrived_at, result.size)
                continue
            if result.sent_at < group.first_sent:
                continue  # reordered behind a later group: no information
            if result.sent_at - group.first_sent <= BURST_S or _in_burst(group, result):
                group.last_sent = max(group.last_sent, result.sent_at)
                group.last_arrival = max(group.last_arrival, result.arrived_at)
                group.size += result.size
                continue
            if self._previous is not None:
                self._on_deltas(
                    (group.last_arrival - self._previous.last_arrival) * 1000,
                    (group.last_sent - self._previous.last_sent) * 1000,
                    group.last_arrival * 1000,
                )
            self._previous = group
            self._current = _Group(result.sent_at, result.arrived_at, result.size)
        return self.usage

    def _on_deltas(self, arrival_ms: float, send_ms: float, now_ms: float) -> None:
        self._deltas = min(self._deltas + 1, 1000)
        self._accumulated_ms += arrival_ms - send_ms
        self._smoothed_ms = (
            SMOOTHING * self._smoothed_ms + (1 - SMOOTHING) * self._accumulated_ms
        )
        if self._first_arrival is None:
            self._first_arrival = now_ms
        self._points.append((now_ms - self._first_arrival, self._smoothed_ms))
        if len(self._points) == WINDOW:
            slope = _slope(self._points)
            if slope is not None:
                self.trend = slope
        self._detect(send_ms, now_ms)

    def _detect(self, send_ms: float, now_ms: float) -> None:
        if self._deltas < 2:
            self.usage = Usage.NORMAL
            return
        modified = min(self._deltas, MAX_DELTAS) * self.trend * THRESHOLD_GAIN
        self.modified_trend = modified
        if modified > self.threshold_ms:
            if self._over_ms < 0:
                self._over_ms = send_ms / 2
            else:
                self._over_ms += send_ms
            self._over_count += 1
            if (
                self._over_ms > OVERUSE_TIME_MS
                and self._over_count > 1
                and self.trend >= self._previous_trend
            ):
                self._over_ms = 0.0
                self._over_count = 0
                self.usage = Usage.OVERUSE
        elif modified < -self.threshold_ms:
            self._over_ms = -1.0
            self._over_count = 0
            self.usage = Usage.UNDERUSE
        else:
            self._over_ms = -1.0
            self._over_count = 0
            self.usage = Usage.NORMAL
        self._previous_trend = self.trend
        self._adapt_threshold(modified, now_ms)

    def _adapt_threshold(self, modified: float, now_ms: float) -> None:
        if self._threshold_updated_ms is None:
            self._threshold_updated_ms = now_ms
        excess = abs(modified) - self.threshold_ms
        if excess > MAX_ADAPT_OFFSET_MS:
            self._threshold_updated_ms = now_ms
            return
        k = K_DOWN if abs(modified) < self.threshold_ms else K_UP
        elapsed = min(now_ms - self._threshold_updated_ms, 100.0)
        self.threshold_ms += k * excess * elapsed
        self.threshold_ms = min(
            max(self.threshold_ms, MIN_THRESHOLD_MS), MAX_THRESHOLD_MS
        )
        self._threshold_updated_ms = now_ms


def _in_burst(group: _Group, result: PacketResult) -> bool:
    """Whether ``result`` arrived in a burst with ``group`` (read at once
    after the receiver or a hop before it held both)."""
    assert result.arrived_at is not None
    arrival_delta = result.arrived_at - group.last_arrival
    return (
        arrival_delta <= ARRIVAL_BURST_S
        and arrival_delta < result.sent_at - group.last_sent
        and result.sent_at - group.first_sent < MAX_BURST_S
    )


def _slope(points: deque[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``points``, None when x does not vary."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in points)
    denominator = sum((x - mean_x) ** 2 for x, _ in points)
    return numerator / denominator if denominator else None
