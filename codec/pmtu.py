"""Path MTU search: which QUIC packet size a path carries (RFC 8899 in spirit).

Pure: the connection adapter asks :meth:`PathMtuSearch.next_probe` what size
to probe at ``now`` (seconds), sends one padded packet of that size, and
reports what became of it with :meth:`probe_acked` or :meth:`probe_lost`.
The search starts at QUIC's 1,200 bytes, which every path must carry, tries
the largest candidate first (an Ethernet path carries 1,452 bytes of UDP
payload over IPv6, 1,472 over IPv4), steps down on loss, and keeps the
largest size that got through. Once found, the size is confirmed every
:data:`CONFIRM_INTERVAL_S` while the connection sends; two confirmations lost
in a row (a route that changed, a tunnel) fall back to 1,200 bytes and search
again later. A connection that has sent nothing since the last verdict (an
idle one, answering keepalives with ACKs) is not probed: it carries no packet
of the size to confirm, and RFC 8899 (section 5.1.1) lets a sender that
sends nothing leave its confirmation until it does; the confirmation then
goes out with its first transmit.

A probe is a DATAGRAM frame whose first byte is :data:`PADDING_MARK` (a media
datagram never starts with 0: its version bits are 1), which the receiving
connection drops before anything else sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BASE_SIZE",
    "CANDIDATE_SIZES",
    "CONFIRM_INTERVAL_S",
    "PADDING_MARK",
    "RESEARCH_INTERVAL_S",
    "PathMtuSearch",
    "is_padding",
]

BASE_SIZE = 1200
"""UDP payload bytes every QUIC path carries (RFC 9000 section 14)."""
CANDIDATE_SIZES = (1452, 1400, 1280)
"""UDP payload sizes tried, largest first."""
CONFIRM_INTERVAL_S = 60.0
"""Seconds between probes that confirm the size in use still gets through
while the connection sends (a server of 4,000 busy connections sends about
67 probes a second for it)."""
RESEARCH_INTERVAL_S = 60.0
"""Seconds after a fallback (or a search that found nothing) before searching
again."""
PADDING_MARK = 0
"""First byte of a probe's DATAGRAM payload."""


def is_padding(datagram: bytes) -> bool:
    """Whether a received DATAGRAM payload is a path MTU probe's padding."""
    return bool(datagram) and datagram[0] == PADDING_MARK


@dataclass(slots=True)
class PathMtuSearch:
    """The state of one connection's search; sizes are UDP payload bytes."""

    current: int = BASE_SIZE
    """The size packets are built to now."""
    candidates: tuple[int, ...] = CANDIDATE_SIZES
    _untried: list[int] = field(default_factory=list)
    _in_flight: int | None = None
    _next_at: float = 0.0
    _confirm_losses: int = 0
    _verdict_at: float = 0.0

    def __post_init__(self) -> None:
        self._untried = sorted(self.candidates, reverse=True)

    @property
    def in_flight(self) -> int | None:
        """The size of the probe waiting for its verdict, if one is out."""
        return self._in_flight

    @property
    def searching(self) -> bool:
        """Whether larger sizes are still to be tried."""
        return bool(self._untried)

    def next_probe(self, now: float, sent_at: float | None = None) -> int | None:
        """The size to probe at ``now``, or None (a probe is out, it is not
        time yet, or a confirmation waits for the connection to send). The
        caller sends it and reports back exactly once. ``sent_at``: when the
        connection last sent a packet that asks for an acknowledgement (None:
        it sends all the time)."""
        if self._in_flight is not None or now < self._next_at:
            return None
        if self._untried:
            self._in_flight = self._untried[0]
        elif self.current > BASE_SIZE:
            if sent_at is not None and sent_at < self._verdict_at:
                return None  # idle since the last verdict: still due
            self._in_flight = self.current
        else:
            return None
        return self._in_flight

    def probe_not_sent(self) -> None:
        """The probe could not leave now (no room in the congestion window):
        it will be asked for again."""
        self._in_flight = None

    def probe_acked(self, size: int, now: float) -> None:
        """A probe of ``size`` bytes was acknowledged: the path carries it."""
        if size != self._in_flight:
            return
        self._in_flight = None
        self._verdict_at = now
        self._confirm_losses = 0
        if self._untried and size == self._untried[0]:
            # Largest first: what gets through first is the most there is.
            self._untried = []
        self.current = max(self.current, size)
        self._next_at = now + CONFIRM_INTERVAL_S

    def probe_lost(self, size: int, now: float) -> None:
        """A probe of ``size`` bytes was declared lost."""
        if size != self._in_flight:
            return
        self._in_flight = None
        self._verdict_at = now
        if self._untried and size == self._untried[0]:
            self._untried.pop(0)
            if not self._untried and self.current == BASE_SIZE:
                self._next_at = now + RESEARCH_INTERVAL_S
            return
        self._confirm_losses += 1
        if self._confirm_losses < 2:
            return
        self.current = BASE_SIZE
        self._confirm_losses = 0
        self._untried = [s for s in sorted(self.candidates, reverse=True)]
        self._next_at = now + RESEARCH_INTERVAL_S
