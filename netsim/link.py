"""One direction of an emulated path: a sans-I/O link on the caller's clock.

``Link`` is the core of netsim. Feed it packets with ``send(packet, now)``, collect
what comes out with ``receive(now)``, and call back at ``next_wakeup()``. It never
reads a clock or touches a socket, so the same object runs on a virtual clock in
tests (``QuicPair``) and on ``loop.time()`` in the UDP proxy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sized
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from ._random import stage_rng
from .config import LinkConfig, ScheduleStep, validate_schedule
from .stages import Bottleneck, DelayLine, Duplication, Loss

__all__ = ["Link", "LinkStats"]

P = TypeVar("P", bound=Sized)


@dataclass(frozen=True)
class LinkStats:
    """What a link has done since it was created; a snapshot.

    Every packet is accounted for: ``packets_in + duplicated`` equals
    ``packets_out + dropped + queued_packets + in_flight``.
    """

    packets_in: int
    """Packets given to ``send``."""
    bytes_in: int
    """Bytes given to ``send``."""
    packets_out: int
    """Packets returned by ``receive``."""
    bytes_out: int
    """Bytes returned by ``receive``."""
    duplicated: int
    """Extra copies made by the duplication stage."""
    dropped_blackhole: int
    """Packets dropped because the link was a blackhole."""
    dropped_loss: int
    """Packets dropped by the loss stage (Bernoulli or Gilbert-Elliott)."""
    dropped_queue: int
    """Packets dropped because the bottleneck queue was full."""
    reordered: int
    """Packets released ahead of the delay line (netem's reorder)."""
    queued_packets: int
    """Packets waiting in the bottleneck queue now."""
    queued_bytes: int
    """Bytes waiting in the bottleneck queue now."""
    max_queued_packets: int
    """Most packets ever waiting in the bottleneck queue at once."""
    max_queued_bytes: int
    """Most bytes ever waiting in the bottleneck queue at once."""
    queue_delay_mean_s: float
    """Mean time packets waited in the bottleneck queue, in seconds."""
    queue_delay_max_s: float
    """Longest time a packet waited in the bottleneck queue, in seconds."""
    in_flight: int
    """Packets past the queue and not yet delivered (on the wire or delayed)."""

    @property
    def dropped(self) -> int:
        """Packets dropped for any reason."""
        return self.dropped_blackhole + self.dropped_loss + self.dropped_queue

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict, for JSON."""
        return asdict(self)


class Link(Generic[P]):
    """One direction of a path with netem's impairments and Mahimahi's traces.

    ``config`` holds the parameters; ``seed`` makes every random decision
    reproducible (each stage draws from its own stream derived from it); ``start``
    is the time, on the caller's clock, that schedule times and trace times count
    from; ``schedule`` lists parameter changes at times after ``start``.

    Times are seconds on a clock the caller owns; each call's ``now`` must not be
    earlier than the previous one's.
    """

    def __init__(
        self,
        config: LinkConfig | None = None,
        *,
        seed: int | str = 0,
        start: float = 0.0,
        schedule: Iterable[ScheduleStep] = (),
    ) -> None:
        self._config = config if config is not None else LinkConfig()
        self._start = start
        self._now = start
        self._schedule = sorted(schedule, key=lambda step: step.at_s)
        validate_schedule(self._config, self._schedule)
        self._next_step = 0
        self._duplication = Duplication(stage_rng(seed, "duplicate"))
        self._loss = Loss(stage_rng(seed, "loss"))
        self._bottleneck: Bottleneck[P] = Bottleneck()
        self._delay_line: DelayLine[P] = DelayLine(
            stage_rng(seed, "jitter"), stage_rng(seed, "reorder")
        )
        self._packets_in = 0
        self._bytes_in = 0
        self._packets_out = 0
        self._bytes_out = 0
        self._dropped_blackhole = 0
        self._apply(self._config, start)

    @property
    def config(self) -> LinkConfig:
        """The parameters in force at the time of the last call."""
        return self._config

    @property
    def now(self) -> float:
        """The time of the last call, in seconds on the caller's clock."""
        return self._now

    def _apply(self, config: LinkConfig, now: float) -> None:
        self._config = config
        self._duplication.configure(config)
        self._loss.configure(config)
        self._bottleneck.configure(config, now)
        self._delay_line.configure(config)

    def _advance(self, now: float) -> None:
        """Bring every stage up to ``now``, in time order: schedule steps that fall
        due and packets that finish transmission move the state forward one by one.
        """
        if now < self._now:
            raise ValueError(f"time went backwards: {now!r} is before {self._now!r}")
        bottleneck = self._bottleneck
        while True:
            departure = bottleneck.next_departure()
            if self._next_step < len(self._schedule):
                step = self._schedule[self._next_step]
                step_time = self._start + step.at_s
            else:
                step_time = math.inf
            if step_time <= now and (departure is None or step_time <= departure):
                self._next_step += 1
                self._apply(self._config.replace(**step.changes), step_time)
            elif departure is not None and departure <= now:
                finish, packet = bottleneck.depart()
                self._delay_line.push(packet, finish)
            else:
                break
        self._now = now

    def send(self, packet: P, now: float) -> None:
        """Hand the link a packet at time ``now``."""
        self._advance(now)
        size = len(packet)
        self._packets_in += 1
        self._bytes_in += size
        if self._config.blackhole:
            self._dropped_blackhole += 1
            return
        for _ in range(self._duplication.copies()):
            if not self._loss.drop():
                self._bottleneck.offer(packet, size, now)
        # An idle link without a rate passes the packet straight to the delay line.
        self._advance(now)

    def receive(self, now: float) -> list[P]:
        """Take the packets that have come out of the link by ``now``, in order."""
        self._advance(now)
        packets = self._delay_line.pop_due(now)
        if packets:
            self._packets_out += len(packets)
            self._bytes_out += sum(len(packet) for packet in packets)
        return packets

    def next_wakeup(self) -> float | None:
        """The next time the link's contents move; None while it is empty.

        Call ``receive`` then: packets may be due, or a packet may move on from the
        bottleneck to the delay line. Sending may bring this time forward; the time
        is in the past if ``receive`` has not been called since it fell due.
        """
        departure = self._bottleneck.next_departure()
        delivery = self._delay_line.next_delivery()
        if departure is None:
            return delivery
        if delivery is None:
            return departure
        return min(departure, delivery)

    def update(self, now: float, /, **changes: Any) -> None:
        """Change parameters at time ``now``, for example ``update(now, loss=0.05)``.

        The names are those of ``LinkConfig``. Packets already past a stage keep what
        that stage decided for them (a packet already delayed keeps its delay).
        Schedule steps still to come apply on top of the change; a change that
        would make one of them invalid is refused.
        """
        self._advance(now)
        config = self._config.replace(**changes)
        validate_schedule(config, self._schedule[self._next_step :])
        self._apply(config, now)

    @property
    def stats(self) -> LinkStats:
        """Counters of what the link did so far."""
        bottleneck = self._bottleneck
        transmitted = bottleneck.transmitted
        return LinkStats(
            packets_in=self._packets_in,
            bytes_in=self._bytes_in,
            packets_out=self._packets_out,
            bytes_out=self._bytes_out,
            duplicated=self._duplication.duplicated,
            dropped_blackhole=self._dropped_blackhole,
            dropped_loss=self._loss.dropped,
            dropped_queue=bottleneck.dropped,
            reordered=self._delay_line.reordered,
            queued_packets=bottleneck.waiting_packets,
            queued_bytes=bottleneck.waiting_bytes,
            max_queued_packets=bottleneck.max_packets,
            max_queued_bytes=bottleneck.max_bytes,
            queue_delay_mean_s=(
                bottleneck.delay_total_s / transmitted if transmitted else 0.0
            ),
            queue_delay_max_s=bottleneck.delay_max_s,
            in_flight=bottleneck.on_wire + len(self._delay_line),
        )
