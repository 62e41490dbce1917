"""The stages of a link, in netem's order: duplication, loss, bottleneck, delay line.

Each stage is a small sans-I/O object: it takes packets and times, never reads a
clock, draws from its own seeded generator, and counts what it did. ``Link`` wires
them together; use the stages directly only to test one in isolation.

A packet is any object whose ``len()`` is its size in bytes (``bytes`` usually; the
proxy wraps datagrams to remember their client).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Sized
from typing import Generic, TypeVar

from ._random import CorrelatedRandom
from .config import GilbertElliott, LinkConfig
from .trace import Trace, TraceCursor

__all__ = ["Bottleneck", "DelayLine", "Duplication", "Loss"]

P = TypeVar("P", bound=Sized)

# netem's jitter tables hold values within four standard deviations (normal) or
# four scale units (pareto) of the mean.
_TABLE_LIMIT = 4.0


class Duplication:
    """Sends a packet twice with probability ``config.duplicate``."""

    def __init__(self, rng: random.Random) -> None:
        self._random = CorrelatedRandom(rng)
        self._probability = 0.0
        self.duplicated = 0
        """Extra copies made."""

    def configure(self, config: LinkConfig) -> None:
        """Take the duplication parameters of ``config``."""
        self._probability = config.duplicate
        self._random.correlation = config.duplicate_correlation

    def copies(self) -> int:
        """How many copies of the next packet go on: 1, or 2 when duplicated."""
        if self._random.chance(self._probability):
            self.duplicated += 1
            return 2
        return 1


class Loss:
    """Decides per packet whether it is lost: Bernoulli, or Gilbert-Elliott as netem.

    Gilbert-Elliott follows netem's ``loss_gilb_ell``: the state at a packet's
    arrival decides its fate, then the chain moves for the next packet. The chain
    starts in the good state and keeps its state across parameter changes.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._random = CorrelatedRandom(rng)
        self._probability = 0.0
        self._model: GilbertElliott | None = None
        self._bad = False
        self.dropped = 0
        """Packets lost."""

    def configure(self, config: LinkConfig) -> None:
        """Take the loss parameters of ``config``."""
        self._probability = config.loss
        self._random.correlation = config.loss_correlation
        self._model = config.gilbert_elliott

    def drop(self) -> bool:
        """True if the next packet is lost."""
        model = self._model
        if model is None:
            lost = self._random.chance(self._probability)
        elif self._bad:
            if self._rng.random() < model.r:
                self._bad = False
            lost = self._rng.random() < model.one_minus_h
        else:
            if self._rng.random() < model.p:
                self._bad = True
            lost = self._rng.random() < model.one_minus_k
        if lost:
            self.dropped += 1
        return lost


class Bottleneck(Generic[P]):
    """A drop-tail queue drained by the link's capacity (a rate or a trace).

    Packets are transmitted one at a time, in arrival order. With a rate, a packet
    of ``n`` bytes takes ``n * 8 / rate_bps`` seconds; with a trace it rides the
    trace's delivery opportunities. With neither, packets pass at once. The queue
    counts the packets waiting, not the one on the wire, as Linux and Mahimahi do.
    A change of capacity applies from the next packet to start transmission.
    """

    def __init__(self) -> None:
        self._waiting: deque[tuple[float, int, P]] = deque()  # arrival, size, packet
        self._waiting_bytes = 0
        self._on_wire: tuple[float, P] | None = None  # finish time, packet
        self._rate_bps: float | None = None
        self._trace: Trace | None = None
        self._cursor: TraceCursor | None = None
        self._limit_packets: int | None = None
        self._limit_bytes: int | None = None
        self._limit_delay_s: float | None = None
        self.dropped = 0
        """Packets dropped because the queue was full."""
        self.transmitted = 0
        """Packets that started transmission."""
        self.max_packets = 0
        """Most packets ever waiting at once."""
        self.max_bytes = 0
        """Most bytes ever waiting at once."""
        self.delay_total_s = 0.0
        """Sum over transmitted packets of the time they waited, in seconds."""
        self.delay_max_s = 0.0
        """Longest any packet waited, in seconds."""

    def configure(self, config: LinkConfig, now: float) -> None:
        """Take the capacity and queue limits of ``config``, effective at ``now``.

        A new trace starts at ``now``: its time zero is the moment it is applied.
        """
        self._rate_bps = config.rate_bps
        if config.trace is not self._trace:
            self._trace = config.trace
            self._cursor = (
                None if self._trace is None else TraceCursor(self._trace, now)
            )
        self._limit_packets = config.queue_packets
        self._limit_bytes = config.queue_bytes
        self._limit_delay_s = config.queue_delay_s

    @property
    def waiting_packets(self) -> int:
        """Packets in the queue now, not counting the one on the wire."""
        return len(self._waiting)

    @property
    def waiting_bytes(self) -> int:
        """Bytes in the queue now, not counting the packet on the wire."""
        return self._waiting_bytes

    @property
    def on_wire(self) -> int:
        """1 while a packet is being transmitted, else 0."""
        return 0 if self._on_wire is None else 1

    def _full(self, size: int, now: float) -> bool:
        if (
            self._limit_packets is not None
            and len(self._waiting) >= self._limit_packets
        ):
            return True
        if (
            self._limit_bytes is not None
            and self._waiting_bytes + size > self._limit_bytes
        ):
            return True
        if self._limit_delay_s is not None:
            if self._cursor is not None:
                rate = self._cursor.trace.mean_rate_bps
            elif self._rate_bps is not None:
                rate = self._rate_bps
            else:
                return False
            wire_s = 0.0 if self._on_wire is None else max(0.0, self._on_wire[0] - now)
            if wire_s + self._waiting_bytes * 8 / rate > self._limit_delay_s:
                return True
        return False

    def offer(self, packet: P, size: int, now: float) -> bool:
        """Queue a packet arriving at ``now``; False if it was dropped (queue full)."""
        if self._full(size, now):
            self.dropped += 1
            return False
        self._waiting.append((now, size, packet))
        self._waiting_bytes += size
        if self._on_wire is None:
            self._transmit_next(now)
        self.max_packets = max(self.max_packets, len(self._waiting))
        self.max_bytes = max(self.max_bytes, self._waiting_bytes)
        return True

    def next_departure(self) -> float | None:
        """When the packet on the wire is fully sent; None if the link is idle."""
        return None if self._on_wire is None else self._on_wire[0]

    def depart(self) -> tuple[float, P]:
        """Take the packet on the wire (call at ``next_departure``); start the next."""
        assert self._on_wire is not None, "depart() called on an idle bottleneck"
        finish, packet = self._on_wire
        self._on_wire = None
        self._transmit_next(finish)
        return finish, packet

    def _transmit_next(self, now: float) -> None:
        if not self._waiting:
            return
        arrival, size, packet = self._waiting.popleft()
        self._waiting_bytes -= size
        ready = max(now, arrival)
        if self._cursor is not None:
            start, finish = self._cursor.transmit(size, ready)
        elif self._rate_bps is not None:
            start, finish = ready, ready + size * 8 / self._rate_bps
        else:
            start = finish = ready
        waited = start - arrival
        self.transmitted += 1
        self.delay_total_s += waited
        self.delay_max_s = max(self.delay_max_s, waited)
        self._on_wire = (finish, packet)


