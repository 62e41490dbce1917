"""A sender, a netsim bottleneck and an ACK path, on a virtual clock.

Drives any aioquic congestion controller the way aioquic's recovery does (one
callback per sent, acknowledged and lost packet; loss by packet and time
threshold; pacing at ``congestion_window / smoothed_rtt``), without QUIC's
framing or crypto, so a minute of a link takes a fraction of a second. The data
direction is a netsim ``Link``; ACKs come back after a fixed delay and are never
lost. Each packet is acknowledged on its own.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aioquic.quic.congestion.base import QuicCongestionControl
from aioquic.quic.packet import QuicPacketType
from aioquic.quic.packet_builder import QuicSentPacket
from aioquic.tls import Epoch

from netsim import Link, LinkConfig, ScheduleStep

MSS = 1280
PACKET_THRESHOLD = 3
TIME_THRESHOLD = 9 / 8
PTO_RTTS = 3
"""Without an ACK for this many smoothed RTTs, what is in flight is given up as
aioquic's probe timeout does (expired, not a congestion event)."""
TICK_S = 0.005
"""Virtual seconds between the sender's loss-timer checks and the samples."""


@dataclass(frozen=True)
class _Datagram:
    packet_number: int
    size: int

    def __len__(self) -> int:
        return self.size


@dataclass
class Sample:
    """The state of the run at one tick."""

    time: float
    window: int
    """The controller's congestion window, in bytes."""
    delivered: int
    """Bytes acknowledged so far."""
    queue_delay_s: float
    """Bytes waiting at the bottleneck over its rate now, in seconds."""


