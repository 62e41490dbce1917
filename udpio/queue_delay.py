"""How long what is read now waited in the socket: markers sent to ourselves.

A receiver cannot see how long a datagram waited in its socket's queue: the
kernel's receive timestamps would say, but some kernels stamp with a clock
that moves once a second (seen on this project's virtual machines). So the
endpoint, while it is behind, sends itself a small *marker* datagram at most
every :data:`TARGET_S`, from a second socket on the same host (a send to a
local address is queued at once, or dropped if the queue is full). The
queue is first in, first out: whatever is read before a marker arrived
before the marker was sent, so it has waited at least as long as the marker
has been on its way. :class:`QueueDelay` keeps
the markers sent and not yet read and answers that lower bound; it never
overstates a wait, so what is shed on its word did wait that long.

A marker the kernel dropped (its queue full) would be taken for one still
waiting: one read after it, or the queue found empty, forgets it.

:class:`QueueDelay` is pure logic on a caller's clock (``now`` in seconds),
tested on a virtual one. :class:`BacklogAwareRecovery` gives a connection's
loss timers what it knows: while the endpoint is behind, an acknowledgement
may be waiting unread, so a probe timeout is not taken yet.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from aioquic.quic.connection import QuicConnection
from aioquic.quic.recovery import QuicPacketRecovery

__all__ = [
    "INTERVAL_S",
    "KEYS",
    "MIN_SHARE",
    "TARGET_S",
    "BacklogAwareRecovery",
    "QueueDelay",
    "wait_out_backlog",
]


TARGET_S = 0.020
"""Seconds of standing queue the endpoint works down to once it is behind:
under the probe timeout of a peer on a LAN or loopback (its round trip, a
millisecond of granularity and our 25 ms ACK delay: about 30 ms), so what is
still read gets its answer before the peer probes again. CoDel's 5 ms is a
router's; a Python server reads a burst of 64 datagrams in a few ms."""
INTERVAL_S = 0.100
"""Seconds the queue must stay above :data:`TARGET_S` before it is worked
down (CoDel's interval): a burst or a collection's pause is read, a queue
that stands is not."""
KEYS = 256
"""Connection keys: the first byte of a datagram's destination connection id
(random, chosen by the endpoint that receives it)."""
MIN_SHARE = 8
"""The fewest keys served while a queue stands (1/32 of the connections)."""