class DelayLine(Generic[P]):
    """Delay with jitter, and netem's reordering.

    Each packet is held for ``delay_s`` plus a jitter draw (never less than zero).
    With probability ``reorder`` a packet is instead released at once, overtaking the
    packets held, as netem puts it at the head of its queue. With ``keep_order`` the
    held packets leave in the order they came in (a packet whose draw would let it
    pass an earlier one waits for it); otherwise each leaves at its own time.
    """

    def __init__(self, jitter_rng: random.Random, reorder_rng: random.Random) -> None:
        self._held: list[tuple[float, int, P]] = []  # heap of (due, sequence, packet)
        self._sequence = 0
        self._last_due = -math.inf
        self._jitter = CorrelatedRandom(jitter_rng)
        self._reorder = CorrelatedRandom(reorder_rng)
        self._delay_s = 0.0
        self._jitter_s = 0.0
        self._distribution = "uniform"
        self._keep_order = True
        self._reorder_probability = 0.0
        self.reordered = 0
        """Packets released ahead of the delay line."""

    def configure(self, config: LinkConfig) -> None:
        """Take the delay, jitter and reordering parameters of ``config``."""
        self._delay_s = config.delay_s
        self._jitter_s = config.jitter_s
        self._distribution = config.jitter_distribution
        self._jitter.correlation = config.jitter_correlation
        self._keep_order = config.keep_order
        self._reorder_probability = config.reorder
        self._reorder.correlation = config.reorder_correlation

    def __len__(self) -> int:
        return len(self._held)

    def sample_delay(self) -> float:
        """Draw one packet's delay in seconds: delay plus jitter, at least zero."""
        jitter_s = self._jitter_s
        if jitter_s == 0.0:
            return self._delay_s
        if self._distribution == "uniform":
            offset = (2.0 * self._jitter.uniform() - 1.0) * jitter_s
        elif self._distribution == "normal":
            z = self._jitter.normal()
            offset = max(-_TABLE_LIMIT, min(_TABLE_LIMIT, z)) * jitter_s
        else:
            # netem's pareto table: shape 3, shifted to mean zero, scaled by 4/3.
            tail = 1.0 - self._jitter.uniform()
            x = (tail ** (-1.0 / 3.0) - 1.5) * (4.0 / 3.0)
            offset = min(_TABLE_LIMIT, x) * jitter_s
        return max(0.0, self._delay_s + offset)

    def push(self, packet: P, now: float) -> None:
        """Take a packet that left the bottleneck at ``now``."""
        if self._reorder_probability and self._reorder.chance(
            self._reorder_probability
        ):
            self.reordered += 1
            due = now
        else:
            due = now + self.sample_delay()
            if self._keep_order:
                due = max(due, self._last_due)
                self._last_due = due
        heapq.heappush(self._held, (due, self._sequence, packet))
        self._sequence += 1

    def next_delivery(self) -> float | None:
        """When the next packet is due; None if none is held."""
        return self._held[0][0] if self._held else None

    def pop_due(self, now: float) -> list[P]:
        """Release the packets due at or before ``now``, in order of due time."""
        held = self._held
        due: list[P] = []
        while held and held[0][0] <= now:
            due.append(heapq.heappop(held)[2])
        return due
