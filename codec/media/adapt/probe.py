"""Probing: short bursts above the estimate that find capacity quickly.

Delay-based growth is slow on purpose (8% a second), so a call that starts at
300 kbit/s on a 5 Mbit/s path, or whose path recovers after a drop, would take
many seconds to use it. Like libwebrtc's probe controller, the
:class:`ProbeController` asks for clusters of probe datagrams sent at a
multiple of the estimate: at the start (3x and 6x), again at twice the result
while a probe keeps finding more, and every :data:`PERIODIC_PROBE_S` while the
estimate is below the maximum and the path is calm. :func:`probe_result`
reads a cluster's feedback: the rate it was received at, when enough of it
arrived. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from .history import PacketResult

__all__ = [
    "PERIODIC_PROBE_S",
    "ProbeCluster",
    "ProbeController",
    "probe_result",
]

INITIAL_MULTIPLIERS = (3.0, 6.0)
FURTHER_MULTIPLIER = 2.0
FURTHER_FRACTION = 0.7
"""Probe again when a result reached this fraction of what was probed."""
PERIODIC_PROBE_S = 5.0
VOID_RETRY_S = 1.0
"""A periodic cluster that measured nothing (its arrivals bunched by a busy
receiver, too few of them back) is tried again this soon, not a whole
period later..."""
VOID_RETRIES = 2
"""...this many times in a row; then the period again (a receiver that
bunches every cluster is not probed every second)."""
CLUSTER_DURATION_S = 0.03
"""A cluster lasts this long at its rate (twice libwebrtc's 15 ms: arrival times
taken by a Python event loop are only good to a few milliseconds)..."""
MIN_CLUSTER_PACKETS = 5
"""...and holds at least this many packets."""
MIN_SPREAD = 0.8
"""A cluster whose arrivals span less than this fraction of its sends is
not measured: a path does not bunch packets, a receiver's busy loop does."""
MIN_RECEIVED_FRACTION = 0.8
"""A cluster with fewer packets back than this says nothing."""
RESULT_TIMEOUT_S = 2.0
"""A cluster whose result has not come by then never will (its packets were
not all sent, or their feedback was lost)."""
PROBE_PACKET_BYTES = 1000
"""Size of one probe datagram (the probe header and padding) at most..."""
MIN_PROBE_PACKET_BYTES = 200
"""...and at least: a slow cluster has smaller packets, not fewer, so that
probing a slow link does not fill its queue."""


@dataclass(frozen=True, slots=True)
class ProbeCluster:
    """A burst to send: ``packets`` probe datagrams at ``rate_bps``."""

    cluster_id: int
    """8 bits, carried in each probe datagram."""
    rate_bps: float
    packets: int
    packet_bytes: int = PROBE_PACKET_BYTES


