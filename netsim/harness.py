"""Two sans-I/O endpoints joined by a pair of links, on a virtual clock.

``QuicPair`` connects a client and a server, for example two aioquic
``QuicConnection`` objects, through one ``Link`` per direction. It owns a float
clock and jumps it straight to the next thing that happens (a packet leaving a
link, an endpoint's timer, a scheduled call), so a minute of a lossy call runs in
well under a second, and the same seed gives the same run, event for event.

Any object with aioquic's sans-I/O surface plugs in (see ``Endpoint``)::

    pair = QuicPair(client, server, up=LinkConfig(delay_s=0.05, loss=0.02), seed=1)
    pair.connect()
    pair.run_until(lambda: pair.has_event("client", HandshakeCompleted), timeout=10)
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .config import LinkConfig, ScheduleStep
from .link import Link

__all__ = ["Endpoint", "EndpointEvent", "QuicPair", "Side"]

Side = Literal["client", "server"]

# How many rounds of packets and timers may happen at one instant before the pair
# decides the endpoints are looping without letting time pass.
_MAX_ROUNDS_PER_INSTANT = 10_000
# How far the clock moves when an endpoint's timer is due but, once handled, still
# due; and how many such nudges in a row mean the endpoint is broken.
_TIMER_NUDGE_S = 1e-6
_MAX_STALE_TIMERS = 1_000


class Endpoint(Protocol):
    """The sans-I/O surface the harness drives, as aioquic's ``QuicConnection`` has.

    Every method takes the time from its caller; ``next_event`` returns None when
    there are no more events.
    """

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]: ...

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def next_event(self) -> Any: ...


@dataclass(frozen=True)
class EndpointEvent:
    """An event an endpoint produced, stamped with the virtual time it came out."""

    time: float
    """Virtual time, in seconds."""
    side: Side
    """The endpoint that produced it."""
    event: Any
    """The endpoint's own event object (an aioquic ``QuicEvent``, for example)."""