@dataclass
class BottleneckSim:
    """One flow through one bottleneck.

    ``link`` is the data direction (rate, loss, queue, delay); ``ack_delay_s`` is
    the return path. ``app_rate_bps(now)`` limits what the application offers
    (None: a bulk sender that always has data). ``ack_noise_s`` delays each ACK
    by a further exponential time of that mean, in order (a loaded host answering
    late).
    """

    cc: QuicCongestionControl
    link: LinkConfig
    ack_delay_s: float
    seed: int = 1
    schedule: Iterable[ScheduleStep] = ()
    app_rate_bps: Callable[[float], float | None] = lambda now: None
    now: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    lost_packets: int = 0
    ack_noise_s: float = 0.0

    def __post_init__(self) -> None:
        self._link: Link[_Datagram] = Link(
            self.link, seed=self.seed, schedule=self.schedule
        )
        self._outstanding: dict[int, QuicSentPacket] = {}
        self._acks: list[tuple[float, int]] = []
        self._next_number = 0
        self._largest_acked = -1
        self._srtt: float | None = None
        self._latest_rtt = 0.0
        self._next_send = 0.0
        self._app_credit = 0.0
        self._credit_time = 0.0
        self._next_tick = 0.0
        self._last_ack = 0.0
        self.delivered = 0
        self._noise_rng = random.Random(self.seed + 7)
        self._ack_due = 0.0

    def queue_delay_s(self) -> float:
        """What waits at the bottleneck now, in seconds at its current rate."""
        rate = self._link.config.rate_bps
        return self._link.stats.queued_bytes * 8 / rate if rate else 0.0

    def run_until(self, end: float) -> None:
        """Advance the virtual clock to ``end``, moving every packet on the way."""
        while True:
            self._step()
            wakeups = [self._next_tick, self._send_time()]
            link_time = self._link.next_wakeup()
            if link_time is not None:
                wakeups.append(link_time)
            if self._acks:
                wakeups.append(self._acks[0][0])
            upcoming = min(w for w in wakeups if w is not None)
            if upcoming > end:
                self.now = end
                return
            self.now = max(self.now, upcoming)

    def window_mean(self, start: float, end: float) -> float:
        """The mean congestion window between two times, in bytes."""
        windows = [s.window for s in self.samples if start <= s.time <= end]
        return sum(windows) / len(windows)

    def goodput_bps(self, start: float, end: float) -> float:
        """Bits acknowledged per second between two times."""
        inside = [s for s in self.samples if start <= s.time <= end]
        return (
            (inside[-1].delivered - inside[0].delivered)
            * 8
            / (inside[-1].time - inside[0].time)
        )

    def queue_delays(self, start: float, end: float) -> list[float]:
        """The sampled queueing delays between two times, in seconds."""
        return [s.queue_delay_s for s in self.samples if start <= s.time <= end]

    def _send_time(self) -> float | None:
        if self.cc.bytes_in_flight + MSS > self.cc.congestion_window:
            return None
        rate = self.app_rate_bps(self.now)
        if rate is not None and self._app_credit < MSS:
            return self.now + (MSS - self._app_credit) * 8 / rate
        return max(self._next_send, self.now)

    def _step(self) -> None:
        now = self.now
        rate = self.app_rate_bps(now)
        if rate is not None:
            self._app_credit = min(
                self._app_credit + (now - self._credit_time) * rate / 8, 2 * MSS
            )
        self._credit_time = now
        for datagram in self._link.receive(now):
            late = (
                self._noise_rng.expovariate(1 / self.ack_noise_s)
                if self.ack_noise_s
                else 0.0
            )
            # In order, as a stalled host answers: a late ACK holds up the next.
            self._ack_due = max(self._ack_due, now + self.ack_delay_s + late)
            heapq.heappush(self._acks, (self._ack_due, datagram.packet_number))
        while self._acks and self._acks[0][0] <= now:
            self._on_ack(heapq.heappop(self._acks)[1])
        if now >= self._next_tick:
            self._detect_loss()
            self._check_probe_timeout()
            self.samples.append(
                Sample(
                    now, self.cc.congestion_window, self.delivered, self.queue_delay_s()
                )
            )
            self._next_tick = now + TICK_S
        send_time = self._send_time()
        while send_time is not None and send_time <= now:
            self._send()
            send_time = self._send_time()

    def _send(self) -> None:
        now = self.now
        packet = QuicSentPacket(
            epoch=Epoch.ONE_RTT,
            in_flight=True,
            is_ack_eliciting=True,
            is_crypto_packet=False,
            packet_number=self._next_number,
            packet_type=QuicPacketType.ONE_RTT,
            sent_time=now,
            sent_bytes=MSS,
        )
        self._next_number += 1
        self._outstanding[packet.packet_number] = packet
        self.cc.on_packet_sent(packet=packet)
        self._link.send(_Datagram(packet.packet_number, MSS), now)
        if self.app_rate_bps(now) is not None:
            self._app_credit -= MSS
        if self._srtt is not None:
            # aioquic's pacer: the window spread over the smoothed RTT, with a
            # bucket of a quarter window (2 to 16 packets) for bursts.
            window = self.cc.congestion_window
            rate = window / self._srtt
            bucket_s = max(2 * MSS, min(window // 4, 16 * MSS)) / rate
            self._next_send = max(self._next_send, now - bucket_s) + MSS / rate

    def _on_ack(self, number: int) -> None:
        packet = self._outstanding.pop(number, None)
        if packet is None:
            return
        now = self.now
        self._last_ack = now
        self.delivered += packet.sent_bytes
        self.cc.on_packet_acked(now=now, packet=packet)
        if number > self._largest_acked:
            self._largest_acked = number
            rtt = now - (packet.sent_time or 0.0)
            self._latest_rtt = rtt
            self._srtt = rtt if self._srtt is None else 7 / 8 * self._srtt + rtt / 8
            self.cc.on_rtt_measurement(now=now, rtt=rtt)
        self._detect_loss()

    def _check_probe_timeout(self) -> None:
        if (
            self._srtt is None
            or not self._outstanding
            or self.now - max(self._last_ack, self._oldest_sent())
            < PTO_RTTS * self._srtt
        ):
            return
        expired = list(self._outstanding.values())
        self._outstanding.clear()
        self._largest_acked = max(self._largest_acked, expired[-1].packet_number)
        self.cc.on_packets_expired(packets=expired)
        self._last_ack = self.now

    def _oldest_sent(self) -> float:
        return next(iter(self._outstanding.values())).sent_time or 0.0

    def _detect_loss(self) -> None:
        if self._srtt is None:
            return
        loss_delay = TIME_THRESHOLD * max(self._srtt, self._latest_rtt)
        lost = []
        for number, packet in self._outstanding.items():
            if number > self._largest_acked:
                break
            if (
                number <= self._largest_acked - PACKET_THRESHOLD
                or (packet.sent_time or 0.0) <= self.now - loss_delay
            ):
                lost.append(packet)
        if lost:
            for packet in lost:
                del self._outstanding[packet.packet_number]
            self.lost_packets += len(lost)
            self.cc.on_packets_lost(now=self.now, packets=lost)


class SharedBottleneck:
    """Several :class:`BottleneckSim` flows through one netsim ``Link``: each
    flow's ``_link`` is a :meth:`tap` that sends into the shared link and
    receives only its own datagrams. Advance them with :meth:`run_until`."""

    def __init__(self, link: LinkConfig, seed: int = 1) -> None:
        self.link: Link[_Owned] = Link(link, seed=seed)
        self.flows: list[BottleneckSim] = []
        self._inboxes: list[list[Any]] = []

    def add(self, sim: BottleneckSim) -> BottleneckSim:
        """Put ``sim`` on the shared link (replacing its own)."""
        sim._link = self.tap()  # type: ignore[assignment]
        self.flows.append(sim)
        return sim

    def tap(self) -> _Tap:
        """A view of the shared link for one more flow (what it sends must
        have a length: bytes, or a datagram)."""
        self._inboxes.append([])
        return _Tap(self, len(self._inboxes) - 1)

    def run_until(self, end: float, step_s: float = 0.001) -> None:
        now = self.flows[0].now
        while now < end:
            now = min(end, round(now + step_s, 6))
            for flow in self.flows:
                flow.run_until(now)

    def clock(self, now: float) -> float:
        """``now``, or the shared link's time if a flow is behind it."""
        self._latest = max(getattr(self, "_latest", 0.0), now)
        return self._latest

    def _receive(self, flow: int, now: float) -> list[Any]:
        for owned in self.link.receive(self.clock(now)):
            self._inboxes[owned.flow].append(owned.datagram)
        mine, self._inboxes[flow] = self._inboxes[flow], []
        return mine


@dataclass(frozen=True)
class _Owned:
    flow: int
    datagram: Any

    def __len__(self) -> int:
        return len(self.datagram)


class _Tap:
    def __init__(self, shared: SharedBottleneck, flow: int) -> None:
        self._shared = shared
        self._flow = flow

    @property
    def config(self) -> LinkConfig:
        return self._shared.link.config

    @property
    def stats(self) -> object:
        return self._shared.link.stats

    def send(self, datagram: Any, now: float) -> None:
        # The flows take turns: one may be a few microseconds behind the other.
        self._shared.link.send(_Owned(self._flow, datagram), self._shared.clock(now))

    def receive(self, now: float) -> list[Any]:
        return self._shared._receive(self._flow, now)

    def next_wakeup(self) -> float | None:
        return self._shared.link.next_wakeup()
