"""One SFU → subscriber hop on a virtual clock, for the tests of the SFU's
path estimate: datagrams numbered per hop and sent through a netsim
bottleneck, the subscriber's feedback back after 25 ms, and the probe
clusters a :class:`~codec.media.adapt.ForwardedPath` asks for, sent at their
rate one after the other. The caller's loop keeps the clock and decides what
is sent and what the path is told."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator

from codec.media import ProbePacket, VideoPacketizer, parse_packet
from codec.media.adapt import ArrivalRecorder, ForwardedPath
from netsim import Link

FEEDBACK_DELAY_S = 0.025


class ForwardedHop:
    """``link`` carries what is sent to the subscriber; ``path`` is told of
    every datagram sent (its feedback is the caller's to hand over)."""

    def __init__(self, link: Link[bytes], path: ForwardedPath) -> None:
        self.link = link
        self.path = path
        self.recorder = ArrivalRecorder()
        self.packetizer = VideoPacketizer(7)
        self.worst = 0.0
        """Highest one-way delay of an arrival since the caller last reset it."""
        self._sent_at: dict[int, float] = {}
        self._seq = 0
        self._count = 0
        self._feedback: list[tuple[float, int, bytes]] = []
        self._probes: deque[tuple[float, int, int]] = deque()
        """(when, cluster id, bytes) of probe datagrams still to send."""

    def send(self, data: bytearray, now: float, cluster: int | None = None) -> None:
        self.path.estimator.on_sent(self._seq, len(data), now, cluster)
        data[2:4] = self._seq.to_bytes(2, "big")
        self._sent_at[self._seq] = now
        self._seq = (self._seq + 1) & 0xFFFF
        self.link.send(bytes(data), now)

    def send_frame(self, rate_bps: float, fps: float, now: float) -> None:
        """One video frame's worth of ``rate_bps``."""
        payload = bytes(int(rate_bps / fps / 8))
        for packet in self.packetizer.packetize(payload, 0, False):
            self.send(bytearray(packet.serialize()), now)

    def add_probes(self, clusters: Iterable, now: float) -> None:
        """Queue the clusters' datagrams behind those still to send."""
        at = max(now, self._probes[-1][0]) if self._probes else now
        for cluster in clusters:
            for _ in range(cluster.packets):
                self._probes.append((at, cluster.cluster_id, cluster.packet_bytes))
                at += cluster.packet_bytes * 8 / cluster.rate_bps

    def step(self, now: float) -> Iterator:
        """Send the probe datagrams due, take what arrived, and yield the
        feedback reports that reach the SFU now."""
        while self._probes and self._probes[0][0] <= now:
            _, cluster_id, size = self._probes.popleft()
            probe = ProbePacket(cluster_id, 0, size - 4)
            self.send(bytearray(probe.serialize()), now, cluster_id)
        for data in self.link.receive(now):
            arrived = int.from_bytes(data[2:4], "big")
            self.recorder.on_packet(arrived, now)
            self.worst = max(self.worst, now - self._sent_at.pop(arrived))
        if self.recorder.due(now):
            for report in self.recorder.feedback(now):
                self._count += 1
                due = now + FEEDBACK_DELAY_S
                heapq.heappush(self._feedback, (due, self._count, report.serialize()))
        while self._feedback and self._feedback[0][0] <= now:
            yield parse_packet(heapq.heappop(self._feedback)[2])