class QuicPair:
    """A client and a server endpoint connected through ``up`` and ``down`` links.

    ``up`` carries client to server and ``down`` server to client; each is a
    ``Link`` built from the given ``LinkConfig`` and schedule, seeded from ``seed``.
    The virtual clock starts at ``start`` seconds. The endpoints see each other at
    ``client_address`` and ``server_address``.

    Drive it with ``run_until`` or ``run_for``; act on it with ``call_at`` (an action
    at a virtual time) and ``on_event`` (a reaction to each event). Between runs,
    calling the endpoints directly is fine: what they queue is sent on the next run.
    """

    def __init__(
        self,
        client: Endpoint,
        server: Endpoint,
        *,
        up: LinkConfig | None = None,
        down: LinkConfig | None = None,
        seed: int | str = 0,
        start: float = 0.0,
        up_schedule: Iterable[ScheduleStep] = (),
        down_schedule: Iterable[ScheduleStep] = (),
        client_address: Any = ("10.0.0.1", 40000),
        server_address: Any = ("10.0.0.2", 4433),
    ) -> None:
        self.client = client
        self.server = server
        self.client_address = client_address
        self.server_address = server_address
        self.now = start
        """The virtual time, in seconds."""
        self.up: Link[bytes] = Link(
            up, seed=f"{seed}/up", start=start, schedule=up_schedule
        )
        self.down: Link[bytes] = Link(
            down, seed=f"{seed}/down", start=start, schedule=down_schedule
        )
        self.events: list[EndpointEvent] = []
        """Every event both endpoints produced, in order."""
        self._listeners: list[Callable[[EndpointEvent], None]] = []
        self._calls: list[tuple[float, int, Callable[[], None]]] = []
        self._call_sequence = 0
        self._started: set[Side] = set()
        self._seen_types: set[tuple[Side, type]] = set()

    def connect(self) -> None:
        """Start the client's handshake: ``client.connect(server_address, now)``."""
        self.client.connect(self.server_address, now=self.now)  # type: ignore[attr-defined]

    def call_at(self, time: float, action: Callable[[], None]) -> None:
        """Run ``action()`` when the virtual clock reaches ``time``.

        Actions due at the same time run in the order they were added; whatever they
        make the endpoints send goes out at that time.
        """
        heapq.heappush(self._calls, (time, self._call_sequence, action))
        self._call_sequence += 1

    def call_later(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run ``action()`` ``delay_s`` virtual seconds from now."""
        self.call_at(self.now + delay_s, action)

    def on_event(self, listener: Callable[[EndpointEvent], None]) -> None:
        """Call ``listener`` with each event as it comes out, before the next packet
        moves (it may act on the endpoints, for example send a reply)."""
        self._listeners.append(listener)

    def has_event(self, side: Side, kind: type) -> bool:
        """Whether ``side`` has produced an event of type ``kind`` yet (cheap
        enough to call from a ``run_until`` predicate)."""
        return any(s == side and issubclass(t, kind) for s, t in self._seen_types)

    def events_of(self, side: Side, kind: type = object) -> list[Any]:
        """The events of one side, optionally only those of type ``kind``."""
        return [
            e.event for e in self.events if e.side == side and isinstance(e.event, kind)
        ]

    def run_until(
        self, predicate: Callable[[], bool] | None = None, *, timeout: float
    ) -> bool:
        """Run until ``predicate()`` is true or ``timeout`` virtual seconds pass.

        Returns whether the predicate became true; the predicate is checked after
        everything due at each instant has happened. Without a predicate, runs for
        ``timeout`` seconds and returns False.
        """
        deadline = self.now + timeout
        stale_timers = 0
        while True:
            self._settle()
            if predicate is not None and predicate():
                return True
            wakeup = self._next_wakeup()
            if wakeup is None or wakeup > deadline:
                self.now = max(self.now, deadline)
                return predicate is not None and predicate()
            if wakeup > self.now:
                self.now = wakeup
                stale_timers = 0
            elif self.now >= deadline:
                return predicate is not None and predicate()
            else:
                # A timer handled exactly at its deadline can find nothing due yet
                # (aioquic computes a deadline and its test by different float
                # routes); let a microsecond pass, as a real clock would.
                stale_timers += 1
                if stale_timers > _MAX_STALE_TIMERS:
                    raise RuntimeError(
                        f"an endpoint's timer stays at {wakeup!r}, not after the "
                        f"virtual time {self.now!r}, however often it is handled"
                    )
                self.now = min(self.now + _TIMER_NUDGE_S, deadline)

    def run_for(self, duration_s: float) -> None:
        """Run for ``duration_s`` virtual seconds."""
        self.run_until(None, timeout=duration_s)

    def _next_wakeup(self) -> float | None:
        times = [
            self.client.get_timer(),
            self.server.get_timer(),
            self.up.next_wakeup(),
            self.down.next_wakeup(),
            self._calls[0][0] if self._calls else None,
        ]
        due = [time for time in times if time is not None]
        return min(due) if due else None

    def _settle(self) -> None:
        """Let everything due at ``now`` happen, until nothing more does."""
        now = self.now
        handled: dict[Side, float] = {}
        sides: tuple[tuple[Side, Endpoint, Link[bytes], Link[bytes], Any], ...] = (
            ("client", self.client, self.up, self.down, self.server_address),
            ("server", self.server, self.down, self.up, self.client_address),
        )
        for _ in range(_MAX_ROUNDS_PER_INSTANT):
            busy = False
            while self._calls and self._calls[0][0] <= now:
                heapq.heappop(self._calls)[2]()
                busy = True
            for side, endpoint, _, inbound, peer_address in sides:
                timer = endpoint.get_timer()
                if timer is not None and timer <= now and handled.get(side) != timer:
                    handled[side] = timer
                    endpoint.handle_timer(now)
                    busy = True
                for data in inbound.receive(now):
                    self._started.add(side)
                    endpoint.receive_datagram(data, peer_address, now)
                    busy = True
            for side, endpoint, _, _, _ in sides:
                busy = self._collect_events(side, endpoint) or busy
            for side, endpoint, outbound, _, _ in sides:
                # aioquic's server connection has no path to send on before its
                # first datagram, so an endpoint is asked only once it has heard
                # from its peer or has a timer of its own (a client that connected).
                if side not in self._started:
                    if endpoint.get_timer() is None:
                        continue
                    self._started.add(side)
                for data, _ in endpoint.datagrams_to_send(now):
                    outbound.send(data, now)
                    busy = True
            if not busy:
                return
        raise RuntimeError(
            f"the endpoints kept exchanging packets at virtual time {now!r} "
            "without letting time pass"
        )

    def _collect_events(self, side: Side, endpoint: Endpoint) -> bool:
        found = False
        while (event := endpoint.next_event()) is not None:
            found = True
            stamped = EndpointEvent(self.now, side, event)
            self.events.append(stamped)
            self._seen_types.add((side, type(event)))
            for listener in self._listeners:
                listener(stamped)
        return found