class ProbeController:
    """Decides when to probe and how fast; up to ``max_bps``."""

    def __init__(self, max_bps: float) -> None:
        self.max_bps = max_bps
        self.clusters_sent = 0
        self._next_id = 0
        self._started = False
        self._pending: dict[int, tuple[float, float]] = {}
        """Cluster id → (rate probed, when), for clusters awaiting their result."""
        self._last_probe_at = float("-inf")
        self._retry_at = float("inf")
        """When a periodic cluster may follow one that measured nothing."""
        self._voids = 0
        """Clusters in a row that measured nothing."""

    def start(
        self,
        estimate_bps: float,
        now: float,
        multipliers: tuple[float, ...] = INITIAL_MULTIPLIERS,
    ) -> list[ProbeCluster]:
        """The initial clusters (once), at ``multipliers`` times the estimate."""
        if self._started:
            return []
        self._started = True
        return [self._cluster(estimate_bps * m, now) for m in multipliers]

    def on_result(
        self,
        cluster_id: int,
        result_bps: float,
        now: float,
        further: bool | None = None,
    ) -> list[ProbeCluster]:
        """A cluster's result arrived; a further cluster when it found more
        (``further``; by default when the result reached
        :data:`FURTHER_FRACTION` of the rate probed), unless it found the
        maximum (a loopback path returns every cluster at the rate it was
        sent: without that stop, probes without end)."""
        pending = self._pending.pop(cluster_id, None)
        if pending is None:
            return []
        self._voids = 0
        if further is None:
            further = result_bps >= FURTHER_FRACTION * pending[0]
        if not further:
            return []
        if result_bps >= self.max_bps:
            return []
        if self._pending:
            return []  # a faster cluster of the same round is still out
        return [self._cluster(FURTHER_MULTIPLIER * result_bps, now)]

    def periodic(
        self,
        estimate_bps: float,
        calm: bool,
        now: float,
        rate_bps: float | None = None,
        interval_s: float = PERIODIC_PROBE_S,
        duration_s: float = CLUSTER_DURATION_S,
    ) -> list[ProbeCluster]:
        """A cluster at twice the estimate (or at ``rate_bps``) every
        ``interval_s`` while the path is ``calm`` (no overuse lately) and
        below the maximum, lasting ``duration_s``."""
        for cluster_id, (_, at) in list(self._pending.items()):
            if now - at > RESULT_TIMEOUT_S:
                del self._pending[cluster_id]
        if (
            not self._started
            or not calm
            or self._pending
            or (now - self._last_probe_at < interval_s and now < self._retry_at)
            or estimate_bps >= self.max_bps
        ):
            return []
        if rate_bps is None:
            rate_bps = FURTHER_MULTIPLIER * estimate_bps
        return [self._cluster(rate_bps, now, duration_s)]

    def _cluster(
        self, rate_bps: float, now: float, duration_s: float = CLUSTER_DURATION_S
    ) -> ProbeCluster:
        rate = min(rate_bps, 2 * self.max_bps)
        cluster_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFF
        cluster_bytes = rate * duration_s / 8
        packets = max(MIN_CLUSTER_PACKETS, round(cluster_bytes / PROBE_PACKET_BYTES))
        size = round(cluster_bytes / packets)
        size = min(max(size, MIN_PROBE_PACKET_BYTES), PROBE_PACKET_BYTES)
        self._pending[cluster_id] = (rate, now)
        self._last_probe_at = now
        self._retry_at = float("inf")
        self.clusters_sent += 1
        return ProbeCluster(cluster_id, rate, packets, size)

    def pending(self, cluster_id: int) -> bool:
        """Whether the result of ``cluster_id`` is still awaited."""
        return cluster_id in self._pending

    def void(self, cluster_id: int, now: float) -> None:
        """``cluster_id`` came back and measured nothing (:func:`probe_result`
        gave None): the next periodic cluster may go :data:`VOID_RETRY_S`
        from ``now`` rather than a period after this one, up to
        :data:`VOID_RETRIES` times in a row."""
        if self._pending.pop(cluster_id, None) is None:
            return
        self._voids += 1
        if self._voids <= VOID_RETRIES:
            self._retry_at = now + VOID_RETRY_S


def probe_result(results: list[PacketResult]) -> float | None:
    """The rate (bits per second) one cluster's packets were received at, no
    more than they were sent at; None when too few arrived to say."""
    arrived = [r for r in results if r.arrived_at is not None]
    if len(results) < MIN_CLUSTER_PACKETS or len(arrived) < max(
        2, MIN_RECEIVED_FRACTION * len(results)
    ):
        return None
    by_send = sorted(results, key=lambda r: r.sent_at)
    send_span = by_send[-1].sent_at - by_send[0].sent_at
    by_arrival = sorted(arrived, key=lambda r: r.arrived_at or 0.0)
    first, last = by_arrival[0].arrived_at, by_arrival[-1].arrived_at
    assert first is not None and last is not None
    receive_span = last - first
    if receive_span <= 0 or send_span <= 0:
        return None
    if receive_span < MIN_SPREAD * send_span:
        # Arrivals far more bunched than the sends: the receiver read them in
        # one go (a busy event loop), which says nothing about the path.
        return None
    sent_bps = sum(r.size for r in by_send[:-1]) * 8 / send_span
    received_bps = sum(r.size for r in by_arrival[1:]) * 8 / receive_span
    return min(sent_bps, received_bps)
