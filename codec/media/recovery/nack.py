"""The receiver side of retransmission: which packets of a track to NACK, when.

A :class:`NackGenerator` watches one track's 16-bit sequence numbers (unwrapped,
so wrap-around is seamless). A gap is asked for at once; a packet still missing
one round trip after its request is asked for once more; a packet is given up
when its frame's deadline (``give_up_s`` after the gap was seen) has passed.
Reordered packets that fill a gap simply leave the list. With
``copy_delay_s``, every NACK is sent once more that much later for what is
still missing (not a retry: the packets are not asked for again): two NACK
datagrams a few milliseconds apart travel in different packets, so a repair
is lost to a lost NACK only when both are, and the sender answers the copy
only when the first was lost (:class:`~codec.media.recovery.RetransmitCache`
ignores a request that soon after its answer). NACK datagrams are
rate-limited (at most one per ``min_interval_s``), each packet is asked for at
most ``max_requests`` times, and at most ``max_missing`` packets are tracked: a
jump bigger than that is a reset (the stream restarted, or a loss no
retransmission can repair in time), not thousands of NACKs. Pure: every method
takes ``now`` (seconds on the caller's clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..seqnum import Unwrapper

__all__ = ["Arrival", "NackGenerator", "NackStats", "Recovery"]

DEFAULT_RTT_S = 0.1
"""Round trip assumed until :meth:`NackGenerator.set_rtt` gives a measured one."""
NACK_COPY_DELAY_S = 0.01
"""How long after a NACK its copy goes: enough for aioquic to put the two in
different packets (and, in a burst of losses, often on either side of it)."""


class Arrival(Enum):
    """What a packet was to :meth:`NackGenerator.on_packet`."""

    NEW = "new"
    """Past the highest sequence number seen (it may open a gap)."""
    FILLED = "filled"
    """One that was missing: a retransmission or a reordered packet."""
    OLD = "old"
    """Neither: a duplicate, or one given up or from before the first."""


@dataclass(slots=True)
class NackStats:
    """Counters of one :class:`NackGenerator` (packets unless named)."""

    nacks_sent: int = 0
    """NACK datagrams' worth of requests handed out by :meth:`NackGenerator.due`."""
    packets_requested: int = 0
    """Requests for packets, retries included."""
    retries: int = 0
    """Requests after the first for the same packet."""
    packets_recovered: int = 0
    """Packets that arrived after they had been asked for."""
    packets_given_up: int = 0
    """Missing packets dropped from the list at their deadline."""
    given_up_unasked: int = 0
    """Of those, packets never asked for (the rate limit or a late timer)."""
    given_up_after_retry: int = 0
    """Of those, packets asked for ``max_requests`` times: a NACK or a
    retransmission was lost each time, or the sender refused."""
    resets: int = 0
    """Jumps too big to repair, after which the list was cleared."""
    copies: int = 0
    """Requests sent again in a NACK's copy (not counted as requests)."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """How one missing packet came back (seconds on the caller's clock)."""

    seen_at: float
    """When its gap was seen."""
    first_request_at: float | None
    """When it was first asked for; None when it came before (reordered)."""
    requests: int
    """How many times it was asked for (2: the first NACK or its
    retransmission was lost, or the sender's answer was late)."""
    arrived_at: float


class _Missing:
    __slots__ = (
        "seen_at",
        "requests",
        "first_request_at",
        "last_request_at",
        "copy_at",
    )

    def __init__(self, seen_at: float) -> None:
        self.seen_at = seen_at
        self.requests = 0
        self.first_request_at: float | None = None
        self.last_request_at = 0.0
        self.copy_at = float("inf")


class NackGenerator:
    """Decides which packets of one track to NACK and when.

    Feed every packet's sequence number to :meth:`on_packet`; call :meth:`due`
    after it and when :meth:`next_deadline` comes; send a NACK for what it
    returns. ``give_up_s`` is how long after a gap is seen its packets can
    still help (the frame buffer's wait): set it with :meth:`set_give_up`.
    """

    def __init__(
        self,
        give_up_s: float = 0.2,
        *,
        max_requests: int = 2,
        min_interval_s: float = 0.01,
        max_missing: int = 500,
        copy_delay_s: float | None = None,
    ) -> None:
        self.give_up_s = give_up_s
        self.max_requests = max_requests
        self.copy_delay_s = copy_delay_s
        self.min_interval_s = min_interval_s
        self.max_missing = max_missing
        self.rtt_s = DEFAULT_RTT_S
        self.stats = NackStats()
        self._unwrapper = Unwrapper(16)
        self._highest: int | None = None
        self._missing: dict[int, _Missing] = {}
        self._last_nack_at = float("-inf")
        self.last_recovery: Recovery | None = None
        """How the last packet :meth:`on_packet` found missing came back."""

    @property
    def waiting(self) -> bool:
        """Whether any packet is missing (else :meth:`due` has nothing to do)."""
        return bool(self._missing)

    @property
    def missing(self) -> list[int]:
        """The 16-bit sequence numbers still waited for, oldest first."""
        return [seq & 0xFFFF for seq in sorted(self._missing)]

    def set_rtt(self, rtt_s: float) -> None:
        """The hop's measured round trip, in seconds: the wait before a retry."""
        self.rtt_s = max(rtt_s, 0.001)

    def set_give_up(self, give_up_s: float) -> None:
        """How long, in seconds, a missing packet is asked for after its gap."""
        self.give_up_s = give_up_s

    def on_packet(self, seq: int, now: float) -> Arrival:
        """Take packet ``seq`` (16 bits); says whether it was new, one that
        was missing (a retransmission or a reordered packet), or neither."""
        number = self._unwrapper.unwrap(seq)
        highest = self._highest
        if highest is None:
            self._highest = number
            return Arrival.NEW
        if number <= highest:
            entry = self._missing.pop(number, None)
            if entry is None:
                return Arrival.OLD
            if entry.requests:
                self.stats.packets_recovered += 1
            self.last_recovery = Recovery(
                entry.seen_at, entry.first_request_at, entry.requests, now
            )
            return Arrival.FILLED
        gap = number - highest - 1
        self._highest = number
        if gap > self.max_missing:
            self.stats.resets += 1
            self._missing.clear()
            return Arrival.NEW
        for missing in range(highest + 1, number):
            self._missing[missing] = _Missing(now)
        while len(self._missing) > self.max_missing:
            del self._missing[min(self._missing)]
        return Arrival.NEW

    def due(self, now: float) -> list[int]:
        """The 16-bit sequence numbers to NACK now (empty when nothing is due
        or the rate limit holds them back); marks them requested."""
        self._give_up(now)
        # The same sum as next_deadline(), so due(next_deadline()) acts.
        if now < self._last_nack_at + self.min_interval_s:
            return []
        out = []
        requested = 0
        copy_delay = self.copy_delay_s
        for number, entry in self._missing.items():
            if self._request_due(entry) <= now:
                if entry.requests:
                    self.stats.retries += 1
                else:
                    entry.first_request_at = now
                entry.requests += 1
                entry.last_request_at = now
                if copy_delay is not None:
                    entry.copy_at = now + copy_delay
                requested += 1
            elif entry.copy_at <= now:
                entry.copy_at = float("inf")
                self.stats.copies += 1
            else:
                continue
            out.append(number & 0xFFFF)
        if out:
            self._last_nack_at = now
            self.stats.nacks_sent += 1
            self.stats.packets_requested += requested
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`due` next has work (a request, a retry or a give-up),
        or None when nothing is missing."""
        if not self._missing:
            return None
        soonest = min(
            min(self._request_due(e), e.copy_at, e.seen_at + self.give_up_s)
            for e in self._missing.values()
        )
        return max(soonest, self._last_nack_at + self.min_interval_s)

    def _request_due(self, entry: _Missing) -> float:
        if entry.requests == 0:
            return entry.seen_at
        if entry.requests >= self.max_requests:
            return float("inf")
        wait = self.rtt_s
        if self.copy_delay_s is not None:
            # The sender takes a request soon after its answer for the copy
            # of the NACK it answered (RetransmitCache.min_interval_s): a
            # retry on a short round trip must come after that window.
            wait = max(wait, 2 * self.copy_delay_s)
        retry_at = entry.last_request_at + wait
        # A retry that could not come back before the deadline is not sent.
        if retry_at + self.rtt_s > entry.seen_at + self.give_up_s:
            return float("inf")
        return retry_at

    def _give_up(self, now: float) -> None:
        stats = self.stats
        expired = [
            number
            for number, entry in self._missing.items()
            if now >= entry.seen_at + self.give_up_s
        ]
        for number in expired:
            requests = self._missing.pop(number).requests
            stats.given_up_unasked += requests == 0
            stats.given_up_after_retry += requests >= self.max_requests
        stats.packets_given_up += len(expired)
