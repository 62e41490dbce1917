"""Short garbage-collector pauses on a node that holds many connections.

Python's cyclic collector runs a full pass (its oldest generation) whenever
the objects that survived into that generation since the last full pass
reach a quarter of those it held then. A full pass walks every object the
process keeps, so on a node its pause grows with the connections held: about
80 µs per logged-in connection here, 0.5 s at 6,000 and 1.1 s at 13,000
(``bench/load.py`` reports it per step), 8 s at 100,000, while the event loop
answers nobody. And while connections are added the passes come every few
seconds, since each quarter of growth sets one off.

:class:`HeapFreezer` moves every object that survived a full pass out of the
collector's sight (``gc.freeze``): the next passes walk only what came
since, so a pause follows the growth since the last pass, not the size of the
node; and while connections keep coming it freezes again at every
:data:`FREEZE_GROWTH` of them, so a pass walks a few percent of the node at
most. What it costs: an object frozen while alive that later becomes garbage
*in a reference cycle* is not freed (refcounting still frees everything
else). An ended connection would be such garbage (aioquic's connection, its
loss recovery and our protocol refer to each other), so the server cuts those
cycles when a connection ends (``quic_adapter.release_protocol``) and
refcounting frees it. The freezer checks that this held: it is told of
every ended connection (:meth:`HeapFreezer.ended`, a weak reference) and
counts those still alive a whole check later as *stuck*. Once the stuck
ones reach :data:`RECLAIM_SHARE` of those still open (and at least
:data:`RECLAIM_MIN`), or every :data:`RECLAIM_EVERY_S` whatever is stuck, it
thaws the heap and collects it in full once. That pass walks the whole heap
(about 10 s at 78,000 connections on a busy 2-core machine, long enough for
every client to give up on the node), which is why it is kept for what
refcounting could not free: counting ended connections instead (as this did
before) set it off after any wave of ended connections, freed or not. Pure
policy in :func:`reclaim_due` and :func:`freeze_due`; the rest is the
collector's own calls.

Process-wide, like the collector itself: only the server's own entry point
(``server.cli``) installs it, never a library user of :class:`ServerApp`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = [
    "RECLAIM_EVERY_S",
    "RECLAIM_MIN",
    "RECLAIM_SHARE",
    "HeapFreezer",
    "freeze_due",
    "reclaim_due",
]

log = logging.getLogger("quicmeet.heap")

RECLAIM_SHARE = 0.25
"""Stuck connections (ended, still alive a check later), as a share of the
open ones, that make a full pass due (the collector's own growth rule,
applied to what should have left)..."""
RECLAIM_MIN = 256
"""...and at least this many: a small node reclaims in small passes anyway.
Or :data:`RECLAIM_EVERY_S` since the last reclaim, whatever is stuck: objects
that were in flight at a freeze (a request's task, a sent packet's record)
and became garbage in a cycle wait no longer than that."""
RECLAIM_EVERY_S = 6 * 3600.0
FREEZE_GROWTH = 0.05
"""Open connections grown by this share since the last freeze freeze the
heap again at the next check (and by :data:`FREEZE_GROWTH_MIN` at least), so
that while a node fills up a full pass walks a few percent of it..."""
FREEZE_GROWTH_MIN = 500
CHECK_EVERY_S = 5.0
"""...counted this often, as are the stuck connections."""


def reclaim_due(stuck: int, live: int, since_s: float = 0.0) -> bool:
    """Whether ``stuck`` connections since the last reclaim, ``since_s``
    seconds ago, with ``live`` still open, make a full pass worth its pause."""
    return since_s >= RECLAIM_EVERY_S or stuck >= max(RECLAIM_MIN, RECLAIM_SHARE * live)


def freeze_due(live: int, live_at_freeze: int) -> bool:
    """Whether the open connections grew enough since the last freeze."""
    grown = live - live_at_freeze
    return grown >= max(FREEZE_GROWTH_MIN, FREEZE_GROWTH * live_at_freeze)


class HeapFreezer:
    """Freezes the heap after each full collection; reclaims what ended
    connections left in frozen cycles.

    ``live`` returns the connections open now; :meth:`ended` is told of each
    connection that ended (an object that lives exactly as long as it does).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        live: Callable[[], int],
        check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        self._loop = loop
        self._live = live
        self._check_every_s = check_every_s
        self._ending: list[weakref.ref[Any]] = []
        """Connections that ended since the last check..."""
        self._ended_before: list[weakref.ref[Any]] = []
        """...and in the check period before: alive now, they are stuck."""
        self._stuck = 0
        self._reclaimed_at = loop.time()
        self._live_at_freeze = 0
        self._reclaiming = False
        self._installed = False
        self._check: asyncio.TimerHandle | None = None
        self.freezes = 0
        self.reclaims = 0
        self.worst_reclaim_ms = 0.0
        self.released = 0
        """Ended connections refcounting freed within a check."""
        self.stuck = 0
        """Ended connections still alive a whole check after they ended."""

    def install(self) -> None:
        """Freeze what the process holds now (modules, configuration: never
        garbage) and after every full collection from now on."""
        if self._installed:
            return
        self._installed = True
        gc.callbacks.append(self._on_collection)
        self._freeze()
        self._check = self._loop.call_later(self._check_every_s, self._on_check)

    def uninstall(self) -> None:
        """Stop, and give the collector the whole heap back."""
        if not self._installed:
            return
        self._installed = False
        gc.callbacks.remove(self._on_collection)
        if self._check is not None:
            self._check.cancel()
            self._check = None
        gc.unfreeze()
        self._ending.clear()
        self._ended_before.clear()

    def ended(self, connection: object) -> None:
        """A connection ended: ``connection`` should be freed by refcounting
        before the check after next."""
        if self._installed:
            self._ending.append(weakref.ref(connection))

    def snapshot(self) -> dict[str, float | int]:
        # Not gc.get_freeze_count(): it walks every frozen object, holding
        # the GIL (0.6 s at 40,000 connections), and a stats report must not
        # stall the node it reports on.
        return {
            "gc_freezes": self.freezes,
            "gc_reclaims": self.reclaims,
            "gc_worst_reclaim_ms": round(self.worst_reclaim_ms, 3),
            "gc_released_connections": self.released,
            "gc_stuck_connections": self.stuck,
        }

    def reclaim(self) -> None:
        """Thaw the heap, collect it in full (freeing the cycles of what
        ended while frozen) and freeze what survived."""
        started = time.perf_counter()
        self._reclaiming = True
        try:
            gc.unfreeze()
            gc.collect()
            self._freeze()
        finally:
            self._reclaiming = False
        self._stuck = 0
        self._reclaimed_at = self._loop.time()
        self.reclaims += 1
        pause_ms = (time.perf_counter() - started) * 1000
        self.worst_reclaim_ms = max(self.worst_reclaim_ms, pause_ms)
        log.info("reclaimed the heap in %.0f ms", pause_ms)

    def _freeze(self) -> None:
        if self._installed:
            gc.freeze()
            self.freezes += 1
            self._live_at_freeze = self._live()

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        # Runs in whichever thread collected, inside the collector's call:
        # the freeze waits for the loop.
        if phase == "stop" and info.get("generation") == 2 and not self._reclaiming:
            self._loop.call_soon_threadsafe(self._freeze)

    def _on_check(self) -> None:
        if not self._installed:
            return
        live = self._live()
        stuck = sum(ref() is not None for ref in self._ended_before)
        self.released += len(self._ended_before) - stuck
        self.stuck += stuck
        self._stuck += stuck
        self._ended_before = self._ending
        self._ending = []
        if reclaim_due(self._stuck, live, self._loop.time() - self._reclaimed_at):
            self.reclaim()
        elif freeze_due(live, self._live_at_freeze):
            self._freeze()
        self._check = self._loop.call_later(self._check_every_s, self._on_check)
