"""Many connections' timers under one loop timer.

aioquic's asyncio protocol keeps one loop timer per connection and moves it
whenever a transmit changes the connection's next deadline (a PING, its ACK,
a retransmission). Each ``call_at`` makes a ``TimerHandle`` (under uvloop
also a ``UVTimer``), a ``Context`` and a bound method, all tracked by the
cyclic collector; a far deadline (the idle timeout, a minute away) keeps
them alive long enough to reach the oldest generation, which every full
pass walks. A node holding 30,000 idle connections had 18,000 such timers
in it, 71,000 of the 149,000 objects its full passes walked
(docs/performance.md, "What a node's full pass walks").

:class:`Deadlines` keeps every connection's deadline in one heap of
``(when, seq)`` tuples (floats and ints: the collector untracks such a tuple
the first time it sees it) and one dict from ``seq`` to the connection, under
a single loop timer set for the earliest. Moving a deadline pushes a new
entry and forgets the old one's ``seq``; a stale entry is skipped when it
comes up, and the heap is rebuilt from the live ones when stale entries
outnumber them.

A connection is any object with the :class:`Timed` attributes; the heap
calls its ``on_deadline(when)`` once the deadline passed, as the loop would
have called a timer of its own: on a later loop turn, never from inside
:meth:`Deadlines.arm`.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from typing import Protocol

__all__ = ["Deadlines", "Timed"]

log = logging.getLogger(__name__)

_GRANULARITY = 0.001
"""A deadline this close to the loop's time when the loop timer fires is due:
the loop's own timers run by the same rule (its clock resolution), and its
timer may wake a fraction of a millisecond early."""

_SLACK = 1024
"""Stale entries the heap may hold beyond as many as there are live ones
before it is rebuilt."""


class Timed(Protocol):
    """What :class:`Deadlines` needs of a connection."""

    deadline_seq: int
    """The ``seq`` of its live entry, 0 when it has none."""
    deadline_at: float | None
    """When its live entry is due, None when it has none."""

    def on_deadline(self, when: float) -> None:
        """The deadline ``when`` passed."""


class Deadlines:
    """One loop timer for the deadlines of many connections."""

    __slots__ = ("_loop", "_heap", "_armed", "_seq", "_timer", "_timer_at", "fired")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, Timed] = {}
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self.fired = 0
        """Deadlines handed to their connections so far."""

    def __len__(self) -> int:
        """Connections with a deadline."""
        return len(self._armed)

    def entries(self) -> int:
        """Entries in the heap, stale ones included."""
        return len(self._heap)

    def arm(self, timed: Timed, when: float | None) -> None:
        """Set ``timed``'s deadline to ``when`` (None: no deadline)."""
        seq = timed.deadline_seq
        if seq:
            if timed.deadline_at == when:
                return
            del self._armed[seq]
        if when is None:
            timed.deadline_seq = 0
            timed.deadline_at = None
            return
        self._seq = seq = self._seq + 1
        self._armed[seq] = timed
        timed.deadline_seq = seq
        timed.deadline_at = when
        heap = self._heap
        heapq.heappush(heap, (when, seq))
        if when < self._timer_at:
            self._set_timer(when)
        if len(heap) > 2 * len(self._armed) + _SLACK:
            self._compact()

    def disarm(self, timed: Timed) -> None:
        """Drop ``timed``'s deadline, if it has one."""
        self.arm(timed, None)

    def _set_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)
        self._timer_at = when

    def _compact(self) -> None:
        armed = self._armed
        self._heap = [entry for entry in self._heap if entry[1] in armed]
        heapq.heapify(self._heap)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        heap = self._heap
        armed = self._armed
        horizon = self._loop.time() + _GRANULARITY
        due: list[tuple[float, Timed]] = []
        while heap and heap[0][0] <= horizon:
            when, seq = heapq.heappop(heap)
            timed = armed.pop(seq, None)
            if timed is not None:
                timed.deadline_seq = 0
                timed.deadline_at = None
                due.append((when, timed))
        # Re-armed from the calls below, a deadline already past waits for
        # the next loop turn, as a loop timer set in the past would.
        if heap:
            self._set_timer(heap[0][0])
        self.fired += len(due)
        for when, timed in due:
            try:
                timed.on_deadline(when)
            except Exception:
                log.exception("deadline of %r", timed)