class QueueDelay:
    """Markers in flight through one socket's queue, oldest first, and what
    the endpoint sheds (:meth:`shed`): what waited longer than ``limit``;
    and, once the queue has stood above :data:`TARGET_S` for
    :data:`INTERVAL_S`, the datagrams of all but :attr:`share` of the
    connections (by the first byte of their connection id), a share cut by a
    quarter at each marker still above the target, until one comes through
    under it or the queue empties. The keys served move on each time the
    queue is worked down (:attr:`first_served`): a node behind again and
    again (a long login ramp) sheds a different part of its connections
    each time, not the same ones until their idle timeout ends them.

    Why connections and not datagrams: after a stall, every datagram a node
    reads late has been probed for again by its sender, and every answer it
    sends arrives after its own probe timeout. Shedding the stalest
    datagrams, whoever sent them, answers every connection half the time:
    none stops probing, none backs off, and a node of 24,000 idle
    connections stayed at a full core for as long as it was watched. Served
    whole, a connection is answered in time and goes quiet; shed whole, it
    backs off (each unanswered probe doubles its timeout); the load falls
    and the share grows back (docs/performance.md, "A node that falls
    behind").

    New connections wait first: while the queue stands, every datagram that
    would open one is shed, whatever its key (and the endpoint hands on the
    first flights it reads one per turn of the loop, after its
    connections' datagrams: :class:`udpio.endpoint.UdpEndpoint`). A
    handshake costs a node many keepalives' worth of CPU, and a flood of
    them (a login storm, another node's users failing over to this one, an
    attack) served at the share of each key starves the node's own
    connections at the same share: one unanswered for its idle timeout is
    ended. A client whose first flight is shed sends it again after its
    probe timeout, doubled each time.
    """

    def __init__(
        self, limit: float, target: float = TARGET_S, interval: float = INTERVAL_S
    ) -> None:
        self.limit = limit
        self.target = min(target, limit)
        self.interval = interval
        self.marker_interval = self.target
        """A new marker goes out at most this often (:meth:`due`), so what is
        read is bounded by a marker sent at most that long after it arrived."""
        self.in_flight: deque[tuple[int, float]] = deque()
        """(number, time sent) of the markers not read yet, oldest first."""
        self._next = 0
        self._last_sent = float("-inf")
        self._above_since: float | None = None
        self.share = KEYS
        """Of the :data:`KEYS` connection keys, how many are served while the
        queue stands (all of them otherwise)."""
        self.first_served = 0
        """The first key of those served while the queue stands: they run
        from it, round the :data:`KEYS`, for :attr:`share` keys. Each time the
        queue stood and was worked down, it moves past the keys that were
        served, so the next time serves first those shed last time."""
        self.last_delay: float | None = None
        """The last marker's time in the queue, seconds (None: none read)."""

    def due(self, now: float) -> bool:
        """Whether a marker should be sent now."""
        return now - self._last_sent >= self.marker_interval

    def sent(self, now: float) -> int:
        """Note a marker sent at ``now``; returns its number, for its payload."""
        number = self._next
        self._next += 1
        self.in_flight.append((number, now))
        self._last_sent = now
        return number

    def not_sent(self, number: int) -> None:
        """Marker ``number``, just noted as sent, could not be sent: it is not
        in the queue, so it bounds nothing."""
        if self.in_flight and self.in_flight[-1][0] == number:
            self.in_flight.pop()

    def read(self, number: int, now: float) -> None:
        """Marker ``number`` came out of the queue: it and any before it (lost
        to a full queue) are no longer in flight."""
        while self.in_flight and self.in_flight[0][0] <= number:
            sent_number, sent_at = self.in_flight.popleft()
            if sent_number == number:
                self.last_delay = delay = now - sent_at
                if delay <= self.target:
                    self._worked_down()
                elif self._above_since is None:
                    self._above_since = now
                elif now - self._above_since >= self.interval:
                    # Still standing: serve fewer connections.
                    self.share = max(MIN_SHARE, self.share * 3 // 4)

    def emptied(self) -> None:
        """The queue was found empty: any marker still counted was lost, and
        nothing stands in it."""
        self.in_flight.clear()
        self._worked_down()

    def _worked_down(self) -> None:
        """The queue no longer stands: every key is served again, and the
        next time it stands, those shed this time are served first."""
        if self.share < KEYS:
            self.first_served = (self.first_served + self.share) % KEYS
        self._above_since = None
        self.share = KEYS

    def waited(self, now: float) -> float:
        """Seconds that what is read now has waited at least (0: no marker
        behind it, nothing known)."""
        if not self.in_flight:
            return 0.0
        return now - self.in_flight[0][1]

    def standing(self, now: float) -> bool:
        """Whether the queue has stood above the target for the interval."""
        above = self._above_since
        return above is not None and now - above >= self.interval

    def shed(self, key: int, now: float, opens: bool = False) -> bool:
        """Whether a datagram of connection key ``key`` (0 to :data:`KEYS`,
        the first byte of its connection id) read now is to be shed; one that
        ``opens`` a connection (the first flight of a handshake the endpoint
        has no connection for yet) is shed whatever its key while the queue
        stands."""
        if not self.in_flight:
            return False
        waited = now - self.in_flight[0][1]
        return waited > self.limit or (
            (opens or (key - self.first_served) % KEYS >= self.share)
            and self.standing(now)
        )


class BacklogAwareRecovery(QuicPacketRecovery):
    """aioquic's loss recovery, its timers put off while the endpoint is
    behind reading its socket.

    The probe timeout and the time threshold of RFC 9002 take an
    acknowledgement that has not been read for one that never came. A
    receiver that is behind holds acknowledgements unread in its socket, so
    on every connection with something in flight it probes, resends and
    takes more acknowledgements to read: measured on a node of 24,000 idle
    connections after a 5 s stop, 4,400 probe timeouts a second. (This alone
    did not end that: shedding whole connections did, :class:`QueueDelay`;
    it is kept because a timeout taken for an unread acknowledgement is
    wrong whatever the load.) Here the loss detection time moves back
    by :attr:`backlog` (seconds the unread head of the socket has waited at
    least, from :class:`QueueDelay`; 0 when the endpoint is not behind), so
    what arrived before the deadline is read before the deadline is taken.
    """

    backlog: Callable[[], float] = staticmethod(lambda: 0.0)
    """Set on each endpoint's subclass (:func:`wait_out_backlog`)."""

    def get_loss_detection_time(self, *, amplification_limited: bool) -> float | None:
        at = super().get_loss_detection_time(
            amplification_limited=amplification_limited
        )
        return None if at is None else at + self.backlog()


def wait_out_backlog(
    quic: QuicConnection, backlog: Callable[[], float], classes: dict
) -> BacklogAwareRecovery | None:
    """Give ``quic``'s loss recovery a subclass of :class:`BacklogAwareRecovery`
    whose timers wait out ``backlog()`` (one subclass per endpoint, kept in
    ``classes``, which the endpoint owns); idempotent. Returns it, or None
    (left alone) for an aioquic without a recovery object of that method."""
    loss = getattr(quic, "_loss", None)
    if isinstance(loss, BacklogAwareRecovery):
        return loss
    if not isinstance(loss, QuicPacketRecovery):
        return None
    base = type(loss)
    cls = classes.get(base)
    if cls is None:
        cls = classes[base] = type(
            base.__name__,
            (BacklogAwareRecovery, base),
            {"backlog": staticmethod(backlog)},
        )
    loss.__class__ = cls
    return loss
