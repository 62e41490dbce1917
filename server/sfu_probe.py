"""The SFU's probes: padding sent to a member at a cluster's rate, so that
the SFU's estimate of the path to it (:class:`~codec.media.adapt.ForwardedPath`)
finds what the path carries without waiting for publishers to fill it.

The forwarder's hot path has no timers: it runs when datagrams arrive. A
probe cluster must leave at its own rate (its result is the rate it was
received at over the time it was sent), so :class:`ProbeSender` keeps the
clusters under way and one loop timer for all of them, armed only while a
cluster is under way: a probe every few seconds per constrained path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from codec.media.adapt import ProbeCluster

from .sfu_hop import Hop

__all__ = ["MAX_QUEUED_FOR_PROBE", "ProbeSender"]

MAX_QUEUED_FOR_PROBE = 8
"""A probe datagram is not sent to a member whose datagram queue holds more
than this (the path is busy: the probe would measure our queue); the
cluster's result then says nothing and it is forgotten."""


class _Cluster:
    __slots__ = ("cluster", "remaining", "next_at")

    def __init__(self, cluster: ProbeCluster, now: float) -> None:
        self.cluster = cluster
        self.remaining = cluster.packets
        self.next_at = now


class ProbeSender:
    """Sends probe clusters on SFU hops, each at its rate.

    ``clock`` returns seconds (the forwarder's); ``call_later(delay, callback)``
    schedules ``callback`` after ``delay`` seconds (the loop's) and returns a
    handle with ``cancel()``.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        call_later: Callable[[float, Callable[[], None]], Any],
    ) -> None:
        self.clock = clock
        self.call_later = call_later
        self.clusters_sent = 0
        self.packets_sent = 0
        self.packets_skipped = 0
        """Probe datagrams not sent because the member's queue was busy."""
        self._under_way: dict[Hop, deque[_Cluster]] = {}
        self._timer: Any = None

    def add(self, hop: Hop, clusters: Iterable[ProbeCluster], now: float) -> None:
        """Send ``clusters`` to ``hop``'s member, one after the other, from ``now``."""
        queued = self._under_way.setdefault(hop, deque())
        for cluster in clusters:
            start = queued[-1].next_at if queued else now
            queued.append(_Cluster(cluster, start))
            self.clusters_sent += 1
        if not queued:
            del self._under_way[hop]
            return
        self._send_due()

    def remove(self, hop: Hop) -> None:
        """The member left: nothing more for it."""
        self._under_way.pop(hop, None)

    def close(self) -> None:
        """Stop: nothing more is sent."""
        self._under_way.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send_due(self) -> None:
        now = self.clock()
        earliest: float | None = None
        for hop, queued in list(self._under_way.items()):
            while queued:
                head = queued[0]
                if head.next_at > now:
                    break
                cluster = head.cluster
                if hop.queued > MAX_QUEUED_FOR_PROBE:
                    self.packets_skipped += 1
                else:
                    hop.send_probe(cluster.cluster_id, cluster.packet_bytes, now)
                    self.packets_sent += 1
                head.remaining -= 1
                head.next_at += cluster.packet_bytes * 8 / cluster.rate_bps
                if head.remaining <= 0:
                    queued.popleft()
                    if queued:
                        queued[0].next_at = max(queued[0].next_at, head.next_at)
            if not queued:
                del self._under_way[hop]
                continue
            if earliest is None or queued[0].next_at < earliest:
                earliest = queued[0].next_at
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if earliest is not None:
            self._timer = self.call_later(max(earliest - now, 0.0), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._send_due()
