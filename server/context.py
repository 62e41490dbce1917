"""What every service is given: the server's shared parts, not the server.

A service is built from a :class:`ServerContext` and registers its handlers
with the context's router; it never sees :class:`~server.app.ServerApp`, so
its dependencies are these few and a test can build one with its own clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .clock import Clock
from .cluster import Cluster, ClusterPresence, LocalCluster
from .config import ServerConfig
from .router import Router
from .storage import Storage

if TYPE_CHECKING:
    from .connection import Account, ClientConnection

__all__ = ["ServerContext", "Sessions"]


class Sessions(Protocol):
    """Who is logged in on which connection (the server keeps this)."""

    connections: set[ClientConnection]
    """Every open connection."""

    async def attach(self, conn: ClientConnection, account: Account) -> None:
        """Make ``conn`` the account's one live session, kicking any older one."""

    def attach_transfers(self, conn: ClientConnection, account: Account) -> None:
        """Make ``conn`` a transfer connection of ``account``'s live session."""

    def detach(self, conn: ClientConnection) -> None:
        """End the connection's session (logout) without closing the connection."""

    def on_session(
        self,
        started: Callable[[ClientConnection], Awaitable[None]] | None,
        ended: Callable[[ClientConnection, Account], None] | None,
    ) -> None:
        """Have a service told when a user's session starts and ends."""


@dataclass
class ServerContext:
    """The server's shared parts, as the services use them."""

    config: ServerConfig
    storage: Storage
    presence: ClusterPresence[ClientConnection]
    stats: Counter[str]
    """Counters for operators and benchmarks (see ``ServerApp.snapshot``)."""
    router: Router
    sessions: Sessions
    clock: Clock = field(default_factory=Clock)
    cluster: Cluster = field(default_factory=LocalCluster)
    """The other server nodes (a cluster of one without ``--redis``)."""
