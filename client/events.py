"""Events the client core itself produces, next to the server's events.

:meth:`Session.events` yields both: the server's event Structs
(:mod:`codec.messages`) and these dataclasses about the connection.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Disconnected", "Reconnected", "SessionClosed"]


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection broke; ``will_retry`` says whether reconnecting has begun."""

    reason: str
    will_retry: bool


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The connection is back and the session resumed after ``attempts`` tries."""

    attempts: int
    downtime_s: float


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The session ended for good (kicked, token revoked, or closed by us)."""

    reason: str
    message: str
